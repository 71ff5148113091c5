"""Every DAG imports cleanly and keeps the metadata contract (owner, tags, retries, doc_md, callbacks)."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from core.orchestration import DAG_TAGS, WAREHOUSE_POOL, task_timeout

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag(dbt_manifest):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    dag_files = {p.stem for p in DAGS_DIR.glob("*.py")}
    assert dag_files <= set(dagbag.dag_ids), "one DAG per file, named like the file"


def test_dag_metadata_contract(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md and len(dag.doc_md) > 200, f"{dag_id}: doc_md must explain purpose and runbook"
        assert dag.tags and set(dag.tags) <= DAG_TAGS, f"{dag_id}: tags {dag.tags} not in {set(DAG_TAGS)}"
        assert dag.max_active_runs == 1 or dag_id.startswith("maintenance"), dag_id
        assert dag.start_date.tzinfo is not None, f"{dag_id}: start_date must be timezone-aware UTC"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id}: owner"
            assert task.on_failure_callback, f"{dag_id}.{task.task_id}: failure callback"
            # a hung task (a Spark query that never returns, a lock never released) fails the run
            assert task.execution_timeout == task_timeout(), f"{dag_id}.{task.task_id}: execution_timeout"
            if not task.task_id.startswith("gate_"):
                assert task.retries >= 2, f"{dag_id}.{task.task_id}: retries >= 2"


def test_no_cycles_and_the_layers_in_order(dagbag):
    from airflow.utils.dag_cycle_tester import check_cycle

    for dag in dagbag.dags.values():
        check_cycle(dag)
    shop = dagbag.dags["shop_daily"]
    for upstream, downstream in itertools.pairwise(["land", "gate_landed", "load"]):
        assert upstream in shop.get_task(downstream).get_flat_relative_ids(upstream=True)
    elt = dagbag.dags["elt_marts"]
    dbt_tasks = [t for t in elt.tasks if type(t).__module__.startswith("cosmos")]
    assert any("fct_daily_revenue" in t.task_id for t in dbt_tasks), [t.task_id for t in dbt_tasks]
    # Only the tasks that run dbt write DuckDB: they, and only they, hold the one-slot pool
    # (a watcher sensor in that pool would wait for the very task it watches).
    runners = [t for t in dbt_tasks if "Sensor" not in type(t).__name__ and "Watcher" not in type(t).__name__]
    runners += [t for t in dbt_tasks if "Producer" in type(t).__name__]
    assert runners and all(t.pool == WAREHOUSE_POOL for t in runners)
    assert all(t.pool != WAREHOUSE_POOL for t in dbt_tasks if t not in runners)
    upstream_of_gate = elt.get_task("gate_marts").get_flat_relative_ids(upstream=True)
    for t in dbt_tasks:
        assert t.task_id in upstream_of_gate, f"{t.task_id} is not upstream of gate 2"
    assert "gate_marts" in elt.get_task("publish").get_flat_relative_ids(upstream=True)


def test_marts_are_rebuilt_when_both_raw_sources_have_new_data(dagbag):
    """Data-aware scheduling: elt_marts waits for the shop and the marketing API, not a clock."""
    from airflow.sdk.definitions.asset import AssetAll

    condition = dagbag.dags["elt_marts"].timetable.asset_condition
    assert isinstance(condition, AssetAll), "both sources must have new data, not either"
    assert {asset.name for asset in condition.objects} == {"warehouse_raw_shop", "warehouse_raw_marketing_api"}
    producers = {dag_id: {o.name for t in dag.tasks for o in t.outlets} for dag_id, dag in dagbag.dags.items()}
    assert "warehouse_raw_shop" in producers["shop_daily"]
    assert "warehouse_raw_marketing_api" in producers["marketing_api_daily"]


def test_no_work_at_import_time():
    """DAG files may import only airflow, cosmos, the stdlib, _common and the DAG ids at module level."""
    for path in DAGS_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                for name in names:
                    if name == "core.orchestration":  # constants only: the DAG ids, the pool, the tags
                        continue
                    root = (name or "").split(".")[0]
                    assert root in {"__future__", "airflow", "cosmos", "_common", "datetime", "pendulum"}, (
                        f"{path.name} imports {name} at module level; import it inside the task"
                    )


def test_shop_daily_is_keyed_by_the_day_it_processes(dagbag):
    """The run for day D starts after D ends and carries ds = D (a data interval, not a trigger)."""
    import datetime as dt

    dag = dagbag.dags["shop_daily"]
    interval = dag.timetable.infer_manual_data_interval(run_after=dt.datetime(2026, 5, 2, 0, 0, tzinfo=dt.UTC))
    assert interval.start == dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    assert interval.end == dt.datetime(2026, 5, 2, tzinfo=dt.UTC)


def test_spark_mode_builds_on_spark_and_hands_the_marts_to_duckdb_before_gate_2(dbt_manifest, monkeypatch):
    """MARTS_ENGINE=spark: the producer's dbt build targets the Spark cluster without the DuckDB-only
    models, copy_spark_marts sits between the dbt tasks and gate 2, and churn_model is unscheduled."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("MARTS_ENGINE", "spark")
    spark = DagBag(dag_folder=str(DAGS_DIR))
    assert spark.import_errors == {}
    elt = spark.dags["elt_marts"]
    producer = next(t for t in elt.tasks if "Producer" in type(t).__name__)
    assert "tag:duckdb_only" in producer.exclude
    assert producer.profile_config.target_name == "spark"
    assert not [t.task_id for t in elt.tasks if "churn" in t.task_id]
    copy = elt.get_task("copy_spark_marts")
    assert copy.pool == WAREHOUSE_POOL
    assert elt.get_task("gate_marts").upstream_task_ids == {"copy_spark_marts"}
    assert any("fct_daily_revenue" in t for t in copy.get_flat_relative_ids(upstream=True))
    assert type(spark.dags["churn_model"].timetable).__name__ == "NullTimetable"  # triggered by hand only
    assert dbt_manifest.exists()

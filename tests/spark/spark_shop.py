"""The shop the Spark-mode tests check: built once on the cluster, first by dbt, then by Airflow.

A shop is simulated, landed day by day and loaded into DuckDB (the real ingestion code), and the
marketing API's extracts are landed and loaded the same way; the loaded days are registered on
Spark. Both engines build the project from that (the first build: `dbt run` on each; on Spark of the
incremental models and what they read). More days arrive with an old day re-run; they are loaded and
registered, DuckDB builds again (its incremental path), and a real Airflow in Spark mode
(`MARTS_ENGINE=spark`: api-server, scheduler, dag-processor, triggerer) runs `elt_marts`, whose
Cosmos producer runs the second, incremental `dbt build` on Spark
with every data and unit test, then copies the served marts into the DuckDB warehouse, audits them
(gate 2) and publishes them.

So one shop checks both the engines' equality (tests/spark/test_dbt_on_spark.py) and the scheduled
DAG in Spark mode (tests/spark/test_elt_marts_on_spark.py), and the project is built on Spark twice,
not three times: a dbt build on Spark costs minutes, whatever the shop's size.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from pathlib import Path

import pyarrow as pa

from core.settings import Settings, get_settings
from ingestion.app_db.batch import land_day
from ingestion.lake import write_partition
from ingestion.marketing_api.contract import FX, SPEND
from ingestion.marketing_api.contract import SOURCE_NAME as MARKETING
from ingestion.spark_tables import loaded_manifests, register_partitions
from ingestion.warehouse import load_source_days
from tests.conftest import DAY0, stack_environment
from tests.dbt.fixture_warehouse import days_between, dbt_env, load_shop, marketing_rows, run_dbt, simulate_and_land
from tests.spark.conftest import SparkCluster

FIRST_DAYS, LATER_DAYS, SCALE = 14, 6, 0.3
DAYS = days_between(DAY0, DAY0 + dt.timedelta(days=FIRST_DAYS + LATER_DAYS - 1))
RERUN_DAY = DAYS[FIRST_DAYS - 3]
PII_KEY = "spark-dbt-key-41c7"
PRODUCER = "dbt_producer_watcher"  # Cosmos' task that runs the one `dbt build`


@dataclasses.dataclass(frozen=True)
class SparkShop:
    settings: Settings  # the Spark-mode stack: its warehouse holds the marts copied from Spark
    duckdb_build: Path  # a copy of the warehouse as DuckDB's own second build left it
    manifest: Path  # DuckDB's dbt manifest (the same project, so the same served marts)
    first_spark_run: str  # dbt's output of the first build on Spark
    run_id: str  # the elt_marts run that built the marts on Spark the second time
    run_state: str
    tasks: dict[str, str]  # task id -> state, of that run
    producer_log: str  # the log of its dbt build (dbt's own lines among Airflow's)


def land_and_load_marketing(settings: Settings, days: list[dt.date], run_id: str) -> None:
    """The marketing API's extracts of `days` into the lake and `raw`, as its DAG lands and loads them."""
    for ds in days:
        spend, rates = marketing_rows(ds, DAY0)
        for contract, rows in ((SPEND, spend), (FX, rates)):
            schema = contract.schema
            columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
            table = pa.table([pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)], schema)
            write_partition(settings.lake_raw_dir, MARKETING, contract.table, ds, table.to_batches(), schema, run_id)
    load_source_days(settings, MARKETING, [SPEND.table, FX.table], days, run_id)


def register(settings: Settings, days: list[dt.date], run_id: str) -> None:
    """Register on Spark the loaded partitions of `days` (what the load of a run moved)."""
    wanted = {str(d) for d in days}
    manifests = {
        table: [m for m in found if str(m.ds) in wanted] for table, found in loaded_manifests(settings).items()
    }
    register_partitions(settings, manifests, run_id)


def _run_elt_marts(settings: Settings) -> tuple[str, str, dict[str, str], str]:
    """One run of elt_marts under Airflow's scheduler, as an engineer triggers it; Airflow stopped after."""
    from stackctl import airflow_service

    airflow_service.init(settings, log=lambda msg: None)
    try:
        api = airflow_service.AirflowApi(airflow_service.start(settings, log=lambda msg: None))
        api.wait_for_dag("elt_marts")
        api.patch("/dags/elt_marts", {"is_paused": False})
        run_id = api.post("/dags/elt_marts/dagRuns", {"logical_date": None})["dag_run_id"]
        state = api.wait_for_run("elt_marts", run_id, timeout=1800)
        found = api.get(f"/dags/elt_marts/dagRuns/{run_id}/taskInstances", limit=200)["task_instances"]
        tasks = {ti["task_id"]: ti for ti in found}
        producer = tasks.get(PRODUCER)
        log = ""
        if producer and producer["try_number"]:
            path = f"/dags/elt_marts/dagRuns/{run_id}/taskInstances/{PRODUCER}/logs/{producer['try_number']}"
            log = json.dumps(api.get(path, full_content="true"))
        return run_id, state, {task: ti["state"] for task, ti in tasks.items()}, log
    finally:
        airflow_service.stop(settings)


def build_spark_shop(spark_cluster: SparkCluster, root: Path) -> SparkShop:
    from core.dbt_cli import run_dbt as run_stack_dbt
    from stackctl import procs

    spark_cluster.reset()
    with stack_environment(
        root,
        PII_KEY,
        MARTS_ENGINE="spark",
        AIRFLOW_ADMIN_USER="spark_admin",
        AIRFLOW_ADMIN_PASSWORD="spark-password",
        AIRFLOW_API_SECRET="spark-secret",
        AIRFLOW_PORT=str(procs.free_port()),
        **spark_cluster.env,
    ):
        settings = get_settings()
        duck_env = dbt_env(settings.warehouse_path, root / "target-duckdb", PII_KEY)
        spark_env = {
            **duck_env,
            **spark_cluster.env,
            "DBT_TARGET": "spark",
            "DBT_TARGET_PATH": str(root / "target-spark"),
            "DBT_LOG_PATH": str(root / "target-spark" / "logs"),
        }

        first, later = DAYS[:FIRST_DAYS], DAYS[FIRST_DAYS:]
        simulate_and_land(settings, DAY0, first, "history", scale=SCALE)
        load_shop(settings, first, "history")
        land_and_load_marketing(settings, first, "history")
        register(settings, first, "history")
        # The first builds only run the models (the tests/dbt suite tests DuckDB's; Spark's data and
        # unit tests run in the second, incremental build, over everything both builds made). On Spark
        # only the incremental models and what they read: the second build rebuilds every other model
        # whole anyway, and a model costs seconds on Spark whatever its size.
        run_dbt(duck_env, "run")
        spark_first = run_dbt(
            spark_env, "run", "--select", "+config.materialized:incremental", "--exclude", "tag:duckdb_only"
        )

        simulate_and_land(settings, DAY0, later, "daily", scale=SCALE)
        land_day(settings, RERUN_DAY, "rerun")
        load_shop(settings, [RERUN_DAY, *later], "daily")
        land_and_load_marketing(settings, later, "daily")
        register(settings, [RERUN_DAY, *later], "daily")
        run_dbt(duck_env, "run")
        # elt_marts' copy replaces the served marts in this warehouse with Spark's: DuckDB's are kept aside.
        duckdb_build = root / "duckdb-build.duckdb"
        shutil.copy(settings.warehouse_path, duckdb_build)

        run_stack_dbt(settings, "parse", "--quiet", quiet=True)  # the manifest Cosmos renders the DAG from
        run_id, state, tasks, log = _run_elt_marts(settings)
    return SparkShop(
        settings=settings,
        duckdb_build=duckdb_build,
        manifest=root / "target-duckdb" / "manifest.json",
        first_spark_run=spark_first.stdout,
        run_id=run_id,
        run_state=state,
        tasks=tasks,
        producer_log=log,
    )

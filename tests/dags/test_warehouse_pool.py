"""Parallel-safe storage: DuckDB has one writer, so every task that opens the warehouse is in the
one-slot pool `duckdb_warehouse`, and the tasks outside it never touch the warehouse.

With several Celery workers (cluster mode), tasks of different sources and days run at once.
Lake writes are per partition and atomic; the warehouse is serialised by the pool. A task outside
the pool must be declared lake-only below, on purpose.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

import pytest

from core.orchestration import WAREHOUSE_POOL

POOL = WAREHOUSE_POOL

# Tasks that open warehouse.duckdb (read-write, or read while a writer could hold the lock).
WAREHOUSE_TASKS = {
    "shop_daily": {"gate_landed", "load"},  # gate results go to ops.data_health
    "marketing_api_daily": {"load"},
    "partner_files": {"load"},
    "elt_marts": {"gate_marts", "publish"},  # plus every dbt.* task (checked below)
    "data_health": {"check_freshness", "refresh_dashboard"},
    "data_tests_full": {"test_all_rows"},  # dbt writes its test watermarks
}
# Tasks that write the lake (per partition, atomic rename) or nothing local: free to run in parallel.
LAKE_ONLY_TASKS = {
    "shop_daily": {"land"},
    "marketing_api_daily": {"fetch_and_land"},
    "partner_files": {"wait_for_files", "process"},
    "elt_marts": set(),
    "data_health": {"data_docs", "all_work_succeeded"},
    # a no-op that only carries the run's state (dags/_common/run_state.py)
    "governance_maintenance": {"all_work_succeeded"},
}


@pytest.fixture(scope="module")
def dagbag(dbt_manifest):
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags.test_dag_integrity import DAGS_DIR

    return DagBag(dag_folder=str(DAGS_DIR))


def test_warehouse_tasks_share_the_one_writer_pool_and_the_rest_is_declared_lake_only(dagbag):
    for dag_id, tasks in WAREHOUSE_TASKS.items():
        dag = dagbag.dags[dag_id]
        for task_id in tasks:
            assert dag.get_task(task_id).pool == POOL, f"{dag_id}.{task_id} opens the warehouse outside the pool"
    from _common.dbt import writes_warehouse

    dbt_runners = [t for t in dagbag.dags["elt_marts"].tasks if t.task_id not in {"gate_marts", "publish"}]
    dbt_runners = [t for t in dbt_runners if writes_warehouse(t)]
    assert dbt_runners and all(t.pool == POOL for t in dbt_runners), "the tasks running dbt write the warehouse"
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            if dag_id == "elt_marts" and not writes_warehouse(task):
                continue  # a Cosmos watcher sensor: reads dbt's progress, never DuckDB
            if task.pool != POOL:
                # Outside the pool a task may run next to a warehouse writer: it must not open the
                # warehouse at all. Declare it in LAKE_ONLY_TASKS once you have checked that.
                assert task.task_id in LAKE_ONLY_TASKS.get(dag_id, set()), (
                    f"{dag_id}.{task.task_id} runs outside pool {POOL}: put it in the pool if it opens "
                    "the warehouse, else declare it lake-only in this test"
                )
    for dag_id, tasks in LAKE_ONLY_TASKS.items():
        for task_id in tasks:
            assert dagbag.dags[dag_id].get_task(task_id).pool != POOL, f"{dag_id}.{task_id} holds the slot needlessly"


def test_landing_runs_while_another_process_holds_the_warehouse_write_lock(stack):
    """A lake-only task must not need the warehouse: land a shop day and process partner files
    while a separate process keeps warehouse.duckdb open read-write (as a running load would)."""
    from ingestion.app_db.batch import land_day
    from ingestion.partner_files.process import inbox_dir, process_inbox
    from ingestion.partner_files.samples import write_demo
    from ingestion.simulator.run import simulate
    from tests.conftest import DAY0

    simulate(stack.app_db_url, DAY0, DAY0, progress=False)
    write_demo(inbox_dir(stack), DAY0)
    stack.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(  # our interpreter, fixed code
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
            "con.execute('create table if not exists t(x int)'); print('locked', flush=True); time.sleep(120)",
            str(stack.warehouse_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        began = time.monotonic()
        manifests = land_day(stack, DAY0, "lake-only-run")
        summary = process_inbox(stack, "lake-only-run", settle_seconds=0, today=DAY0 + dt.timedelta(days=1))
        assert manifests["orders"]["row_count"] > 0
        assert summary.files, "the demo partner files were processed"
        assert time.monotonic() - began < 60
        assert holder.poll() is None, "the writer kept its lock throughout"
    finally:
        holder.kill()
        holder.wait()

"""
### elt_marts: dbt marts, gate 2 and publish, whenever the raw data changes

**When it runs**: data-aware. A run starts once both `warehouse_raw_shop` (from `shop_daily`)
and `warehouse_raw_marketing_api` (from `marketing_api_daily`) have new data since the last
run, so the marts are rebuilt once per day from complete inputs, not at a guessed time.

**What it does**:

1. dbt - `dbt_producer_watcher` runs one `dbt build` of staging -> intermediate -> marts
   (Cosmos' watcher mode); each model has its own task (`stg_shop__orders_run`, ...) that turns
   green or red as dbt finishes that model and its tests, so the graph shows where it broke
   (a failing test stops everything downstream of it). `DBT_EXECUTION_MODE=local` runs one dbt
   process per model instead.
   With `MARTS_ENGINE=spark` dbt builds on the Spark cluster (all but the DuckDB-only models),
   and `copy_spark_marts` then copies the marts publish serves from Spark's Parquet files into
   the DuckDB warehouse, so the next two steps are the same in both modes.
2. `gate_marts` - **gate 2**: Great Expectations audits the marts (net <= gross, no negative
   orders, every day present, values within bounds of the trailing weeks).
3. `publish` - copies the marts into a new `serving.duckdb` and swaps it in atomically, then
   clears Superset's result cache. Superset reads only that file, so dashboards keep the last
   good numbers when anything before this step fails.

**Rerun**: *Clear* the failed task once the cause is fixed (or trigger the DAG by hand): every
step rebuilds from the warehouse and replaces its output.

**When it fails**: the task log ends with a one-line reason (which model/test or expectation,
with observed values); an alert goes to `var/alerts.jsonl` (and `ALERT_WEBHOOK_URL` if set).
"""

from __future__ import annotations

import datetime as dt

from _common.assets import SERVING_MARTS, WAREHOUSE_RAW_MARKETING_API, WAREHOUSE_RAW_SHOP
from _common.dbt import dbt_configs, writes_warehouse
from _common.defaults import DEFAULT_ARGS
from _common.engine import marts_on_spark
from airflow.sdk import task
from cosmos import DbtDag

from core.orchestration import ELT_MARTS, WAREHOUSE_POOL

# A DbtDag (not a task group in a plain DAG): in watcher mode Cosmos then puts the dbt run
# upstream of every model's task, so they also work when tasks run one by one (`airflow dags test`).
with DbtDag(
    dag_id=ELT_MARTS,
    schedule=(WAREHOUSE_RAW_SHOP & WAREHOUSE_RAW_MARKETING_API),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["elt", "quality", "publish"],
    **dbt_configs(),
) as elt_marts:
    dbt_leaves = list(elt_marts.leaves)
    for dbt_task in elt_marts.tasks:
        if writes_warehouse(dbt_task):
            dbt_task.pool = WAREHOUSE_POOL

    @task(pool=WAREHOUSE_POOL, retries=0)
    def gate_marts(run_id: str | None = None) -> None:
        from core.settings import get_settings
        from quality.pipeline_gates import gate_marts as run_gate_marts

        run_gate_marts(get_settings(), run_id)

    @task(pool=WAREHOUSE_POOL, outlets=[SERVING_MARTS])
    def publish(run_id: str | None = None) -> dict[str, int]:
        from core.settings import get_settings
        from pipelines.publishing import publish_for_dashboards

        return publish_for_dashboards(get_settings(), run_id).tables

    gate = gate_marts()
    if marts_on_spark():

        @task(pool=WAREHOUSE_POOL, retries=0)
        def copy_spark_marts() -> dict[str, int]:
            from core.settings import get_settings
            from pipelines.spark_marts import copy_spark_marts as copy_marts
            from serving.publish import dbt_manifest_path

            settings = get_settings()
            return copy_marts(settings, dbt_manifest_path(settings))

        copied = copy_spark_marts()
        dbt_leaves >> copied
        copied >> gate
    else:
        dbt_leaves >> gate
    gate >> publish()

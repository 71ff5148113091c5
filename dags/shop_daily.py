"""
### shop_daily: the shop's daily ETL + ELT + publish

**What it does**, for the logical date `ds` (one UTC day):

1. `land` - extracts the day's changed rows of every app-DB table (customers, products, orders,
   order_items, returns, web_events) into the lake: `lake/raw/shop/<table>/ds=<ds>/`.
2. `gate_landed` - **gate 1**: Great Expectations validates each landed batch (schema, keys,
   values). A failure stops the run before anything reaches the warehouse.
3. `load` - replaces day `ds` of every table in `warehouse.duckdb` schema `raw`, in one transaction.
4. `dbt` - builds staging -> intermediate -> marts with dbt (one task per model, tests after each).
5. `gate_marts` - **gate 2**: Great Expectations audits the marts (net <= gross, no gaps ...).
6. `publish` - copies the marts into a new `serving.duckdb` and swaps it in atomically; Superset
   reads only that file, so dashboards keep yesterday's numbers when any step fails.

**Rerun / backfill**: every task replaces its day, so clearing a run or backfilling a date range
(`airflow backfill create --dag-id shop_daily --from-date ... --to-date ...`) is safe.

**When it fails**: the failing task's log starts with a one-line reason; an alert is written to
`var/alerts.jsonl` (and `ALERT_WEBHOOK_URL` if set). Gate failures do not retry: fix the data.
"""

from __future__ import annotations

import datetime as dt

from _common.assets import LAKE_RAW_SHOP, SERVING_MARTS, WAREHOUSE_RAW_SHOP
from _common.dbt import dbt_configs
from _common.defaults import DEFAULT_ARGS, WAREHOUSE_POOL
from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable
from cosmos import DbtTaskGroup


@dag(
    dag_id="shop_daily",
    # Data intervals, not trigger times: the run for day D starts after D ends and has ds = D.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["shop", "ingestion", "elt", "publish"],
)
def shop_daily():
    @task(outlets=[LAKE_RAW_SHOP])
    def land(ds: str | None = None, run_id: str | None = None) -> dict[str, dict]:
        from ingestion.shop_batch import land_day
        from stackctl.settings import get_settings

        return land_day(get_settings(), dt.date.fromisoformat(ds), run_id)

    @task(pool=WAREHOUSE_POOL, retries=0)
    def gate_landed(manifests: dict[str, dict], run_id: str | None = None) -> None:
        from quality.pipeline_gates import gate_landed_batches
        from stackctl.settings import get_settings

        gate_landed_batches(get_settings(), manifests, run_id)

    @task(pool=WAREHOUSE_POOL, outlets=[WAREHOUSE_RAW_SHOP])
    def load(ds: str | None = None, run_id: str | None = None) -> None:
        from ingestion.shop_batch import load_days
        from stackctl.settings import get_settings

        load_days(get_settings(), [dt.date.fromisoformat(ds)], run_id)

    dbt = DbtTaskGroup(group_id="dbt", operator_args={"pool": WAREHOUSE_POOL}, **dbt_configs())

    @task(pool=WAREHOUSE_POOL, retries=0)
    def gate_marts(run_id: str | None = None) -> None:
        from quality.pipeline_gates import gate_marts as run_gate_marts
        from stackctl.settings import get_settings

        run_gate_marts(get_settings(), run_id)

    @task(pool=WAREHOUSE_POOL, outlets=[SERVING_MARTS])
    def publish(run_id: str | None = None) -> dict[str, int]:
        from serving.publish import publish_for_dashboards
        from stackctl.settings import get_settings

        return publish_for_dashboards(get_settings(), run_id).tables

    landed = land()
    gate_landed(landed) >> load() >> dbt >> gate_marts() >> publish()


shop_daily()

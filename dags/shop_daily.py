"""
### shop_daily: the shop's operational database into the lake and the warehouse

**What it does**, for the logical date `ds` (one UTC day, run after the day ends):

1. `land` - extracts the day's rows of every table of the app DB (the Airflow connection
   `app_db`: customers, products, orders, order_items, returns, web_events) into the lake:
   `lake/raw/shop/<table>/ds=<ds>/`, with a manifest per partition (rows, checksum, schema hash,
   watermark). Updated tables are taken by `updated_at`, insert-only web_events by id watermark
   (late rows are caught), products as a daily snapshot; hard deletes (products, and deleted
   customer accounts found by a key-set diff of the lake against the source) are reported in the
   manifest and the log.
2. `gate_landed` - **gate 1**: Great Expectations validates each landed batch (schema, keys,
   values, row count = source count). A failure stops the run before anything reaches the
   warehouse.
3. `load` - replaces day `ds` of every table in `warehouse.duckdb` schema `raw`, in one
   transaction, and records rows/bytes/seconds in `ops.run_ledger`.

Its `load` updates the Asset `warehouse_raw_shop`; the `elt_marts` DAG runs when that and the
marketing API's Asset have new data (data-aware scheduling), so marts are rebuilt from both.

**Rerun / backfill**: every task replaces its day, so clearing a run or backfilling a date range
(`airflow backfill create --dag-id shop_daily --from-date ... --to-date ...`) is safe. A backfill
runs several days at once, but `land` waits for the previous day's `land` (it reads that day's
watermark): if an earlier day failed to land, fix and clear it first.

**When it fails**: the failing task's log ends with a one-line reason; an alert is written to
`var/alerts.jsonl` (and `ALERT_WEBHOOK_URL` if set) and a failed row to `ops.gate_runs` /
`ops.data_health` (the Data health dashboard). Gate failures do not retry: fix the data.

**Late parents**: an order changed again after midnight (placed 23:55, cancelled 00:00) lands
with the next day's run, its lines with this one; dbt reports such lines as a warning for one
day and fails only if the order is still missing after the next day is loaded.
"""

from __future__ import annotations

import datetime as dt

from _common.assets import LAKE_RAW_SHOP, WAREHOUSE_RAW_SHOP
from _common.defaults import DEFAULT_ARGS
from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from core.orchestration import SHOP_DAILY, WAREHOUSE_POOL


@dag(
    dag_id=SHOP_DAILY,
    # Data intervals, not trigger times: the run for day D starts after D ends and has ds = D.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["shop", "ingestion", "quality"],
)
def shop_daily():
    # depends_on_past: landing day D reads day D-1's manifest (the web_events id watermark), so
    # the days of a backfill land in date order even when several runs are active at once; their
    # gates and loads (pool) overlap with the next day's landing.
    @task(outlets=[LAKE_RAW_SHOP], depends_on_past=True)
    def land(ds: str | None = None, run_id: str | None = None) -> dict[str, dict]:
        from _common.connections import with_app_db

        from core.settings import get_settings
        from ingestion.app_db.batch import land_day

        # The source is the `app_db` Airflow connection (dags/_common/connections.py).
        return land_day(with_app_db(get_settings()), dt.date.fromisoformat(ds), run_id)

    @task(pool=WAREHOUSE_POOL, retries=0)
    def gate_landed(manifests: dict[str, dict], run_id: str | None = None) -> None:
        from core.settings import get_settings
        from quality.pipeline_gates import gate_landed_batches

        gate_landed_batches(get_settings(), manifests, run_id)

    @task(pool=WAREHOUSE_POOL, outlets=[WAREHOUSE_RAW_SHOP])
    def load(ds: str | None = None, run_id: str | None = None) -> None:
        from core.settings import get_settings
        from ingestion.app_db.batch import load_days

        load_days(get_settings(), [dt.date.fromisoformat(ds)], run_id)

    landed = land()
    gate_landed(landed) >> load()


shop_daily()

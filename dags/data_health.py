"""
### data_health: freshness SLAs, the Data health dashboard and Data Docs, every hour

A source that stops arriving must be an alert, not silence: the daily DAGs cannot report a run
that never happens, so this DAG checks from the outside.

1. `check_freshness` (pool `duckdb_warehouse`) - runs `dbt source freshness` (the same check as
   `make freshness` or an analyst's own `dbt source freshness`) on every source table the warehouse's
   `raw` schema holds, plus the `shop` tables, which must always exist. The SLAs are the sources'
   `freshness:` blocks in `dbt_project/models/staging/<source>/_<source>__sources.yml` (age =
   now - a table's newest `_loaded_at`) and nowhere else. Writes one row per source to
   `ops.source_freshness`, rebuilds `ops.quarantine` from `lake/quarantine/`, and **fails when a
   source is past its `error_after`** (or a shop table is missing, or dbt could not check a table),
   at once: a retry cannot make a late source arrive.
   A `warn_after` breach is only recorded. The failure callback sends the alert
   (`var/alerts.jsonl`, `ALERT_WEBHOOK_URL`, e-mail if the `alerts_smtp` connection exists).
2. `refresh_dashboard` (pool `duckdb_warehouse`, runs even when the check failed) - copies the
   `ops` data-health tables into `serving.duckdb` next to the *currently served* marts (which stay
   byte for byte as published) and clears Superset's cache: a failed gate or a late source shows
   on *Dashboards -> Data health* within the hour while the KPI dashboards keep the last good numbers.
3. `data_docs` - rebuilds the Great Expectations Data Docs site (`var/gx_docs/site/index.html`,
   `make gx-docs` serves it), first pruning validation results older than `GX_DOCS_KEEP_DAYS` (90).
4. `all_work_succeeded` - does nothing; it fails the run (upstream_failed) when any task above
   failed, since tasks 2 and 3 run and succeed after a failed check.

**Runbook.** `check_freshness` failed: its log has dbt's line per table, then names each late
source, its lagging tables, the day it is complete up to and its age. Look at that source's DAG (a
failed or paused run, an empty inbox, a quarantined batch: `make quarantine`). Nothing to fix here;
the next hourly run turns green by itself once the data lands. A table in `error` means dbt could
not check it: its message is in the log (`make freshness` reproduces it). Every task is idempotent:
clear it freely.
"""

from __future__ import annotations

import datetime as dt

from _common.defaults import DEFAULT_ARGS
from _common.run_state import all_work_succeeded
from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from core.orchestration import DATA_HEALTH, WAREHOUSE_POOL


@dag(
    dag_id=DATA_HEALTH,
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,  # only the current state matters: no backlog of past hours
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["quality"],
)
def data_health():
    @task(pool=WAREHOUSE_POOL)
    def check_freshness() -> list[str]:
        from airflow.sdk.exceptions import AirflowFailException

        from core.settings import get_settings
        from quality.freshness import FreshnessBreach
        from quality.freshness import check_freshness as run_check

        # The failure callback alerts; no alert from inside as well.
        try:
            return [row.summary for row in run_check(get_settings(), alert=False)]
        except FreshnessBreach as exc:  # a retry in 30 s cannot make a late source arrive
            raise AirflowFailException(str(exc)) from exc

    @task(pool=WAREHOUSE_POOL, trigger_rule="all_done")
    def refresh_dashboard(run_id: str | None = None) -> dict[str, int]:
        from core.settings import get_settings
        from pipelines.publishing import refresh_health_for_dashboards

        return refresh_health_for_dashboards(get_settings(), run_id).tables

    @task(trigger_rule="all_done")
    def data_docs() -> str:
        from quality.context import build_docs
        from quality.settings import gx_docs_keep_days

        return str(build_docs(keep_days=gx_docs_keep_days()))

    check_freshness() >> refresh_dashboard() >> data_docs()
    # The dashboard and docs are refreshed after a failed check too; the run must still say failed.
    all_work_succeeded()


data_health()

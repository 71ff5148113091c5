"""
### governance_maintenance: access log, stale assets (report, deprecation, archive) and erasure list, every day

1. `collect_access_log` (pool `duckdb_warehouse`) - who opened which dashboard or chart, ran which
   SQL Lab query (Superset's `logs` and `query` tables, literals redacted), who triggered or paused
   which DAG (Airflow's audit log, through its REST API as the stack's admin), and the data subject
   requests (the governance audit log), into `ops.access_log`; rows older than
   `ACCESS_LOG_RETENTION_DAYS` (365) are dropped. It also verifies the governance audit log and
   anchors its head in `ops.audit_anchors`; a log that fails verification fails the task (after
   the rest is collected).
2. `reapply_erasures` (pool `duckdb_warehouse`) - an erased person who came back (a backfill or a
   re-extract from the app DB, a released quarantine batch) is erased again, with an audit entry.
3. `stale_asset_report` (pool `duckdb_warehouse`) - models not built, and published marts not
   read, for `STALE_AFTER_DAYS` (30): `ops.stale_assets` and `var/governance/stale_assets.md`, for
   the owners to fix, keep or delete.
4. `retire_stale_assets` (pool `duckdb_warehouse`) - each stale model is deprecated where its users
   look (dbt's `deprecation_date` and `meta.deprecated` in its YAML, a warning on its
   Superset dataset and charts) and its owner alerted; after `STALE_GRACE_DAYS` (30) its dashboards
   and charts are exported to `var/governance/archive/<date>/<model>/`, removed from Superset, and
   the model disabled (`governance/lifecycle.py`, `superset/deprecation.py`). What it did is at the
   end of `stale_assets.md`; `python -m stackctl governance catalog restore <date>/<model>` undoes
   an archive.
5. `refresh_dashboard` (pool `duckdb_warehouse`) - copies the ops tables (the access log included)
   into `serving.duckdb` next to the served marts, for the Governance dashboard.
6. `all_work_succeeded` - does nothing; it fails the run (upstream_failed) when any task above
   failed, since `refresh_dashboard` runs and succeeds after a failure too.

**Runbook.** Every task is idempotent: clear it freely. A Superset that was never set up is skipped
(0 rows); an Airflow API that does not answer or refuses the admin login fails `collect_access_log`
(check `AIRFLOW_ADMIN_USER` / `_PASSWORD` in `.env`). "the governance audit log fails
verification": run `python -m stackctl governance audit verify`, which names the line; the log is
evidence, restore it from backup rather than editing it. `reapply_erasures` failing means an
erased person is still present somewhere: its log names the place; the audit log has the failed
entry. `retire_stale_assets` leaves a model enabled while something still refs it (named under "Due,
not archived" in the report) or while Superset does not answer; it archives it on a later run.
"""

from __future__ import annotations

import datetime as dt

from _common.defaults import DEFAULT_ARGS
from _common.run_state import all_work_succeeded
from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from core.orchestration import GOVERNANCE_MAINTENANCE, WAREHOUSE_POOL


@dag(
    dag_id=GOVERNANCE_MAINTENANCE,
    schedule=CronDataIntervalTimetable("30 3 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,  # the current state is what matters
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["governance"],
)
def governance_maintenance():
    @task(pool=WAREHOUSE_POOL)
    def collect_access_log(data_interval_end: dt.datetime | None = None) -> dict[str, int]:
        from core.settings import get_settings
        from governance.access_log import collect

        return collect(get_settings(), now=data_interval_end)

    @task(pool=WAREHOUSE_POOL)
    def reapply_erasures() -> list[str]:
        from core.settings import get_settings
        from governance.dsr import reapply_erasures as reapply
        from pipelines.marts import rebuild_and_publish

        return reapply(get_settings(), republish=rebuild_and_publish, actor="governance_maintenance")

    @task(pool=WAREHOUSE_POOL)
    def stale_asset_report(data_interval_end: dt.datetime | None = None) -> str:
        from core.settings import get_settings
        from governance.catalog import write_stale_report

        now = data_interval_end.astimezone(dt.UTC).replace(tzinfo=None) if data_interval_end else None
        return str(write_stale_report(get_settings(), now=now))

    @task(pool=WAREHOUSE_POOL)
    def retire_stale_assets(data_interval_end: dt.datetime | None = None) -> dict[str, list[str]]:
        from core.settings import get_settings
        from superset.deprecation import daily

        return daily(get_settings(), today=data_interval_end.astimezone(dt.UTC).date() if data_interval_end else None)

    @task(pool=WAREHOUSE_POOL, trigger_rule="all_done")
    def refresh_dashboard(run_id: str | None = None) -> dict[str, int]:
        from core.settings import get_settings
        from pipelines.publishing import refresh_health_for_dashboards

        return refresh_health_for_dashboards(get_settings(), run_id).tables

    collect_access_log() >> reapply_erasures() >> stale_asset_report() >> retire_stale_assets() >> refresh_dashboard()
    # refresh_dashboard runs after a failure too; the run must still say failed.
    all_work_succeeded()


governance_maintenance()

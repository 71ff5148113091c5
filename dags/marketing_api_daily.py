"""
### marketing_api_daily: marketing spend and exchange rates from the external API

**What it does**, for the logical date `ds` (one UTC day, after it ends):

1. `fetch_and_land` - pages through `GET /v1/spend` and `GET /v1/fx` for `ds` at the API of the
   Airflow connection `marketing_api` (http; the token is its password, shown as *** in logs;
   `python -m stackctl` makes it from `MARKETING_API_URL` / `MARKETING_API_TOKEN` in `.env`, a
   secrets backend may hold it instead), with a client-side rate limit, timeouts and
   retries (backoff + jitter, Retry-After on 429). Every response page is kept unchanged in
   `lake/raw/marketing_api/{spend,fx}/ds=<ds>/` with `_manifest.json`, `_pages.json` and
   `_drift_report.json`; the typed tables go to `lake/raw/marketing_api/{marketing_spend,exchange_rates}/`.
2. `load` - replaces day `ds` of `raw.marketing_spend` and `raw.exchange_rates` in
   `warehouse.duckdb`, both in one transaction.

**Schema drift policy** (contract: `ingestion/marketing_api/contract.py`): a new field is
tolerated and recorded in `_drift_report.json` (warning in the log); a missing or renamed field
or a changed type fails `fetch_and_land` at once (no retries) with a one-line reason. The raw
pages of that day stay in the lake for inspection; the warehouse keeps the day's last good data.
Fix: adapt the contract (and the dbt staging model), then clear the task.

**When it fails**: API unreachable or 5xx after all attempts -> the task retries with backoff,
then fails with the request and the last error; nothing of the day is half-landed. HTTP 401 ->
the token is wrong: fix `MARKETING_API_TOKEN` in `.env`, or the connection's password where it
is kept (no retries). Alerts go to `var/alerts.jsonl` (and `ALERT_WEBHOOK_URL` if set).

**Rerun / backfill**: every task replaces its day, so clearing a run or
`airflow backfill create --dag-id marketing_api_daily --from-date ... --to-date ...` is safe.
"""

from __future__ import annotations

import datetime as dt

from _common.assets import LAKE_RAW_MARKETING_API, WAREHOUSE_RAW_MARKETING_API
from _common.defaults import DEFAULT_ARGS
from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from core.orchestration import MARKETING_API_DAILY, WAREHOUSE_POOL


@dag(
    dag_id=MARKETING_API_DAILY,
    # Data intervals, not trigger times: the run for day D starts after D ends and has ds = D.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["ingestion", "elt"],
)
def marketing_api_daily():
    @task(outlets=[LAKE_RAW_MARKETING_API])
    def fetch_and_land(ds: str | None = None, run_id: str | None = None) -> dict[str, dict]:
        from _common.connections import marketing_api_config
        from airflow.sdk.exceptions import AirflowFailException

        from core.settings import get_settings
        from ingestion.marketing_api.batch import land_day
        from ingestion.marketing_api.client import MarketingApiAuthError
        from ingestion.marketing_api.drift import SchemaDriftError

        try:
            # URL and token from the `marketing_api` Airflow connection (dags/_common/connections.py).
            config = marketing_api_config()
            return land_day(get_settings(), dt.date.fromisoformat(ds), run_id, config=config)
        except (SchemaDriftError, MarketingApiAuthError) as exc:
            # Retrying cannot fix a changed schema or a wrong token: fail now, say why.
            raise AirflowFailException(str(exc)) from exc

    @task(pool=WAREHOUSE_POOL, outlets=[WAREHOUSE_RAW_MARKETING_API])
    def load(ds: str | None = None, run_id: str | None = None) -> None:
        from core.settings import get_settings
        from ingestion.marketing_api.batch import load_days

        load_days(get_settings(), [dt.date.fromisoformat(ds)], run_id)

    fetch_and_land() >> load()


marketing_api_daily()

"""
### partner_files: files partners drop in `lake/inbox/<partner>/` -> lake -> warehouse `raw`

**How files are picked up.** The DAG runs `@continuous` (one run at a time). Each run starts with
`wait_for_files`, a *deferrable* `FileSensor` on `*/*` under the `partner_inbox` connection
(`AIRFLOW_CONN_PARTNER_INBOX`, path = `lake/inbox`): while the inbox is empty the wait sits in the
triggerer and holds no worker slot; when a file appears (checked every 30 s) the run continues.
After 6 h without files the sensor skips and a fresh run starts waiting.

1. `process` - every file in the inbox is checked against its partner's contract
   (`ingestion/partner_files/contracts.py`) and processed exactly once by content (sha256 ledger):
   good rows land in `lake/raw/partner_files/<partner>/ds=<file date>/`, the file is archived in
   `_files/<sha256>`, bad rows or bad files go to `lake/quarantine/partner_files/...` with
   `reason.json` + `REPORT.md` and an alert. The same bytes dropped again are recorded as a duplicate.
2. `load` (pool `duckdb_warehouse`) - replaces the landed days of `raw.partner_<partner>` in one
   transaction, refreshes `ops.partner_file_ledger` / `ops.partner_file_receipts`, and rebuilds
   `ops.quarantine` (held partner files and gate-1 batches), which the Data health dashboard shows.

**Policy.** A file-level fault (no date in the name, wrong encoding, wrong header, truncated ...)
quarantines the whole file. Otherwise good rows load if bad rows are at most 5% of the file
(per contract; `PARTNER_FILES_MAX_BAD_ROW_RATIO`), else the whole file is quarantined. Rows in =
loaded + quarantined, always. A later file for the same partner and date replaces that day, but a
file with no data rows never replaces a day that holds rows (it is quarantined; the contract's
`allow_empty_replacement` or `PARTNER_FILES_ALLOW_EMPTY_REPLACEMENT=1` permits it).

**One file never stops the run.** Symlinks, hard links, FIFOs, sockets and devices are refused
unread; files over `PARTNER_FILES_MAX_BYTES`, names over `PARTNER_FILES_MAX_NAME_BYTES`, checks
over `PARTNER_FILES_MAX_SECONDS` (the check runs in a worker process) and any unexpected error
quarantine that one file, with an alert naming it, and the run goes on with the next.

**Runbook.**
- *A quarantine alert*: `make quarantine` (`python -m stackctl quality quarantine list`) shows what
  is held and why, partner files and gate-1 batches alike; `... show <id>` prints the item's
  `REPORT.md`. Fix the file in its quarantine folder (or get a corrected one from the partner) and
  `python -m stackctl quality quarantine release <id>`; the next run picks it up.
- *`process` or `load` failed*: both are safe to clear and rerun. A crash leaves the file in the
  inbox and its ledger entry unfinished, so the rerun redoes it without doubling anything.
- *Files sit in the inbox and nothing runs*: is the triggerer up (`make status`) and the DAG
  unpaused? Names starting with "." are treated as uploads in progress and ignored.
- *A file held as `time_limit` or `too_large`*: a legitimately big delivery; raise
  `PARTNER_FILES_MAX_SECONDS` / `PARTNER_FILES_MAX_BYTES` for the worker and release it.
"""

from __future__ import annotations

import datetime as dt

from _common.assets import LAKE_RAW_PARTNER_FILES, WAREHOUSE_RAW_PARTNER_FILES
from _common.defaults import DEFAULT_ARGS
from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk import dag, task

from core.orchestration import PARTNER_FILES, WAREHOUSE_POOL

INBOX_CONN_ID = "partner_inbox"  # fs connection whose path is lake/inbox (set by stackctl)


@dag(
    dag_id=PARTNER_FILES,
    # A new run starts as soon as the previous one ends; its deferrable sensor then waits for files
    # without holding a worker, so a dropped file is picked up within a poke interval.
    schedule="@continuous",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["ingestion"],
)
def partner_files():
    wait_for_files = FileSensor(
        task_id="wait_for_files",
        fs_conn_id=INBOX_CONN_ID,
        filepath="*/*",  # a file in any partner folder; dot files (uploads in progress) do not match
        deferrable=True,
        poke_interval=30,
        timeout=6 * 3600,
        soft_fail=True,
    )

    @task(outlets=[LAKE_RAW_PARTNER_FILES])
    def process(run_id: str | None = None) -> dict:
        from core.settings import get_settings
        from ingestion.partner_files.process import process_inbox

        summary = process_inbox(get_settings(), run_id)
        result = summary.as_dict()
        return {k: v for k, v in result.items() if k != "files"} | {
            "files": [f"{f['partner']}/{f['file_name']}: {f['outcome']}" for f in result["files"]]
        }

    @task(pool=WAREHOUSE_POOL, outlets=[WAREHOUSE_RAW_PARTNER_FILES])
    def load(run_id: str | None = None) -> dict:
        from dataclasses import asdict

        from core.settings import get_settings
        from ingestion.partner_files.process import load_landed
        from quality.quarantine import sync_table

        settings = get_settings()
        loaded = asdict(load_landed(settings, run_id))
        # what `process` held shows on the Data health dashboard now, not at the next hourly check
        loaded["quarantine_rows"] = sync_table(settings)
        return loaded

    wait_for_files >> process() >> load()


partner_files()

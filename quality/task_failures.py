"""Task failures on the Data health dashboard: Airflow's failure callbacks call `alert_task_failure`.

It alerts first (`core.alerts.send_alert`: log, alert file, webhook), then writes the failure to
the warehouse's data-health tables (`ops.gate_runs` and `ops.data_health`, gate `task`), so it
shows next to the gates' results. Neither the webhook nor the warehouse may hide the original
error: when the warehouse is locked by another writer (or missing a disk) the callback logs why
and the alert file remains the record.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from core.alerts import send_alert
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)

TASK_GATE = "task"  # ops.gate_runs.gate / ops.data_health.gate of task failures
# How long a failure callback waits for the warehouse's single writer before giving up.
WAREHOUSE_WAIT_SECONDS = 3.0


def record_task_failure(
    settings: Settings,
    *,
    dag_id: str,
    task_id: str,
    run_id: str,
    ds: str | None,
    reason: str,
    try_number: int | None = None,
    wait_seconds: float | None = None,
) -> None:
    """Write one failed task into the warehouse's `ops.gate_runs` and `ops.data_health` (replacing an earlier try).

    Raises when the warehouse cannot be opened (locked, unwritable); `alert_task_failure` catches it.
    """
    # here, not at module level: every DAG file imports this module, and parsing stays light
    from core.duckdb_connect import connect_file
    from quality.health import ensure_ops_tables

    checked_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    suite = f"{dag_id}.{task_id}"
    day = dt.date.fromisoformat(ds) if ds else None
    details = json.dumps({"try_number": try_number, "reason": reason}, sort_keys=True, default=str)
    wait = WAREHOUSE_WAIT_SECONDS if wait_seconds is None else wait_seconds
    con = connect_file(settings, wait_seconds=wait)
    try:
        ensure_ops_tables(con)
        con.execute("begin transaction")
        try:
            for table in ("data_health", "gate_runs"):
                con.execute(
                    f"delete from ops.{table} "
                    "where run_id = ? and gate = ? and suite = ? and ds is not distinct from ?",
                    [run_id, TASK_GATE, suite, day],
                )
            con.execute(
                "insert into ops.data_health (run_id, checked_at, gate, suite, table_name, expectation, column_name, "
                "success, observed_value, details, ds, severity, status) "
                "values (?, ?, ?, ?, ?, 'task_succeeds', null, false, ?, ?, ?, 'critical', 'failed')",
                [run_id, checked_at, TASK_GATE, suite, dag_id, reason[:160], details, day],
            )
            con.execute(
                "insert into ops.gate_runs (run_id, checked_at, gate, suite, table_name, ds, status, expectations, "
                "failed, warned, rows_checked, reason, fingerprint) "
                "values (?, ?, ?, ?, ?, ?, 'failed', 1, 1, 0, null, ?, null)",
                [run_id, checked_at, TASK_GATE, suite, dag_id, day, f"{suite} failed: {reason}"[:1500]],
            )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        con.close()


def alert_task_failure(
    *, dag_id: str, task_id: str, run_id: str | None, ds: str | None, reason: str, try_number: int | None = None
) -> dict:
    """What a task failure callback does: the alert (file, log, webhook), then the data-health row.

    Never raises: a callback that fails would bury the task's own error.
    """
    record = send_alert(
        f"{dag_id}.{task_id} failed for {ds}: {reason}",
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        try_number=try_number,
    )
    try:
        settings = get_settings()
        record_task_failure(
            settings,
            dag_id=dag_id,
            task_id=task_id,
            run_id=run_id or "unknown",
            ds=ds,
            reason=reason,
            try_number=try_number,
        )
        record["data_health"] = "recorded"
    except Exception as exc:  # locked by another writer, disk full, ...: the alert file has it
        record["data_health"] = f"not recorded: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        log.warning("task failure not written to ops.data_health (%s); it is in alerts.jsonl", record["data_health"])
    return record

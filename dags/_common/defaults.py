"""Defaults every DAG uses: owner, retries with exponential backoff, the failure alert."""

from __future__ import annotations

import datetime as dt

from stackctl.alerts import alert_task_failure
from stackctl.private_files import use_private_umask

# A fixed vocabulary so the UI's tag filter stays useful.
TAGS = {"ingestion", "elt", "quality", "publish", "governance", "shop"}

WAREHOUSE_POOL = "duckdb_warehouse"  # one slot: DuckDB has a single writer per file


def alert_on_failure(context) -> None:
    """Alert file + webhook, and a failed row in ops.data_health for the Data health dashboard."""
    ti = context["task_instance"]
    exc = context.get("exception")
    reason = str(exc).splitlines()[0] if exc else "unknown error"
    alert_task_failure(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run_id=context.get("run_id"),
        ds=context.get("ds"),
        reason=reason,
        try_number=ti.try_number,
    )


def create_files_private(context) -> None:
    """Whatever the task writes (lake partitions, the warehouse) may hold personal data: 0600/0700,
    also when the scheduler was started without `python -m stackctl` and its umask."""
    use_private_umask()


DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=10),
    "on_failure_callback": alert_on_failure,
    "on_execute_callback": create_files_private,
}

"""Defaults every DAG uses: owner, retries with exponential backoff, the failure alerts.

One try of a task runs at most `TASK_TIMEOUT_MINUTES` (`core.orchestration.task_timeout`): a
hung task fails like any other. A task that failed for good (after its retries) runs both failure
callbacks: `alert_on_failure` (alert file, webhook, the Data health row) and Airflow's SMTP
notifier (`_common.notifiers`: an e-mail when the `alerts_smtp` connection exists). Each one's
trouble never stops the other.

The DAG ids, the warehouse pool and the tag vocabulary are not here: they are defined once in
`core.orchestration` (Airflow-free, so `stackctl` and the tests read the same ones), which DAG
files import directly.
"""

from __future__ import annotations

import datetime as dt

from _common.notifiers import FailureEmail, failure_reason
from core.orchestration import task_timeout
from core.private_files import use_private_umask
from quality.task_failures import alert_task_failure


def alert_on_failure(context) -> None:
    """Alert file + webhook, and a failed row in ops.data_health for the Data health dashboard."""
    ti = context["task_instance"]
    alert_task_failure(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run_id=context.get("run_id"),
        ds=context.get("ds"),
        reason=failure_reason(context),
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
    "execution_timeout": task_timeout(),
    "on_failure_callback": [alert_on_failure, FailureEmail()],
    "on_execute_callback": create_files_private,
}

"""The failure e-mail: Airflow's SMTP notifier, listed in every task's `on_failure_callback`.

`DEFAULT_ARGS` lists it beside `alert_on_failure` (alert file, webhook, Data health row), which it
does not replace. It sends through the Airflow Connection `alerts_smtp` (`core.alerts`: built from
.env's ALERT_SMTP_URL / ALERT_EMAIL_TO / ALERT_EMAIL_FROM, or made in Admin -> Connections with the
recipients in its extra `to`), looked up when a task has failed for good (after its retries).
Without that connection nothing is sent and nothing fails; a mail server that is down or refuses
the message is one warning in the task log, never a second error on top of the task's own.

The subject is the alert file's line (`<dag>.<task> failed for <ds>: <first line of the error>`).
"""

from __future__ import annotations

import html
import logging

from airflow.providers.smtp.notifications.smtp import SmtpNotifier

from core.alerts import ALERTS_SMTP_CONN_ID

log = logging.getLogger(__name__)


def failure_reason(context) -> str:
    """The error's first non-empty line (the task log's one-line reason), or its type."""
    exc = context.get("exception")
    if exc is None:
        return "unknown error"
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0].strip() if lines else type(exc).__name__


def failure_summary(context) -> str:
    """`<dag>.<task> failed for <ds>: <reason>`: the same line as the alert file's."""
    ti = context["task_instance"]
    return f"{ti.dag_id}.{ti.task_id} failed for {context.get('ds')}: {failure_reason(context)}"


def _recipients(value) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    return [str(address).strip() for address in value or () if str(address).strip()]


class FailureEmail(SmtpNotifier):
    """SmtpNotifier whose recipients, subject and body come from the connection and the failure."""

    def __init__(self, smtp_conn_id: str = ALERTS_SMTP_CONN_ID) -> None:
        # Recipients are read from the connection when a task fails, so a DAG file never needs them.
        super().__init__(to=[], smtp_conn_id=smtp_conn_id)

    def notify(self, context) -> None:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            conn = BaseHook.get_connection(self.smtp_conn_id)
        except AirflowNotFoundException:
            log.info("no Airflow connection %r: the failure is not e-mailed", self.smtp_conn_id)
            return
        to = _recipients(conn.extra_dejson.get("to"))
        if not to:
            log.warning("Airflow connection %r has no recipients (extra 'to'): not e-mailed", self.smtp_conn_id)
            return
        ti = context["task_instance"]
        summary = failure_summary(context)
        rows = [
            ("DAG", ti.dag_id),
            ("Task", ti.task_id),
            ("Run", ti.run_id),
            ("Data day (ds)", context.get("ds")),
            ("Try", ti.try_number),
            ("Log", getattr(ti, "log_url", None)),
        ]
        cells = "".join(f"<tr><td>{name}</td><td>{html.escape(str(value))}</td></tr>" for name, value in rows)
        self.to = to
        self.subject = summary[:200]  # one header line; the body has it whole
        self.html_content = f"<p>{html.escape(summary)}</p><table>{cells}</table>"
        try:
            super().notify(context)
        except Exception as exc:  # the task's own error is the one that matters
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("failure e-mail via connection %r not sent: %s", self.smtp_conn_id, detail)
            return
        log.info("failure e-mailed to %s", ", ".join(to))

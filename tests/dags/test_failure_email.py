"""A failed task is e-mailed by Airflow's SMTP notifier, beside the alert file, under the real Airflow.

`airflow dags test` runs a small DAG (in the test's own dags folder, on the repo's `DEFAULT_ARGS`)
whose two tasks fail. A local SMTP server (aiosmtpd on 127.0.0.1) stands in for the mail relay;
the `alerts_smtp` connection is what `python -m stackctl` builds from ALERT_SMTP_URL /
ALERT_EMAIL_TO / ALERT_EMAIL_FROM. The first task's failure arrives as one e-mail naming the DAG,
the task and the error's first line; the second task's notifier points at a connection nobody
configured, so it sends nothing and breaks nothing. Both failures are in the alert file.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from stackctl import procs

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "failing_for_alerts"
DAY = "2026-03-02"
TO = ["data-oncall@shop.example", "lead@shop.example"]
SENDER = "airflow@shop.example"

DAG_FILE = f'''
import datetime as dt

from _common.defaults import DEFAULT_ARGS, alert_on_failure
from _common.notifiers import FailureEmail
from airflow.sdk import dag, task


@dag(dag_id="{DAG_ID}", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
     default_args={{**DEFAULT_ARGS, "retries": 0}})
def failing_for_alerts():
    @task
    def load_partner_day():
        raise RuntimeError("partner feed empty: 0 rows for the day\\nsecond line: the details below")

    @task(on_failure_callback=[alert_on_failure, FailureEmail("alerts_smtp_nobody_configured")])
    def unmailed():
        raise ValueError("this failure has no mail connection")

    load_partner_day()
    unmailed()


failing_for_alerts()
'''


class Inbox:
    """aiosmtpd handler: keeps every message it is handed."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
def smtp_server() -> tuple[Inbox, int]:
    inbox = Inbox()
    port = procs.free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _airflow(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_a_failed_task_is_emailed_beside_the_alert_file(stack, smtp_server, tmp_path, monkeypatch):
    from core.alerts import alert_email_connections

    inbox, port = smtp_server
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "failing_for_alerts.py").write_text(textwrap.dedent(DAG_FILE))
    home = tmp_path / "airflow"
    # What stackctl gives its Airflow processes, from .env's settings.
    monkeypatch.setenv("ALERT_SMTP_URL", f"smtp://127.0.0.1:{port}?disable_tls=true")
    monkeypatch.setenv("ALERT_EMAIL_TO", ", ".join(TO))
    monkeypatch.setenv("ALERT_EMAIL_FROM", SENDER)
    (conn_id, fields), *others = alert_email_connections().items()
    assert conn_id == "alerts_smtp" and not others
    env = {
        **os.environ,  # STACK_DATA_DIR / STACK_VAR_DIR from the `stack` fixture
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "DO_NOT_TRACK": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO / "dags"), str(REPO)]),
        "AIRFLOW_CONN_ALERTS_SMTP": json.dumps(fields),
    }
    assert _airflow(env, "db", "migrate").returncode == 0
    run = _airflow(env, "dags", "test", DAG_ID, DAY, "-f", str(dags / "failing_for_alerts.py"))
    output = run.stdout[-4000:] + run.stderr[-4000:]

    deadline = time.monotonic() + 10  # aiosmtpd hands the message over on its own thread
    while not inbox.messages and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(inbox.messages) == 1, output
    recipients, message = inbox.messages[0]
    assert sorted(recipients) == sorted(TO)
    assert message["From"] == SENDER
    summary = f"{DAG_ID}.load_partner_day failed for {DAY}: partner feed empty: 0 rows for the day"
    assert message["Subject"] == summary
    body = message.get_body(("html", "plain")).get_content()
    assert summary in body and f"<td>{DAG_ID}</td>" in body and "<td>load_partner_day</td>" in body
    assert "second line" not in body, "the summary line, not the whole error"

    # The alert file got both failures, the unmailed one included: the notifier is beside it.
    alerts = [json.loads(line) for line in (stack.var_dir / "alerts.jsonl").read_text().splitlines()]
    assert {(a["task_id"], a["summary"]) for a in alerts} == {
        ("load_partner_day", summary),
        ("unmailed", f"{DAG_ID}.unmailed failed for {DAY}: this failure has no mail connection"),
    }
    # The unmailed task's notifier did run: it found no connection, said so, and raised nothing.
    logs = run.stdout + run.stderr
    assert "no Airflow connection 'alerts_smtp_nobody_configured': the failure is not e-mailed" in logs, output
    assert "Failed to run task callback" not in logs and "Failed to send notification" not in logs, output


def test_the_connection_comes_from_env_settings_only_when_set(monkeypatch):
    from core.alerts import alert_email_connections
    from core.settings import SettingError

    for name in ("ALERT_SMTP_URL", "ALERT_EMAIL_TO", "ALERT_EMAIL_FROM"):
        monkeypatch.delenv(name, raising=False)
    assert alert_email_connections() == {}, "no SMTP settings, no connection: nothing is e-mailed"
    monkeypatch.setenv("ALERT_SMTP_URL", "smtps://ops%40shop.example:p%40ss@mail.shop.example")
    with pytest.raises(SettingError, match="ALERT_EMAIL_TO"):
        alert_email_connections()
    monkeypatch.setenv("ALERT_EMAIL_TO", "a@shop.example,b@shop.example")
    fields = alert_email_connections()["alerts_smtp"]
    assert (fields["host"], fields["port"], fields["login"], fields["password"]) == (
        "mail.shop.example",
        465,
        "ops@shop.example",
        "p@ss",
    )
    assert fields["extra"]["from_email"] == "ops@shop.example"  # the login, when it is an address
    assert fields["extra"]["to"] == ["a@shop.example", "b@shop.example"]
    assert (fields["extra"]["disable_ssl"], fields["extra"]["disable_tls"]) == (False, True)  # TLS from the start
    monkeypatch.setenv("ALERT_SMTP_URL", "http://mail.shop.example")
    with pytest.raises(SettingError, match="ALERT_SMTP_URL") as refused:
        alert_email_connections()
    assert "mail.shop.example" not in str(refused.value), "the value (it may hold a password) is not echoed"

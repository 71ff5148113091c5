"""Alerts & Reports end to end: a real Superset, its Celery worker and beat, Debian's chromium, an SMTP server.

What decision-makers rely on: the weekly Executive KPIs e-mail arrives with the dashboard's image,
and the net-revenue-drop alert e-mails them when the newest day drops, and stays silent when it
does not. The Superset is `tests/superset/stack.py`'s (fixture serving file, assets, roles); the
worker and beat are started by the same `stackctl.superset_service.start_scheduler` that `make up`
calls; the schedules come from `superset/reports.yaml` through `provision.apply_reports`.
The SMTP server is aiosmtpd on 127.0.0.1, reached through ALERT_SMTP_URL as in production.

The schedules are the file's, then a copy whose crontabs never come due during the test, so the
test decides when they run: it enqueues `reports.execute` for each (what Superset's scheduler task
enqueues when a crontab is due), the alert once on a day like its baseline and once on a day at
half of it. That beat enqueues the scheduler task every minute, and the worker runs it, is checked
from the worker's log.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller

from stackctl import procs, superset_service
from superset import latency, provision, reports
from tests.superset.serving_fixture import ServingData, money, write_serving_file
from tests.superset.stack import Stack, running_superset

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not latency.CHROMIUM.exists(),
        reason=f"{latency.CHROMIUM} is not installed (Debian package `chromium`); reports are rendered in it",
    ),
]

REPORT_TO = ["board@shop.example", "cfo@shop.example"]
ALERT_TO = ["finance-oncall@shop.example"]
SENDER = "reports@shop.example"
PNG = b"\x89PNG\r\n\x1a\n"


class Inbox:
    """aiosmtpd handler: keeps every message it is handed."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def matching(self, text: str) -> list[tuple[list[str], email.message.EmailMessage]]:
        return [(to, message) for to, message in self.messages if text in str(message["Subject"])]

    def wait_for(self, text: str, timeout: float, logs: list[Path]) -> tuple[list[str], email.message.EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.matching(text)
            if found:
                return found[0]
            time.sleep(0.5)
        tails = "\n".join(f"--- {log}\n{procs.tail(log, 60)}" for log in logs)
        subjects = [str(message["Subject"]) for _, message in self.messages]
        raise AssertionError(f"no e-mail with {text!r} in its subject within {timeout:.0f} s (got {subjects})\n{tails}")


@dataclass
class ReportStack:
    stack: Stack
    inbox: Inbox
    serving: Path
    reports_file: Path

    @property
    def logs(self) -> list[Path]:
        run = self.stack.settings.run_dir
        return [procs.log_file(name, run) for name in (superset_service.WORKER, superset_service.BEAT)]


@pytest.fixture(scope="module")
def report_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportStack]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=procs.free_port())
    controller.start()
    try:
        with pytest.MonkeyPatch.context() as env:
            # What .env would say; superset_config.py turns ALERT_SMTP_URL into Superset's SMTP settings.
            env.setenv("ALERT_SMTP_URL", f"smtp://127.0.0.1:{controller.port}?disable_tls=true")
            env.setenv("ALERT_EMAIL_FROM", SENDER)
            env.setenv("SUPERSET_REPORT_RECIPIENTS", ", ".join(REPORT_TO))
            env.setenv("SUPERSET_ALERT_RECIPIENTS", ", ".join(ALERT_TO))
            for name in (
                "SUPERSET_CELERY_BROKER_URL",
                "SUPERSET_CELERY_RESULT_BACKEND",
                "SUPERSET_WORKER_CONCURRENCY",
                "STACK_MODE",
            ):
                env.delenv(name, raising=False)
            with running_superset(tmp_path_factory, "superset-reports") as stack:
                try:
                    superset_service.start_scheduler(stack.settings)
                    copy = tmp_path_factory.mktemp("reports") / "reports.yaml"
                    yield ReportStack(stack, inbox, stack.settings.serving_path, copy)
                finally:
                    stopped = superset_service.stop_scheduler(stack.settings)
                    assert sorted(stopped) == sorted([superset_service.WORKER, superset_service.BEAT])
                    assert not superset_service.scheduler_running(stack.settings)
    finally:
        controller.stop()


def _never_due_copy(target: Path) -> None:
    """reports.yaml with crontabs that never come due while a test runs (the test runs them itself)."""
    document = yaml.safe_load(reports.REPORTS_FILE.read_text())
    for entry in document["schedules"]:
        entry["crontab"] = "0 3 1 1 *"
    target.write_text(yaml.safe_dump(document, sort_keys=False))


def _with_newest_day_at(data: ServingData, share: Decimal) -> ServingData:
    """The fixture data with the newest day's net revenue at `share` of its 4-week same-weekday baseline."""
    rows = {row["revenue_date"]: row for row in data.tables["fct_daily_revenue"]}
    newest = max(rows)
    baseline = sum(rows[newest - dt.timedelta(days=7 * k)]["net_revenue_eur"] for k in range(1, 5)) / 4
    rows[newest]["net_revenue_eur"] = money(baseline * share)
    return data


def _execute_now(stack: ReportStack, report_id: int) -> None:
    """Enqueue `reports.execute` for one schedule, as Superset's scheduler task does when it is due."""
    env = superset_service.superset_env(stack.stack.settings)
    code = (
        "import sys, datetime as dt; from celery import Celery; "
        "Celery(broker=sys.argv[1]).send_task('reports.execute', args=[int(sys.argv[2])], eta=dt.datetime.now(dt.UTC))"
    )
    subprocess.run(
        [
            str(superset_service.superset_venv(stack.stack.settings) / "bin" / "python"),
            "-c",
            code,
            env["SUPERSET_CELERY_BROKER_URL"],
            str(report_id),
        ],
        env=env,
        check=True,
        timeout=60,
    )


def _logs(stack: ReportStack, report_id: int) -> list[dict]:
    return stack.stack.client.get(f"/api/v1/report/{report_id}/log/", q="(page_size:100)")["result"]


def _wait_for_log(stack: ReportStack, report_id: int, count: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = [log for log in _logs(stack, report_id) if log["state"] != "Working"]
        if len(logs) >= count:
            return max(logs, key=lambda log: log["id"])
        time.sleep(0.5)
    tails = "\n".join(f"--- {log}\n{procs.tail(log, 60)}" for log in stack.logs)
    raise AssertionError(f"report {report_id} logged no {count}. run within {timeout:.0f} s\n{tails}")


def _png_parts(message: email.message.EmailMessage) -> list[bytes]:
    return [
        part.get_payload(decode=True)
        for part in message.walk()
        if part.get_content_maintype() == "image" or part.get_content_type() == "application/octet-stream"
    ]


def test_weekly_report_and_net_revenue_alert_arrive_by_email(
    report_stack: ReportStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = report_stack
    settings = stack.stack.settings
    began = time.monotonic()
    # The schedules as `make up` provisions them, then the test's copy (an update), then no change.
    assert provision.apply_reports(settings) == {"Executive KPIs weekly": "created", "Net revenue drop": "created"}
    _never_due_copy(stack.reports_file)
    assert set(provision.apply_reports(settings, stack.reports_file).values()) == {"updated (crontab)"}
    assert set(provision.apply_reports(settings, stack.reports_file).values()) == {"unchanged"}
    listed = stack.stack.client.get("/api/v1/report/", q="(columns:!(id,name,type,active,timezone))")["result"]
    ids = {row["name"]: row["id"] for row in listed}
    assert all(row["active"] and row["timezone"] == "Europe/Berlin" for row in listed)
    report, alert = ids["Executive KPIs weekly"], ids["Net revenue drop"]

    # The weekly report runs now (the worker then takes the alert's runs, one task at a time).
    _execute_now(stack, report)

    # The alert on a day like its baseline: evaluated, not triggered, nothing sent.
    write_serving_file(stack.serving, _with_newest_day_at(stack.stack.data, Decimal("1.00")))
    _execute_now(stack, alert)
    quiet = _wait_for_log(stack, alert, 1)
    assert quiet["state"] == "Not triggered", quiet
    assert quiet["value"] == pytest.approx(0.0, abs=0.2)

    # The newest day at half its baseline: the alert fires and e-mails its recipients.
    write_serving_file(stack.serving, _with_newest_day_at(stack.stack.data, Decimal("0.50")))
    _execute_now(stack, alert)
    fired = _wait_for_log(stack, alert, 2, timeout=90)
    assert fired["state"] == "Success", fired
    assert fired["value"] == pytest.approx(50.0, abs=0.2)
    to, message = stack.inbox.wait_for("net revenue dropped", 10, stack.logs)
    assert to == ALERT_TO
    assert message["From"] == SENDER
    assert any(image.startswith(PNG) for image in _png_parts(message)), "the alert carries the dashboard's image"
    assert len(stack.inbox.matching("net revenue dropped")) == 1, "one e-mail: none for the day like its baseline"

    # The weekly report: the whole Executive KPIs dashboard as an image, to the report's recipients.
    to, message = stack.inbox.wait_for("Executive KPIs", 90, stack.logs)
    assert sorted(to) == sorted(REPORT_TO)
    images = [image for image in _png_parts(message) if image.startswith(PNG)]
    assert images and max(len(image) for image in images) > 20_000, "a screenshot of the whole dashboard"
    assert _wait_for_log(stack, report, 1)["state"] == "Success"

    # Beat enqueues Superset's scheduler task at every full minute and the worker runs it: what makes
    # the Monday report and the daily alert happen without anyone triggering them. Checked when the
    # first full minute after beat started is at most 25 s away (most runs), to bound the test's time.
    assert superset_service.scheduler_running(settings)
    beat_log = procs.log_file(superset_service.BEAT, settings.run_dir)
    started = re.search(r"\[([\d-]+ [\d:]+),\d+: INFO/MainProcess\] beat: Starting", procs.tail(beat_log, 200))
    assert started, procs.tail(beat_log)
    first_tick = dt.datetime.fromisoformat(started.group(1)).replace(second=0) + dt.timedelta(minutes=1)
    worker_log = procs.log_file(superset_service.WORKER, settings.run_dir)
    scheduled = re.compile(r"Task reports\.scheduler\[[^]]+\] succeeded")
    wait = (first_tick - dt.datetime.now()).total_seconds() + 10
    if wait <= 35:
        deadline = time.monotonic() + max(wait, 0)
        while not scheduled.search(procs.tail(worker_log, 400)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert scheduled.search(procs.tail(worker_log, 400)), f"no reports.scheduler run; beat:\n{procs.tail(beat_log)}"
    else:
        print(f"beat's first tick is {wait:.0f} s away: not waited for")

    # No recipients any more: the alert is switched off, not deleted.
    monkeypatch.setenv("SUPERSET_ALERT_RECIPIENTS", "")
    done = provision.apply_reports(settings, stack.reports_file)
    assert done["Net revenue drop"] == "deactivated (SUPERSET_ALERT_RECIPIENTS is empty)"
    assert not stack.stack.client.get(f"/api/v1/report/{alert}")["result"]["active"]
    print(f"reports and alerts: {time.monotonic() - began:.1f}s after the schedules were created")

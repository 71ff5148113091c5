"""`superset/reports.yaml` without a Superset: what it names exists, the alert's SQL says what it claims.

The running-Superset test (`test_reports_by_email.py`) shows the e-mails arrive; these check, in
milliseconds, the parts a reader of the file relies on: the schedules name dashboards and the
database of `superset/assets/`, the alert's query returns the newest day's drop against the same
weekday of the 4 weeks before (on the DuckDB file the dashboards read), the settings decide
who gets what, and Superset mails through the stack's one SMTP setting (ALERT_SMTP_URL).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import yaml

from superset import reports
from superset.provision import ASSETS_DIR, CONFIG_PATH
from tests.superset.serving_fixture import build_data, money, write_serving_file


def _uuids(kind: str) -> set[str]:
    return {str(yaml.safe_load(path.read_text())["uuid"]) for path in (ASSETS_DIR / kind).glob("*.yaml")}


def test_the_schedules_name_assets_that_exist() -> None:
    schedules = {schedule.name: schedule for schedule in reports.load_schedules()}
    assert set(schedules) == {"Executive KPIs weekly", "Net revenue drop"}
    dashboards, databases = _uuids("dashboards"), _uuids("databases")
    executive = yaml.safe_load((ASSETS_DIR / "dashboards" / "executive_kpis.yaml").read_text())["uuid"]
    weekly = schedules["Executive KPIs weekly"]
    assert (weekly.type, weekly.dashboard, weekly.crontab) == ("Report", executive, "0 7 * * 1")
    alert = schedules["Net revenue drop"]
    assert alert.dashboard in dashboards and alert.database in databases
    serving = yaml.safe_load((ASSETS_DIR / "databases" / "serving.yaml").read_text())["uuid"]
    assert alert.database == serving
    assert alert.condition == {"op": ">=", "threshold": 25}


def _drop(path: Path, share: Decimal | None, history_days: int | None = None) -> float | None:
    data = build_data()
    rows = data.tables["fct_daily_revenue"]
    if history_days is not None:
        rows[:] = rows[-history_days:]
    by_day = {row["revenue_date"]: row for row in rows}
    newest = max(by_day)
    if share is not None:
        baseline = sum(by_day[newest - dt.timedelta(days=7 * k)]["net_revenue_eur"] for k in range(1, 5)) / 4
        by_day[newest]["net_revenue_eur"] = money(baseline * share)
    write_serving_file(path, data, with_ops=False)
    sql = next(s.sql for s in reports.load_schedules() if s.type == "Alert")
    with duckdb.connect(str(path), read_only=True) as con:
        (value,) = con.execute(sql).fetchone()
    return value


@pytest.mark.parametrize(("share", "drop"), [(Decimal("1.00"), 0.0), (Decimal("0.74"), 26.0), (Decimal("1.30"), -30.0)])
def test_the_alert_query_returns_the_drop_against_the_same_weekday(tmp_path: Path, share: Decimal, drop: float) -> None:
    assert _drop(tmp_path / "serving.duckdb", share) == pytest.approx(drop, abs=0.1)


def test_the_alert_query_is_silent_without_four_weeks_of_history(tmp_path: Path) -> None:
    assert _drop(tmp_path / "serving.duckdb", None, history_days=28) is None


def test_recipients_and_time_zone_come_from_the_settings() -> None:
    weekly = next(s for s in reports.load_schedules() if s.type == "Report")
    environ = {"SUPERSET_REPORT_RECIPIENTS": " board@shop.example; cfo@shop.example ,", "ALERT_SMTP_URL": "smtp://x"}
    assert reports.recipients(weekly, environ) == ["board@shop.example", "cfo@shop.example"]
    assert reports.timezone(weekly, environ) == "Europe/Berlin"
    assert reports.timezone(weekly, {"SUPERSET_REPORT_TIMEZONE": "America/New_York"}) == "America/New_York"
    body = reports.payload(weekly, {weekly.dashboard: 7}, environ, active=True)
    assert body["dashboard"] == 7 and body["recipients"][0]["recipient_config_json"]["target"] == (
        "board@shop.example, cfo@shop.example"
    )


def test_a_bad_entry_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "reports.yaml"
    path.write_text(
        "schedules:\n- {name: Broken, type: Alert, crontab: '0 8 * * *', report_format: PNG,"
        " recipients_from: X, dashboard: d, sql: 'select 1'}\n"
    )
    with pytest.raises(reports.ReportsError, match="Broken: an alert needs a database"):
        reports.load_schedules(path)


def _smtp_config(tmp_path: Path, **variables: str) -> dict:
    """Superset's SMTP settings as superset_config.py derives them from the stack's variables."""
    names = ("SMTP_HOST", "SMTP_PORT", "SMTP_SSL", "SMTP_STARTTLS", "SMTP_USER", "SMTP_PASSWORD", "SMTP_MAIL_FROM")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPERSET", "ALERT_"))}
    env.update({"SUPERSET_SECRET_KEY": os.urandom(24).hex(), "STACK_VAR_DIR": str(tmp_path / "var"), **variables})
    code = (
        "import json, runpy, sys; config = runpy.run_path(sys.argv[1]); "
        "print(json.dumps({name: config[name] for name in sys.argv[2:]}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(CONFIG_PATH), *names, "SMTP_SSL_SERVER_AUTH"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-1500:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_superset_mails_through_the_stacks_one_smtp_setting(tmp_path: Path) -> None:
    starttls = _smtp_config(
        tmp_path,
        ALERT_SMTP_URL="smtp://alerts%40shop.example:s3cret@smtp.shop.example",
        ALERT_EMAIL_FROM="reports@shop.example",
    )
    assert starttls == {
        "SMTP_HOST": "smtp.shop.example",
        "SMTP_PORT": 587,
        "SMTP_SSL": False,
        "SMTP_STARTTLS": True,
        "SMTP_USER": "alerts@shop.example",
        "SMTP_PASSWORD": "s3cret",
        "SMTP_MAIL_FROM": "reports@shop.example",
        "SMTP_SSL_SERVER_AUTH": True,
    }
    tls = _smtp_config(tmp_path, ALERT_SMTP_URL="smtps://u:p@smtp.shop.example")
    assert (tls["SMTP_PORT"], tls["SMTP_SSL"], tls["SMTP_STARTTLS"]) == (465, True, False)
    relay = _smtp_config(tmp_path, ALERT_SMTP_URL="smtp://127.0.0.1:2525?disable_tls=true")
    assert (relay["SMTP_PORT"], relay["SMTP_STARTTLS"], relay["SMTP_USER"], relay["SMTP_PASSWORD"]) == (
        2525,
        False,
        None,
        None,
    )
    # Superset's own defaults would log in as "superset"/"superset": never without a URL either.
    unset = _smtp_config(tmp_path)
    assert (unset["SMTP_USER"], unset["SMTP_PASSWORD"]) == (None, None)


def test_cluster_modes_report_queue_works_with_supersets_own_redis_client() -> None:
    """Cluster mode queues Superset's report tasks on Redis (db 2): Superset's venv must talk to it.

    apache-superset pins redis-py below 6 while kombu 5.7's Redis transport refuses anything below
    6.1; this round-trips one message through that venv's kombu, on a queue of its own.
    """
    from stackctl import cluster, superset_service

    url = superset_service.CLUSTER_CELERY_URL
    try:
        cluster.check_redis(url, timeout=2)
    except cluster.ClusterError as exc:
        pytest.skip(f"no Redis on 127.0.0.1 for cluster mode's queue: {exc}")
    code = (
        "import sys; from kombu import Connection\n"
        "with Connection(sys.argv[1]) as conn:\n"
        "    queue = conn.SimpleQueue(sys.argv[2])\n"
        "    queue.put({'ping': 1}); message = queue.get(timeout=10); message.ack()\n"
        "    queue.queue.delete(); print(message.payload['ping'])\n"
    )
    python = CONFIG_PATH.parents[1] / ".venv" / "superset" / "bin" / "python"
    queue = f"test-report-queue-{os.urandom(4).hex()}"
    result = subprocess.run(
        [str(python), "-c", code, url, queue], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and result.stdout.strip() == "1", result.stderr[-1500:]


def test_the_report_queue_needs_no_server_embedded_and_uses_redis_db_2_in_cluster_mode(
    stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stackctl import superset_service

    for name in ("STACK_MODE", "SUPERSET_CELERY_BROKER_URL", "SUPERSET_CELERY_RESULT_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    home = stack.superset_home
    assert superset_service.celery_urls(stack) == {
        "SUPERSET_CELERY_BROKER_URL": f"sqla+sqlite:///{home / 'celery_broker.sqlite'}",
        "SUPERSET_CELERY_RESULT_BACKEND": f"db+sqlite:///{home / 'celery_results.sqlite'}",
    }
    monkeypatch.setenv("STACK_MODE", "cluster")
    assert set(superset_service.celery_urls(stack).values()) == {"redis://127.0.0.1:6379/2"}
    monkeypatch.setenv("SUPERSET_CELERY_BROKER_URL", "redis://10.0.0.5:6379/4")
    assert superset_service.celery_urls(stack)["SUPERSET_CELERY_RESULT_BACKEND"] == "redis://10.0.0.5:6379/4"

"""Alerts: one clear line per failure, in the log, in an alert file, and to a webhook if set.

Any part of the stack calls `send_alert`. The alert file (`var/alerts.jsonl`) always gets the
record first; ALERT_WEBHOOK_URL (Slack-compatible JSON `{"text": ...}`) is optional, and a
webhook that fails never hides the alert. Airflow's task failures also reach the Data health
dashboard: `quality.task_failures` writes them to the warehouse after alerting here.

Failed Airflow tasks are also e-mailed, by Airflow's own SMTP notifier (`dags/_common/notifiers.py`)
through the Airflow Connection `alerts_smtp`. `alert_email_connections` builds that connection from
.env for the Airflow processes `stackctl` starts:

- `ALERT_SMTP_URL`: the SMTP server, `smtp://user:password@host:587` (STARTTLS) or
  `smtps://user:password@host:465` (TLS); query parameters are the connection's extras
  (`?disable_tls=true` for a relay without TLS, `timeout=`, `retry_limit=`);
- `ALERT_EMAIL_TO`: recipients, comma-separated (required with `ALERT_SMTP_URL`);
- `ALERT_EMAIL_FROM`: the sender (default: the login if it is an address, else `airflow@localhost`).

Unset, there is no connection and nothing is e-mailed. A connection made in Airflow instead
(Admin -> Connections, a secrets backend) works the same: type smtp, recipients in its extra `to`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from urllib.parse import parse_qsl, unquote, urlsplit

import requests

from core.settings import SettingError, get_settings

log = logging.getLogger(__name__)

ALERTS_SMTP_CONN_ID = "alerts_smtp"
# scheme -> (default port, extras): STARTTLS on the submission port, or TLS from the first byte.
_SMTP_SCHEMES = {
    "smtp": (587, {"disable_ssl": True, "disable_tls": False}),
    "smtps": (465, {"disable_ssl": False, "disable_tls": True}),
}


def send_alert(summary: str, **details: object) -> dict:
    """Record and forward one alert; returns the record written."""
    record = {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "summary": summary, **details}
    log.error("ALERT: %s", summary)
    path = get_settings().var_dir / "alerts.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(record, default=str) + "\n")
    url = os.environ.get("ALERT_WEBHOOK_URL")
    if url:
        try:
            requests.post(url, json={"text": f":red_circle: {summary}"}, timeout=5).raise_for_status()
        except requests.RequestException as exc:
            log.warning("alert webhook %s failed: %s", url, exc)
    return record


def _extra_value(value: str) -> object:
    # The SMTP hook tests its flags for truth: the text "false" would switch TLS off.
    return {"true": True, "false": False}.get(value.strip().lower(), value)


def alert_email_connections() -> dict[str, dict]:
    """{"alerts_smtp": the connection's fields in Airflow's JSON form} from .env, or {} when ALERT_SMTP_URL is unset."""
    url = os.environ.get("ALERT_SMTP_URL", "").strip()
    if not url:
        return {}
    parts = urlsplit(url)
    if parts.scheme not in _SMTP_SCHEMES or not parts.hostname:
        # Not the value itself: it may hold the password.
        raise SettingError("ALERT_SMTP_URL: expected smtp://[user:password@]host[:port] (STARTTLS) or smtps://...")
    to = [address.strip() for address in os.environ.get("ALERT_EMAIL_TO", "").split(",") if address.strip()]
    if not to:
        raise SettingError("ALERT_EMAIL_TO: ALERT_SMTP_URL is set, so name who gets the alert e-mails")
    default_port, extra = _SMTP_SCHEMES[parts.scheme]
    login = unquote(parts.username) if parts.username else None
    sender = os.environ.get("ALERT_EMAIL_FROM", "").strip() or (
        login if login and "@" in login else "airflow@localhost"
    )
    try:
        port = parts.port or default_port
    except ValueError as error:
        raise SettingError(f"ALERT_SMTP_URL: {error}") from None
    return {
        ALERTS_SMTP_CONN_ID: {
            "conn_type": "smtp",
            "host": parts.hostname,
            "port": port,
            "login": login,
            "password": unquote(parts.password) if parts.password else None,
            "extra": {
                **extra,
                # A dead mail server must not hold a failing task's callback for minutes.
                "timeout": 10,
                "retry_limit": 1,
                **{key: _extra_value(value) for key, value in parse_qsl(parts.query)},
                "from_email": sender,
                "to": to,
            },
        }
    }

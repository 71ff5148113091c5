"""Alerts: one clear line per failure, in the log, in an alert file, and to a webhook if set.

Any part of the stack calls `send_alert`. The alert file (`var/alerts.jsonl`) always gets the
record first; ALERT_WEBHOOK_URL (Slack-compatible JSON `{"text": ...}`) is optional, and a
webhook that fails never hides the alert. Airflow's task failures also reach the Data health
dashboard: `quality.task_failures` writes them to the warehouse after alerting here.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os

import requests

from core.settings import get_settings

log = logging.getLogger(__name__)


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

"""Serve layer: Superset's scheduled e-mail reports and alerts, from `superset/reports.yaml`.

Superset's asset import/export carries databases, datasets, charts and dashboards but no report
schedules, so these are kept as code here and applied through the REST API (`/api/v1/report/`),
after the dashboards are imported (`superset/provision.py`: `apply_reports`). Idempotent: a schedule
is found by its name and type, created when missing, updated only when a field differs.

Per schedule, from the environment (.env):
- its recipients, from the setting named in `recipients_from` (comma-separated addresses);
- its time zone, SUPERSET_REPORT_TIMEZONE (default Europe/Berlin) unless the file names one.

A schedule is active only when it has recipients and the stack has an SMTP server
(ALERT_SMTP_URL, the same one Airflow's failure e-mails use; superset_config.py turns it into
Superset's SMTP settings). Otherwise it is not created, and one that exists is deactivated, so a
removed recipient list stops the e-mails. Schedules are never deleted here: one removed from the
file stays in Superset (the log says so) until deleted in the UI.

The schedules run in Superset's Celery worker and beat (`stackctl/superset_service.py`), as the
admin that created them (Superset's default executor: the owner).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import requests
import yaml

HERE = Path(__file__).resolve().parent
REPORTS_FILE = HERE / "reports.yaml"
DEFAULT_TIMEZONE = "Europe/Berlin"
TYPES = ("Report", "Alert")
FORMATS = ("PNG", "PDF", "CSV", "TEXT")
OPERATORS = (">=", ">", "<=", "<", "==", "!=")
_KEYS = {
    "name",
    "type",
    "description",
    "email_subject",
    "dashboard",
    "chart",
    "database",
    "sql",
    "condition",
    "crontab",
    "timezone",
    "report_format",
    "recipients_from",
    "grace_period",
    "working_timeout",
    "log_retention",
}


class ReportsError(RuntimeError):
    """The reports file is invalid, or Superset refused a schedule."""


class Client(Protocol):
    def get(self, path: str, **params: Any) -> dict[str, Any]: ...
    def post(self, path: str, **kwargs: Any) -> Any: ...
    def put(self, path: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class Schedule:
    """One entry of the reports file."""

    name: str
    type: str
    crontab: str
    report_format: str
    recipients_from: str
    description: str = ""
    email_subject: str | None = None
    dashboard: str | None = None
    chart: str | None = None
    database: str | None = None
    sql: str | None = None
    condition: dict[str, Any] = field(default_factory=dict)
    timezone: str | None = None
    grace_period: int = 14_400
    working_timeout: int = 600
    log_retention: int = 90


def load_schedules(path: Path = REPORTS_FILE) -> list[Schedule]:
    """The schedules of the reports file, checked (ReportsError names the entry and the problem)."""
    document = yaml.safe_load(path.read_text()) or {}
    entries = document.get("schedules") or []
    schedules: list[Schedule] = []
    seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(entries):
        where = f"{path.name}: schedule {entry.get('name') or index + 1}"
        unknown = set(entry) - _KEYS
        if unknown:
            raise ReportsError(f"{where}: unknown keys {sorted(unknown)}")
        missing = [key for key in ("name", "type", "crontab", "report_format", "recipients_from") if not entry.get(key)]
        if missing:
            raise ReportsError(f"{where}: missing {missing}")
        if entry["type"] not in TYPES:
            raise ReportsError(f"{where}: type must be one of {TYPES}")
        if entry["report_format"] not in FORMATS:
            raise ReportsError(f"{where}: report_format must be one of {FORMATS}")
        if bool(entry.get("dashboard")) == bool(entry.get("chart")):
            raise ReportsError(f"{where}: name exactly one of dashboard or chart (what the e-mail shows)")
        if entry["type"] == "Alert":
            condition = entry.get("condition") or {}
            if not entry.get("database") or not entry.get("sql"):
                raise ReportsError(f"{where}: an alert needs a database and its sql")
            if condition.get("op") not in OPERATORS or not isinstance(condition.get("threshold"), int | float):
                raise ReportsError(f"{where}: condition needs op (one of {OPERATORS}) and a numeric threshold")
        key = (entry["type"], entry["name"])
        if key in seen:
            raise ReportsError(f"{where}: a second {entry['type']} with this name")
        seen.add(key)
        schedules.append(Schedule(**{k: str(v) if k == "crontab" else v for k, v in entry.items()}))
    return schedules


def recipients(schedule: Schedule, environ: Mapping[str, str] = os.environ) -> list[str]:
    """The addresses in the schedule's `recipients_from` setting ([] when unset)."""
    value = environ.get(schedule.recipients_from, "")
    return [address.strip() for address in value.replace(";", ",").split(",") if address.strip()]


def timezone(schedule: Schedule, environ: Mapping[str, str] = os.environ) -> str:
    return schedule.timezone or environ.get("SUPERSET_REPORT_TIMEZONE", "").strip() or DEFAULT_TIMEZONE


def payload(schedule: Schedule, ids: Mapping[str, int], environ: Mapping[str, str], active: bool) -> dict[str, Any]:
    """The body of POST/PUT /api/v1/report/ for `schedule` (`ids`: asset uuid -> id in Superset)."""

    def resolve(uuid: str | None, what: str) -> int | None:
        if uuid is None:
            return None
        if uuid not in ids:
            raise ReportsError(f"schedule {schedule.name!r}: no {what} with uuid {uuid} in Superset (import first)")
        return ids[uuid]

    body: dict[str, Any] = {
        "type": schedule.type,
        "name": schedule.name,
        "description": schedule.description,
        "crontab": schedule.crontab,
        "timezone": timezone(schedule, environ),
        "dashboard": resolve(schedule.dashboard, "dashboard"),
        "chart": resolve(schedule.chart, "chart"),
        "report_format": schedule.report_format,
        "recipients": [
            {"type": "Email", "recipient_config_json": {"target": ", ".join(recipients(schedule, environ))}}
        ],
        "active": active,
        "working_timeout": schedule.working_timeout,
        "log_retention": schedule.log_retention,
        "creation_method": "alerts_reports",
    }
    if schedule.email_subject:
        body["email_subject"] = schedule.email_subject
    if schedule.type == "Alert":
        body.update(
            database=resolve(schedule.database, "database"),
            sql=schedule.sql,
            validator_type="operator",
            validator_config_json={"op": schedule.condition["op"], "threshold": schedule.condition["threshold"]},
            grace_period=schedule.grace_period,
        )
    return body


def _paged(client: Client, path: str, columns: str, order: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page = 0
    while True:
        # Pages need a stable order (PostgreSQL metadata repeats or skips rows without one).
        query = f"(columns:!({columns}),order_column:{order},order_direction:asc,page:{page},page_size:100)"
        result = client.get(path, q=query)
        rows.extend(result["result"])
        if len(result["result"]) < 100:
            return rows
        page += 1


def _asset_ids(client: Client, schedules: list[Schedule]) -> dict[str, int]:
    """uuid -> id in Superset of every dashboard, chart and database the schedules name."""
    ids: dict[str, int] = {}
    for schedule in schedules:
        for kind, uuid in (
            ("dashboard", schedule.dashboard),
            ("chart", schedule.chart),
            ("database", schedule.database),
        ):
            if uuid is None or uuid in ids:
                continue
            if kind == "dashboard":
                # The dashboard API takes a uuid in place of the id; its list cannot filter on uuids.
                try:
                    ids[uuid] = int(client.get(f"/api/v1/dashboard/{uuid}")["result"]["id"])
                except requests.HTTPError as exc:
                    if exc.response is None or exc.response.status_code != 404:
                        raise
                continue
            query = f"(columns:!(id,uuid),filters:!((col:uuid,opr:eq,value:'{uuid}')))"
            rows = client.get(f"/api/v1/{kind}/", q=query)["result"]
            if rows:
                ids[uuid] = int(rows[0]["id"])
    return ids


def _current(client: Client, report_id: int) -> dict[str, Any]:
    """What Superset holds for a schedule, in the shape of `payload()` (for the comparison)."""
    shown = client.get(f"/api/v1/report/{report_id}")["result"]
    targets = []
    for recipient in shown.get("recipients") or []:
        config = recipient.get("recipient_config_json") or "{}"
        config = json.loads(config) if isinstance(config, str) else config
        targets.append({"type": recipient.get("type"), "recipient_config_json": {"target": config.get("target", "")}})
    validator = shown.get("validator_config_json") or None
    current = {
        **shown,
        "dashboard": (shown.get("dashboard") or {}).get("id"),
        "chart": (shown.get("chart") or {}).get("id"),
        "database": (shown.get("database") or {}).get("id"),
        "recipients": targets,
        "validator_config_json": json.loads(validator) if isinstance(validator, str) else validator,
    }
    return current


def _differs(wanted: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    def norm(key: str, value: Any) -> Any:
        if key == "validator_config_json" and value:
            return {"op": value.get("op"), "threshold": float(value.get("threshold"))}
        if key == "creation_method":
            return None  # how it was first made; Superset keeps it
        if isinstance(value, str):
            return value.strip()
        return value

    return [key for key, value in wanted.items() if norm(key, value) != norm(key, current.get(key))]


def _check(response: Any, what: str) -> dict[str, Any]:
    if response.status_code not in (200, 201):
        raise ReportsError(f"{what} failed (HTTP {response.status_code}): {response.text[:800]}")
    return dict(response.json())


def apply_reports(
    client: Client,
    path: Path = REPORTS_FILE,
    *,
    environ: Mapping[str, str] = os.environ,
    log: Callable[[str], None] = print,
) -> dict[str, str]:
    """Create or update every schedule of `path`; returns name -> what was done."""
    schedules = load_schedules(path)
    smtp = bool(environ.get("ALERT_SMTP_URL", "").strip())
    ids = _asset_ids(client, schedules)
    listed = _paged(client, "/api/v1/report/", "id,name,type", order="name")
    existing = {(row["type"], row["name"]): int(row["id"]) for row in listed}
    done: dict[str, str] = {}
    for schedule in schedules:
        addresses = recipients(schedule, environ)
        active = smtp and bool(addresses)
        report_id = existing.get((schedule.type, schedule.name))
        if not active:
            why = "ALERT_SMTP_URL is not set" if not smtp else f"{schedule.recipients_from} is empty"
            if report_id is None:
                done[schedule.name] = f"not scheduled ({why})"
                continue
            if not _current(client, report_id).get("active"):
                done[schedule.name] = f"inactive ({why})"
                continue
            # Only switch it off: its recipients stay as they were, for whoever turns it back on.
            _check(client.put(f"/api/v1/report/{report_id}", json={"active": False}), f"deactivating {schedule.name!r}")
            done[schedule.name] = f"deactivated ({why})"
            continue
        body = payload(schedule, ids, environ, active=True)
        if report_id is None:
            _check(client.post("/api/v1/report/", json=body), f"creating {schedule.type} {schedule.name!r}")
            done[schedule.name] = "created"
            continue
        changed = _differs(body, _current(client, report_id))
        if not changed:
            done[schedule.name] = "unchanged"
            continue
        _check(client.put(f"/api/v1/report/{report_id}", json=body), f"updating {schedule.type} {schedule.name!r}")
        done[schedule.name] = f"updated ({', '.join(changed)})"
    wanted = {(schedule.type, schedule.name) for schedule in schedules}
    for kind, name in sorted(set(existing) - wanted):
        log(f"superset {kind.lower()} {name!r} exists only in Superset (made in the UI, not in {path.name})")
    for name, what in done.items():
        log(f"superset schedule {name!r}: {what}")
    return done

"""Airflow's audit log (who triggered, paused, cleared which DAG), read through Airflow's REST API.

Not from Airflow's metadata database: under Airflow 3 a task may not open it (inside a task the
connection string is `airflow-db-not-allowed:///`), and the API is the interface Airflow keeps
stable. `GET /api/v2/eventLogs`, paged by id, with a token from `POST /auth/token` for the
stack's admin (`AIRFLOW_ADMIN_USER` / `AIRFLOW_ADMIN_PASSWORD`, from `.env`). The address is
`AIRFLOW__API__BASE_URL` (set for every Airflow process and task), else 127.0.0.1:`AIRFLOW_PORT`.

Only user actions are returned: the task lifecycle rows Airflow writes itself (`running`,
`success`, ...) are not accesses. The `extra` field is never returned: a trigger's conf can
carry a data subject's e-mail.
"""

from __future__ import annotations

import datetime as dt
import os

import requests

from core.settings import Settings

PAGE = 100  # the API's default maximum page size
FIELDS = ("event_log_id", "when", "owner", "event", "dag_id", "task_id", "run_id")  # never `extra`
TIMEOUT = 30
# Event names Airflow gives task state changes and scheduler bookkeeping (no person acted).
SYSTEM_EVENTS = {
    "running",
    "success",
    "failed",
    "skipped",
    "up_for_retry",
    "up_for_reschedule",
    "upstream_failed",
    "queued",
    "scheduled",
    "deferred",
    "removed",
    "restarting",
    "state mismatch",
    "fail task",
    "skip task",
}


class AirflowAuditUnavailable(RuntimeError):
    """Airflow is set up here but its API did not answer or refused the admin login."""


def base_url(settings: Settings) -> str:
    return (os.environ.get("AIRFLOW__API__BASE_URL") or f"http://127.0.0.1:{settings.airflow_port}").rstrip("/")


def configured() -> bool:
    """Whether this stack has Airflow credentials at all (no Airflow, no Airflow events)."""
    return bool(os.environ.get("AIRFLOW_ADMIN_USER") and os.environ.get("AIRFLOW_ADMIN_PASSWORD"))


def _session(url: str) -> requests.Session:
    try:
        resp = requests.post(
            f"{url}/auth/token",
            json={"username": os.environ["AIRFLOW_ADMIN_USER"], "password": os.environ["AIRFLOW_ADMIN_PASSWORD"]},
            timeout=TIMEOUT,
        )
    except requests.RequestException as exc:
        raise AirflowAuditUnavailable(f"Airflow's API at {url} is not answering ({type(exc).__name__})") from exc
    if resp.status_code >= 400:
        raise AirflowAuditUnavailable(f"Airflow refused the admin login at {url}/auth/token ({resp.status_code})")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
    return session


def user_events(settings: Settings, since: dt.datetime) -> list[dict]:
    """Airflow's audit rows since `since` (UTC) that a user caused, oldest first, without `extra`.

    Each: event_log_id, when (ISO text), owner, event, dag_id, task_id, run_id.
    """
    url = base_url(settings)
    session = _session(url)
    after = since.replace(tzinfo=dt.UTC) if since.tzinfo is None else since
    out: list[dict] = []
    offset = 0
    try:
        while True:
            resp = session.get(
                f"{url}/api/v2/eventLogs",
                params={"after": after.isoformat(), "order_by": "event_log_id", "limit": PAGE, "offset": offset},
                timeout=TIMEOUT,
            )
            if resp.status_code >= 400:
                raise AirflowAuditUnavailable(f"GET {url}/api/v2/eventLogs -> {resp.status_code}: {resp.text[:200]}")
            body = resp.json()
            page = body["event_logs"]
            for row in page:
                if row.get("owner") and row["event"] not in SYSTEM_EVENTS:
                    out.append({key: row.get(key) for key in FIELDS})
            offset += len(page)
            if not page or offset >= body["total_entries"]:
                return out
    except requests.RequestException as exc:
        raise AirflowAuditUnavailable(f"Airflow's API at {url} failed mid-way ({type(exc).__name__})") from exc
    finally:
        session.close()

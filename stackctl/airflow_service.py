"""Airflow on this machine: its environment, one-time initialisation, and its four processes.

Airflow 3 runs as api-server (UI + REST on 127.0.0.1), scheduler, dag-processor and triggerer,
started separately rather than with `airflow standalone`, which binds log servers on 0.0.0.0.
Metadata is SQLite under `var/airflow` by default (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN for
PostgreSQL). Users come from the simple auth manager with the generated password in `.env`.
In cluster mode (`STACK_MODE=cluster`, see `stackctl/cluster.py`) the same processes run on
PostgreSQL metadata with the CeleryExecutor, plus Celery workers on Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from core.orchestration import WAREHOUSE_POOL, WAREHOUSE_POOL_DESCRIPTION, WAREHOUSE_POOL_SLOTS
from core.settings import Settings
from stackctl import cluster, procs

PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")


def airflow_bin() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def airflow_connections(settings: Settings) -> dict[str, str]:
    """The Airflow Connections the DAGs read, as AIRFLOW_CONN_<ID> variables (Airflow's JSON form).

    Built from .env (APP_DB_URL, MARKETING_API_URL, MARKETING_API_TOKEN) for every Airflow process
    this module starts and for `python -m stackctl airflow ...`. A variable already set (in .env or
    the shell) is kept as given; set empty, it is left out (`airflow_env` drops it), so Airflow's
    metadata DB (the UI's Connections) can hold that connection. A connection in a configured
    secrets backend wins over all of these: Airflow asks the backend first. One entry per
    connection: add yours here.
    """
    from core import alerts
    from ingestion.app_db import connection as app_db
    from ingestion.marketing_api import client as marketing_api
    from stackctl import fake_api_service

    connections = {
        # The partner-files sensor watches the inbox through a filesystem connection.
        "partner_inbox": {"conn_type": "fs", "extra": {"path": str(settings.lake_dir / "inbox")}},
        # shop_daily's source: sqlite (the file as host) or postgres.
        app_db.CONN_ID: app_db.connection_fields(settings.app_db_url),
        # marketing_api_daily's vendor API (http); the token is the password, which Airflow masks in task logs.
        marketing_api.CONN_ID: marketing_api.connection_fields(
            fake_api_service.url(), os.environ.get("MARKETING_API_TOKEN", "")
        ),
        # Failed tasks' e-mails (dags/_common/notifiers.py): alerts_smtp, only when .env sets ALERT_SMTP_URL.
        **alerts.alert_email_connections(),
    }
    out = {}
    for conn_id, fields in connections.items():
        name = f"AIRFLOW_CONN_{conn_id.upper()}"
        out[name] = os.environ[name] if name in os.environ else json.dumps(fields)
    return out


def airflow_env(settings: Settings) -> dict[str, str]:
    """The environment every Airflow process (and task) runs with."""
    home = settings.airflow_home
    base_url = f"http://127.0.0.1:{settings.airflow_port}"
    user = os.environ.get("AIRFLOW_ADMIN_USER", "airflow_admin")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.repo_root / "dags"),
        # Our plugins: the login throttle in front of the API server's login endpoints.
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.repo_root / "stackctl" / "airflow_plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": os.environ.get("AIRFLOW__CORE__EXECUTOR", "LocalExecutor"),
        # The default (32) forks 32 workers on a 2-core machine.
        "AIRFLOW__CORE__PARALLELISM": os.environ.get("AIRFLOW__CORE__PARALLELISM", "4"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": os.environ.get(
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / 'airflow.db'}"
        ),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": os.environ.get("AIRFLOW_API_SECRET", ""),
        "AIRFLOW__API__SECRET_KEY": os.environ.get("AIRFLOW_API_SECRET", ""),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # Every DAG file is parsed again this often, changed or not. Airflow's 30 s kept a third of a
        # core busy on 2 cores (elt_marts renders the dbt graph each time); an edited file is still
        # parsed at once (files changed since their last parse go first).
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": os.environ.get(
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL", "120"
        ),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "DO_NOT_TRACK": "1",
        "SCARF_ANALYTICS": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(settings.repo_root), os.environ.get("PYTHONPATH")])),
        # Tasks find the data where the rest of the stack does.
        "WAREHOUSE_PATH": str(settings.warehouse_path),
        "SERVING_PATH": str(settings.serving_path),
        "LAKE_DIR": str(settings.lake_dir),
        "APP_DB_URL": settings.app_db_url,
        **airflow_connections(settings),
    }
    if cluster.is_cluster():
        env.update(cluster.airflow_overrides(cluster.config()))
    # An empty AIRFLOW_CONN_<ID> means "not from the environment": Airflow would read it as a broken one.
    return {k: v for k, v in {**os.environ, **env}.items() if v or not k.startswith("AIRFLOW_CONN_")}


def _run(args: list[str], env: dict[str, str], what: str) -> str:
    result = subprocess.run([airflow_bin(), *args], env=env, capture_output=True, text=True)  # noqa: S603 - our own binary and arguments
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"airflow {what} failed:\n{tail}")
    return result.stdout


def write_passwords(settings: Settings) -> None:
    """The simple auth manager's password file, from the generated credentials."""
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    path = settings.airflow_home / "passwords.json"
    user = os.environ["AIRFLOW_ADMIN_USER"]
    path.write_text(json.dumps({user: os.environ["AIRFLOW_ADMIN_PASSWORD"]}))
    path.chmod(0o600)


def init(settings: Settings, log=print) -> None:
    """Create or upgrade the metadata DB and the warehouse pool (safe to repeat)."""
    env = airflow_env(settings)
    write_passwords(settings)
    began = time.monotonic()
    if cluster.is_cluster():
        cfg = cluster.config()
        cluster.check_airflow_services(cfg)
        if cluster.ensure_database(cfg.airflow_metadata_url):
            log("created the Airflow metadata database on PostgreSQL")
    _run(["db", "migrate"], env, "db migrate")
    _run(["pools", "set", WAREHOUSE_POOL, str(WAREHOUSE_POOL_SLOTS), WAREHOUSE_POOL_DESCRIPTION], env, "pools set")
    log(f"airflow metadata ready in {time.monotonic() - began:.0f}s")


def start(settings: Settings, log=print) -> str:
    """Start the four Airflow processes (if not running) and wait until the API answers."""
    env = airflow_env(settings)
    url = f"http://127.0.0.1:{settings.airflow_port}"
    if not procs.is_running("airflow-api-server", settings.run_dir):
        procs.ensure_port_free(settings.airflow_port, "Airflow", port_env="AIRFLOW_PORT")
    commands = {
        "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(settings.airflow_port)],
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "dag-processor": ["dag-processor"],
        "triggerer": ["triggerer", "--skip-serve-logs"],
    }
    for name, args in commands.items():
        if procs.is_running(f"airflow-{name}", settings.run_dir):
            continue
        procs.start(f"airflow-{name}", [airflow_bin(), *args], env=env, run_dir=settings.run_dir)
    if cluster.is_cluster():
        cfg = cluster.config()
        workers = cluster.start_workers(settings, env, cfg)
        log(f"celery: {len(workers)} worker(s) x {cfg.worker_concurrency} slots on {cfg.broker_url}")
    procs.wait_for_http(
        f"{url}/api/v2/monitor/health", timeout=180, process_name="airflow-api-server", run_dir=settings.run_dir
    )
    log(f"airflow up at {url}")
    return url


def stop(settings: Settings) -> list[str]:
    stopped = []
    for name in PROCESSES:
        if procs.stop(f"airflow-{name}", settings.run_dir):
            stopped.append(f"airflow-{name}")
    # Workers last: the scheduler no longer hands them tasks. Stopped whatever the mode now is.
    return stopped + cluster.stop_workers(settings)


class AirflowApi:
    """A small client of Airflow's REST API (v2), logged in with the generated admin."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        token = requests.post(
            f"{self.base_url}/auth/token",
            json={"username": os.environ["AIRFLOW_ADMIN_USER"], "password": os.environ["AIRFLOW_ADMIN_PASSWORD"]},
            timeout=30,
        )
        token.raise_for_status()
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def get(self, path: str, **params) -> dict:
        resp = self.session.get(f"{self.base_url}/api/v2{path}", params=params, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def patch(self, path: str, body: dict) -> dict:
        resp = self.session.patch(f"{self.base_url}/api/v2{path}", json=body, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def post(self, path: str, body: dict) -> dict:
        # SQLite metadata can be briefly locked by the scheduler on a busy machine ("database is
        # locked"): the write did not happen, so it is retried; any other error is raised at once.
        for attempt in range(5):
            resp = self.session.post(f"{self.base_url}/api/v2{path}", json=body, timeout=30)
            if resp.status_code < 400:
                return resp.json()
            if "locked" not in resp.text or attempt == 4:
                raise RuntimeError(f"POST {path} -> {resp.status_code}: {resp.text[:500]}")
            time.sleep(2)
        raise AssertionError("unreachable")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> str:
        """Poll a DAG run until it is `success` or `failed`; return that state."""
        deadline = time.monotonic() + timeout
        while (state := self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]) not in {"success", "failed"}:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} run {run_id} still {state} after {timeout:.0f}s")
            time.sleep(2)
        return state

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Wait until the dag-processor has parsed `dag_id` (fail with its import errors)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.get(f"/dags/{dag_id}")
                return
            except requests.HTTPError:
                errors = self.get("/importErrors").get("import_errors", [])
                if errors:
                    raise RuntimeError(f"DAG import errors: {errors[0].get('stack_trace', '')[-1500:]}") from None
                time.sleep(2)
        raise TimeoutError(f"DAG {dag_id} did not appear within {timeout:.0f}s; see var/run/airflow-dag-processor.log")

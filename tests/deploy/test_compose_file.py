"""docker-compose.yml (the cluster layout) refers only to things that exist in the repo.

No Docker engine runs here, so this is a static check: the YAML parses, every build context and
Dockerfile, bind-mounted file and `python -m` module exists, ports bind to 127.0.0.1, and no
service carries an inline password. The Airflow services' connections point where the rest does.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import yaml

from ingestion.app_db.connection import url_from_connection

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_builds_and_bind_mounts_exist():
    services = compose()["services"]
    assert {"postgres", "redis", "airflow-api-server", "airflow-scheduler", "airflow-worker", "superset"} <= set(
        services
    )
    for name, svc in services.items():
        build = svc.get("build")
        if build:
            assert (REPO / build["context"] / build["dockerfile"]).exists(), name
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name}: {source}"


def test_commands_refer_to_real_modules_and_ports_stay_local():
    for name, svc in compose()["services"].items():
        command = svc.get("command") or []
        if command[:2] == ["python", "-m"]:
            assert importlib.util.find_spec(command[2]) is not None, f"{name}: {command}"
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"
        env = svc.get("environment") or {}
        for key, value in env.items() if isinstance(env, dict) else []:
            if key.endswith("PASSWORD"):
                assert str(value).startswith("${"), f"{name}: {key} must come from .env"


def test_the_airflow_services_read_the_same_app_db_as_a_connection():
    """The DAGs read the `app_db` connection; stackctl's commands in the containers read APP_DB_URL."""
    env = compose()["x-pipeline"]["environment"]
    assert url_from_connection(json.loads(env["AIRFLOW_CONN_APP_DB"])) == env["APP_DB_URL"]
    inbox = json.loads(env["AIRFLOW_CONN_PARTNER_INBOX"])["extra"]["path"]
    assert inbox == f"{env['STACK_DATA_DIR']}/lake/inbox"

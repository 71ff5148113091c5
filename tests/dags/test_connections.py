"""The sources are Airflow Connections, and the `airflow` CLI sees the stack as its services do.

- The DAGs' tasks read `app_db` and `marketing_api` through Airflow (so a secrets backend or the UI
  can hold them), before the environment variables the code reads outside Airflow.
- `make airflow ARGS=...` runs Airflow's own CLI from a shell that holds nothing but the stack's
  `.env`: it finds the repo's DAGs and the connections stackctl builds from `.env`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest

from core.orchestration import DAG_IDS

REPO = Path(__file__).resolve().parents[2]


def test_the_tasks_read_the_sources_from_airflow_connections_first(stack, monkeypatch):
    from _common.connections import marketing_api_config, with_app_db

    monkeypatch.setenv("APP_DB_URL", "sqlite:////nowhere/shop.sqlite")
    monkeypatch.setenv("MARKETING_API_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("MARKETING_API_TOKEN", "the-environment-s-token")
    # JSON form, as stackctl writes it ...
    app_db = {"conn_type": "postgres", "host": "db.internal", "login": "shop", "password": "p@ss", "schema": "shop"}
    monkeypatch.setenv("AIRFLOW_CONN_APP_DB", json.dumps(app_db))
    # ... or Airflow's URI form (conn type http, schema https), as a user may set it.
    monkeypatch.setenv("AIRFLOW_CONN_MARKETING_API", "http://:vendor-token@api.vendor.example:8443/https")
    settings = dataclasses.replace(stack, app_db_url="sqlite:////nowhere/shop.sqlite")

    assert with_app_db(settings).app_db_url == "postgresql+psycopg://shop:p%40ss@db.internal/shop"
    config = marketing_api_config()
    assert (config.base_url, config.token) == ("https://api.vendor.example:8443", "vendor-token")

    # Without the connections (an Airflow started by hand), the environment's values still work.
    monkeypatch.delenv("AIRFLOW_CONN_APP_DB")
    monkeypatch.delenv("AIRFLOW_CONN_MARKETING_API")
    assert with_app_db(settings).app_db_url == "sqlite:////nowhere/shop.sqlite"
    config = marketing_api_config()
    assert (config.base_url, config.token) == ("http://127.0.0.1:1", "the-environment-s-token")


def test_stackctl_builds_the_connections_from_env_and_keeps_one_given_or_left_out(stack, monkeypatch):
    from stackctl.airflow_service import airflow_env

    monkeypatch.setenv("MARKETING_API_URL", "https://api.vendor.example/marketing")
    monkeypatch.setenv("MARKETING_API_TOKEN", "tok-from-env-file")
    for name in ("AIRFLOW_CONN_APP_DB", "AIRFLOW_CONN_MARKETING_API"):
        monkeypatch.delenv(name, raising=False)
    env = airflow_env(stack)
    assert json.loads(env["AIRFLOW_CONN_APP_DB"]) == {
        "conn_type": "sqlite",
        "host": str(stack.data_dir / "appdb" / "shop.sqlite"),
    }
    assert json.loads(env["AIRFLOW_CONN_MARKETING_API"]) == {
        "conn_type": "http",
        "schema": "https",
        "host": "api.vendor.example",
        "password": "tok-from-env-file",
        "extra": {"base_path": "/marketing"},
    }
    # Given whole (JSON or URI), it is used as written; set empty, Airflow looks elsewhere for it
    # (a secrets backend, its metadata DB).
    monkeypatch.setenv("AIRFLOW_CONN_MARKETING_API", "http://:another-token@api.vendor.example:443/https")
    monkeypatch.setenv("AIRFLOW_CONN_APP_DB", "")
    env = airflow_env(stack)
    assert env["AIRFLOW_CONN_MARKETING_API"] == "http://:another-token@api.vendor.example:443/https"
    assert "AIRFLOW_CONN_APP_DB" not in env


@pytest.mark.slow
def test_make_airflow_runs_the_cli_with_the_stacks_environment(tmp_path, dbt_manifest):
    from core.envfile import ensure_env_file, parse_env

    env_file = tmp_path / ".env"
    ensure_env_file(env_file)
    with env_file.open("a") as out:
        out.write("MARKETING_API_URL=https://api.vendor.example:8443\n")
    token = parse_env(env_file.read_text())["MARKETING_API_TOKEN"]
    # A new shell: no AIRFLOW_* variable, no PYTHONPATH, only where the stack's .env and data are.
    shell = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "STACK_ENV_FILE": str(env_file),
        "STACK_DATA_DIR": str(tmp_path),
        "STACK_VAR_DIR": str(tmp_path / "var"),
        # the dbt project this test process parsed (its own copy of dbt_project/, tests/conftest.py)
        "DBT_PROJECT_DIR": str(dbt_manifest.parents[1]),
    }

    def make_airflow(args: str) -> str:
        done = subprocess.run(
            ["make", "--no-print-directory", "airflow", f"ARGS={args}"],
            cwd=REPO,
            env=shell,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"make airflow ARGS={args!r}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        # Airflow's own warnings (graphviz missing) share stdout with the JSON answer, on lines before it.
        return next((line for line in reversed(done.stdout.splitlines()) if line.startswith("[")), "")

    make_airflow("db migrate")
    make_airflow("dags reserialize")  # what the dag-processor of a running stack does
    listed = json.loads(make_airflow("dags list -o json"))
    assert {dag["dag_id"] for dag in listed} == set(DAG_IDS)
    assert {dag["fileloc"] for dag in listed} <= {str(p) for p in (REPO / "dags").glob("*.py")}

    (api,) = json.loads(make_airflow("connections get marketing_api -o json"))
    assert (api["conn_type"], api["schema"], api["host"], str(api["port"])) == (
        "http",
        "https",
        "api.vendor.example",
        "8443",
    )
    assert api["password"] in (token, "***"), "the token from .env"
    (app_db,) = json.loads(make_airflow("connections get app_db -o json"))
    assert (app_db["conn_type"], app_db["host"]) == ("sqlite", str(tmp_path / "appdb" / "shop.sqlite"))
    assert (tmp_path / "var" / "airflow" / "airflow.db").exists(), "the stack's own metadata, not ~/airflow"

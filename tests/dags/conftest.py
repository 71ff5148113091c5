"""Airflow for DAG tests: a throwaway AIRFLOW_HOME, set before anything imports airflow."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_HOME = Path(tempfile.mkdtemp(prefix="airflow-home-"))
os.environ.setdefault("AIRFLOW_HOME", str(_HOME))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_HOME / 'airflow.db'}")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
if str(REPO / "dags") not in sys.path:
    sys.path.insert(0, str(REPO / "dags"))


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """Cosmos renders the DAG from dbt's manifest: parse the project once per session.

    Into the project the DAGs read (DBT_PROJECT_DIR: tests/conftest.py gives each test process a copy).
    """
    from core.settings import get_settings

    env = {
        **os.environ,
        "WAREHOUSE_PATH": str(_HOME / "parse-only.duckdb"),
        "PII_HASH_KEY": "parse-only",
        "DO_NOT_TRACK": "1",
    }
    project = get_settings().dbt_project_dir
    subprocess.run(
        [
            str(Path(sys.executable).with_name("dbt")),
            "parse",
            "--quiet",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
        ],
        env=env,
        check=True,
    )
    return project / "target" / "manifest.json"

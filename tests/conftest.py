"""Shared fixtures: an isolated stack (data, lake, warehouse, run state) in a temporary folder."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from stackctl.settings import Settings, get_settings

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
DAY0 = dt.date(2026, 3, 2)


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings pointing every data path at tmp_path, with generated-style secrets."""
    monkeypatch.setenv("STACK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STACK_VAR_DIR", str(tmp_path / "var"))
    for name in ("APP_DB_URL", "LAKE_DIR", "WAREHOUSE_DIR", "WAREHOUSE_PATH", "SERVING_PATH", "AIRFLOW_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PII_HASH_KEY", "test-key-" + os.urandom(4).hex())
    return get_settings()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

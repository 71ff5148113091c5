"""Shared fixtures: an isolated stack (data, lake, warehouse, run state) in a temporary folder."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.settings import Settings, get_settings

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
DAY0 = dt.date(2026, 3, 2)
# Variables that would point a stack path somewhere else than STACK_DATA_DIR / STACK_VAR_DIR.
# Airflow's metadata URL among them: tests/dags sets one for the whole pytest process, and an
# Airflow started by a later test must keep its metadata in its own home, not share that one.
STACK_PATH_VARIABLES = (
    "APP_DB_URL",
    "LAKE_DIR",
    "WAREHOUSE_DIR",
    "WAREHOUSE_PATH",
    "SERVING_PATH",
    "AIRFLOW_HOME",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
)


@contextmanager
def restored_environ() -> Iterator[None]:
    """Whatever the block does to os.environ is undone after it (monkeypatch is function-scoped,
    and session fixtures that build a whole shop or start services need the same)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def stack_environment(root: Path, pii_key: str, **variables: str) -> Iterator[None]:
    """Every stack path under `root` (data, lake, warehouse, run state) for the block, plus `variables`."""
    with restored_environ():
        for name in STACK_PATH_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(
            {"STACK_DATA_DIR": str(root), "STACK_VAR_DIR": str(root / "var"), "PII_HASH_KEY": pii_key, **variables}
        )
        yield


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings pointing every data path at tmp_path, with generated-style secrets."""
    monkeypatch.setenv("STACK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STACK_VAR_DIR", str(tmp_path / "var"))
    for name in STACK_PATH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PII_HASH_KEY", "test-key-" + os.urandom(4).hex())
    return get_settings()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

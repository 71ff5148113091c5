"""Fixtures for the governance tests: dbt's manifest, and a small simulated shop run through the pipeline.

`small_shop` is built the way `make run` builds the history (`pipelines.runner.run_range`:
land, gate 1, load, dbt build, gate 2, publish) for 6 days at a third of the demo scale, in a
temporary folder, with dbt's artifacts in a temporary target path (never dbt_project/target,
which Cosmos reads). About 16 s on 2 cores.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.settings import Settings
from tests.conftest import DAY0
from tests.quality.conftest import docs, gx_project  # noqa: F401 - gate 2 on a private GX project copy

REPO = Path(__file__).resolve().parents[2]
SHOP_DAYS = [DAY0 + dt.timedelta(days=n) for n in range(6)]
PII_KEY = "governance-test-key"


@pytest.fixture(scope="session")
def dbt_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`dbt parse` of the project into a temporary target (about 4 s)."""
    target = tmp_path_factory.mktemp("dbt-parse")
    env = {
        **os.environ,
        "WAREHOUSE_PATH": str(target / "parse-only.duckdb"),
        "PII_HASH_KEY": PII_KEY,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DO_NOT_TRACK": "1",
    }
    dbt = Path(sys.executable).with_name("dbt")
    project = REPO / "dbt_project"
    subprocess.run(
        [
            *(str(dbt), "parse", "--quiet", "--no-partial-parse", "--target-path", str(target)),
            *("--project-dir", str(project), "--profiles-dir", str(project)),
        ],
        env=env,
        cwd=project,
        check=True,
        capture_output=True,
    )
    return target / "manifest.json"


def _shop_env(root: Path) -> dict[str, str]:
    return {
        "STACK_DATA_DIR": str(root),
        "STACK_VAR_DIR": str(root / "var"),
        "PII_HASH_KEY": PII_KEY,
        "DBT_TARGET_PATH": str(root / "dbt-target"),
        "SUPERSET_SECRET_KEY": "governance-tests",  # publish clears Superset's cache
        "GOVERNANCE_ACTOR": "dpo@shop.example",
    }


@contextmanager
def _shop_environment(root: Path) -> Iterator[Settings]:
    from core.settings import get_settings

    with pytest.MonkeyPatch.context() as patch:
        for name, value in _shop_env(root).items():
            patch.setenv(name, value)
        for name in (
            "APP_DB_URL",
            "LAKE_DIR",
            "WAREHOUSE_DIR",
            "WAREHOUSE_PATH",
            "SERVING_PATH",
            "GOVERNANCE_AUDIT_LOG",
        ):
            patch.delenv(name, raising=False)
        yield get_settings()


@pytest.fixture(scope="session")
def _built_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session (the environment is only changed while building)."""
    from ingestion.simulator.run import simulate
    from pipelines.runner import run_range

    root = tmp_path_factory.mktemp("governance-shop")
    with _shop_environment(root) as settings:
        simulate(settings.app_db_url, DAY0, SHOP_DAYS[-1], scale=0.3, progress=False)
        run_range(settings, SHOP_DAYS[0], SHOP_DAYS[-1], "history", progress=lambda msg: None)
    return root


@pytest.fixture(scope="module")
def small_shop(_built_shop: Path) -> Iterator[Settings]:
    """The shop's settings, with its environment (paths, PII key, dbt target) for the module's tests."""
    with _shop_environment(_built_shop) as settings:
        yield settings

"""Shared fixtures: an isolated stack (data, lake, warehouse, run state) in a temporary folder.

Also how the suite runs on several pytest-xdist workers (`make test`; see pyproject.toml):
each worker process gets a private copy of dbt_project/ (DBT_PROJECT_DIR), and the tests are
handed to workers in groups that keep expensive shared fixtures built once (see
`pytest_collection_modifyitems` below).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
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


# --- running on several workers -------------------------------------------------------------

REPO = ARTIFACTS.parent
# Session fixtures that take a minute or more to build: every test using one of them runs on the
# same worker (with the rest of its file), so each is built once per run, not once per worker.
SHARED_FIXTURES = {
    "built": "tests/dbt",  # the dbt fixture warehouse
    "_built_shop": "tests/governance",  # the governance tests' small shop
    "shop": "tests/ml",  # the churn-model shop (tests/quality and tests/bench have their own `shop`)
    "dbt_manifest": "tests/dags",  # dbt parse for Cosmos' DAG rendering
}
# Groups started first, longest first (by the serial run's --durations): a long group handed out
# last would finish alone after every other worker is idle. The rest follow in collection order.
LONG_GROUPS = (
    "tests/e2e/test_scheduled_e2e.py",
    "tests/dbt",
    "tests/governance",
    "tests/cluster/test_cluster_mode.py",
    "tests/ml",
    "tests/browser/test_dashboards_in_chromium.py",
    "tests/superset/test_superset_assets.py",
    "tests/serving/test_data_health_dashboard.py",
    "tests/quality/test_write_audit_publish.py",
    "tests/superset/test_reports_by_email.py",
)
_DBT_COPY = pytest.StashKey[tuple[Path, "str | None"]]()


def pytest_configure(config: pytest.Config) -> None:
    """A private copy of dbt_project/ for this process (a worker, or the only process).

    dbt writes target/ (manifest, run_results.json, partial-parse state) and logs/ inside the project
    unless told otherwise, and the stack reads them back (Cosmos' manifest, gate 2's run results):
    two workers sharing the checkout's folder would read each other's. Copying it also keeps test
    runs from overwriting the manifest of a stack running from this checkout.
    """
    root = Path(tempfile.mkdtemp(prefix=f"dbt-project-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-"))
    shutil.copytree(
        REPO / "dbt_project",
        root / "dbt_project",
        ignore=shutil.ignore_patterns("target", "target-*", "logs", "dbt_packages", ".user.yml"),
    )
    config.stash[_DBT_COPY] = (root, os.environ.get("DBT_PROJECT_DIR"))
    os.environ["DBT_PROJECT_DIR"] = str(root / "dbt_project")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _DBT_COPY not in config.stash:
        return
    root, previous = config.stash[_DBT_COPY]
    if previous is None:
        os.environ.pop("DBT_PROJECT_DIR", None)
    else:
        os.environ["DBT_PROJECT_DIR"] = previous
    shutil.rmtree(root, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker: an `xdist_group` for every test, and the long groups first.

    A group is a test file, merged with every other file that uses the same SHARED_FIXTURES
    fixture (transitively). Module-scoped fixtures (a Superset, an Airflow) are then built once
    too, as with `--dist loadfile`. A serial run (`-n 0`) is left as collected.
    """
    if not hasattr(config, "workerinput"):
        return
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    def union(a: str, b: str) -> None:
        parent[find(b)] = find(a)

    files = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        files[item] = path
        find(path)
        for name in item.fixturenames:
            where = SHARED_FIXTURES.get(name)
            if where and path.startswith(where + "/"):
                union(f"{where}", path)
    groups = {}
    for item, path in files.items():
        root = find(path)
        groups[item] = root
        if not any(item.iter_markers("xdist_group")):
            item.add_marker(pytest.mark.xdist_group(root))

    def rank(item: pytest.Item) -> int:
        group = groups[item]
        return next((n for n, long in enumerate(LONG_GROUPS) if group == long), len(LONG_GROUPS))

    items.sort(key=rank)  # stable: collection order within a group and among the rest

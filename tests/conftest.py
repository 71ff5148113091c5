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
# Session fixtures that take a minute or more to build, and the folder whose tests use them: the
# folder's tests run on one worker (one xdist scheduling unit), so each is built once per run,
# not once per worker. Other tests are scheduled by file (their module fixtures are built once).
SHARED_FIXTURES = {
    "tests/dbt": "built",  # the dbt fixture warehouse
    "tests/governance": "_built_shop",  # the governance tests' small shop
    "tests/ml": "shop",  # the churn-model shop
    "tests/dags": "dbt_manifest",  # dbt parse for Cosmos' DAG rendering
    "tests/spark": "spark_cluster",  # one Spark cluster (master, workers, Thrift server)
}
# Files in those folders that use none of it: scheduled on their own.
INDEPENDENT_FILES = {
    "tests/dbt/test_sqlfluff.py",
    "tests/dags/test_failure_email.py",
    "tests/governance/test_access_log.py",
    "tests/governance/test_audit.py",
    "tests/governance/test_classification_in_dbt.py",
    "tests/governance/test_pii.py",
}
# Groups handed out first, longest first (by the serial run's --durations): a long group handed
# out last would finish alone after the other workers are idle. The rest follow in collection order.
LONG_GROUPS = (
    "tests/spark",
    "tests/e2e/test_scheduled_e2e.py",
    "tests/dbt",
    "tests/cluster/test_cluster_mode.py",
    "tests/governance",
    "tests/ml",
    "tests/browser/test_dashboards_in_chromium.py",
    "tests/serving/test_data_health_dashboard.py",
    "tests/superset/test_superset_assets.py",
    "tests/quality/test_write_audit_publish.py",
    "tests/superset/test_reports_by_email.py",
)
_DBT_COPY = pytest.StashKey[tuple[Path, "str | None"]]()


def schedule_group(nodeid: str) -> str:
    """The scheduling unit of a test: its SHARED_FIXTURES folder, else its file."""
    path = nodeid.split("::", 1)[0]
    folder = path.rsplit("/", 1)[0]
    return folder if folder in SHARED_FIXTURES and path not in INDEPENDENT_FILES else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`--dist loadgroup`, by schedule_group().

    xdist's own loadgroup reads `xdist_group` marks into the node id, which pytest 9 no longer
    lets it change (the marks are silently ignored, every test is scheduled alone): the groups
    are given to the scheduler here instead.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return schedule_group(nodeid)

    return GroupScheduling(config, log)


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check the groups against the fixtures really used; on an xdist worker, long groups first."""
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        for folder, fixture in SHARED_FIXTURES.items():
            if path.startswith(folder + "/") and fixture in item.fixturenames and schedule_group(path) != folder:
                raise pytest.UsageError(
                    f"{path} uses the session fixture {fixture!r}: take it out of INDEPENDENT_FILES (tests/conftest.py)"
                )
    if hasattr(config, "workerinput"):  # the controller schedules in the workers' collection order

        def rank(item: pytest.Item) -> int:
            group = schedule_group(item.nodeid)
            return LONG_GROUPS.index(group) if group in LONG_GROUPS else len(LONG_GROUPS)

        items.sort(key=rank)  # stable: collection order within a group and among the rest

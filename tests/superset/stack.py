"""A real Superset for the serve-layer tests, as `make run` starts it, on a temporary home.

`running_superset()` writes the fixture serving file (`serving_fixture.py`), points every path at a
temporary folder, starts gunicorn from the Superset venv on a free port through
`superset.provision`, imports `superset/assets/`, applies `superset/roles.yaml`, yields, and stops
it. Each test module starts its own (a module-scoped fixture); the slow part, creating the
metadata DB (`superset db upgrade`, `fab create-admin`, `superset init`), runs once per test run
(shared by the pytest-xdist workers) into a template that later modules copy.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.settings import Settings, get_settings
from stackctl import procs, superset_service
from superset import provision
from tests.superset.serving_fixture import ServingData, write_serving_file


def _secret(name: str, nbytes: int) -> str:
    """A random secret of this test run; every pytest-xdist worker of the run derives the same one
    from the run's random id (they share one template metadata DB, made with these credentials)."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not run:
        return secrets.token_urlsafe(nbytes)
    digest = hmac.new(run.encode(), name.encode(), hashlib.sha256).digest()[:nbytes]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


# One set of credentials per test run: the template metadata DB is made with them.
ADMIN = provision.Credentials("test_admin", _secret("admin", 16))
SECRET_KEY = _secret("secret-key", 32)
USERS = {
    "executive": provision.Credentials("test_executive", _secret("executive", 16)),
    "analyst": provision.Credentials("test_analyst", _secret("analyst", 16)),
    "country_manager": provision.Credentials("test_country_manager_de", _secret("country_manager", 16)),
}
_USER_ENV = {"executive": "EXECUTIVE", "analyst": "ANALYST", "country_manager": "COUNTRY_MANAGER"}

_template: dict[str, Path] = {}


@dataclass
class Stack:
    settings: Settings
    client: provision.SupersetClient
    data: ServingData
    timings: dict[str, float]

    def login(self, who: str) -> provision.SupersetClient:
        """A REST session as one of the roles file's users (executive, analyst, country_manager)."""
        return provision.SupersetClient(provision.base_url(self.settings), USERS[who])


def _environment(root: Path, serving: Path, port: int) -> dict[str, str]:
    env = {
        "STACK_VAR_DIR": str(root / "var"),
        "SUPERSET_HOME": str(root / "var" / "superset"),
        "SERVING_PATH": str(serving),
        "SUPERSET_PORT": str(port),
        "SUPERSET_ADMIN_USER": ADMIN.user,
        "SUPERSET_ADMIN_PASSWORD": ADMIN.password,
        "SUPERSET_SECRET_KEY": SECRET_KEY,
        "SUPERSET_WEB_WORKERS": "1",
    }
    for who, creds in USERS.items():
        env[f"SUPERSET_{_USER_ENV[who]}_USER"] = creds.user
        env[f"SUPERSET_{_USER_ENV[who]}_PASSWORD"] = creds.password
    return env


def _make_template(root: Path) -> dict[str, float]:
    with pytest.MonkeyPatch.context() as env:
        env.delenv("SUPERSET_METADATA_URI", raising=False)
        # no server is started here, but the settings take only a valid port
        for name, value in _environment(root, root / "warehouse" / "serving.duckdb", procs.free_port()).items():
            env.setenv(name, value)
        began = time.monotonic()
        timings = superset_service.init_metadata(get_settings())
        timings["init total"] = time.monotonic() - began
    return timings


def _template_home(factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """A metadata DB made by `init_metadata` once per test run; (its home, the seconds it took).

    Made once per process, or, on pytest-xdist workers, once for all of them: the first worker that
    needs it makes it in the run's shared temporary folder while the others wait for it (about a
    minute of CPU each saved).
    """
    if "home" in _template:
        return _template["home"], {}
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = factory.getbasetemp().parent  # the run's folder; each worker's basetemp is in it
        root = shared / "superset-template"
        with (shared / "superset-template.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            done = root / "made"
            timings = {}
            if not done.exists():
                shutil.rmtree(root, ignore_errors=True)  # a worker that failed half-way
                timings = _make_template(root)
                done.touch()
    else:
        root = factory.mktemp("superset-template")
        timings = _make_template(root)
    _template["home"] = root / "var" / "superset"
    return _template["home"], timings


@contextmanager
def running_superset(factory: pytest.TempPathFactory, name: str) -> Iterator[Stack]:
    """Superset with the fixture data, the assets and the roles, for the duration of the block."""
    template, timings = _template_home(factory)
    root = factory.mktemp(name)
    serving = root / "warehouse" / "serving.duckdb"
    data = write_serving_file(serving)
    home = root / "var" / "superset"
    home.mkdir(parents=True)
    for item in ("superset.db", superset_service.MARKER_NAME):
        shutil.copy2(template / item, home / item)
    with pytest.MonkeyPatch.context() as env:
        env.delenv("SUPERSET_METADATA_URI", raising=False)
        for key, value in _environment(root, serving, procs.free_port()).items():
            env.setenv(key, value)
        settings = get_settings()
        timings = dict(timings)
        try:
            assert superset_service.init_metadata(settings) == {}, "the copied metadata DB should need no init"
            began = time.monotonic()
            superset_service.start(settings)
            timings["start to /health"] = time.monotonic() - began
            timings["import"] = provision.import_assets(settings)
            began = time.monotonic()
            provision.apply_access(settings)
            timings["access"] = time.monotonic() - began
            client = provision.SupersetClient(provision.base_url(settings), provision.admin_credentials())
            yield Stack(settings, client, data, timings)
        finally:
            superset_service.stop(settings)
        assert not superset_service.is_running(settings)

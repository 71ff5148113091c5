"""Serve layer: run Superset for the dashboards and deploy `superset/assets/` into it.

Runs in the *pipeline* venv with nothing but `requests`, PyYAML and `stackctl`:

    .venv/pipeline/bin/python -m superset.provision up      # init if needed, start, import, roles
    .venv/pipeline/bin/python -m superset.provision export  # UI edits -> superset/assets/*.yaml
    .venv/pipeline/bin/python -m superset.provision down

Superset 6.1 itself lives in its own venv (it needs SQLAlchemy<2, Airflow needs >=2). This module
drives that venv's `superset` CLI and `gunicorn` as subprocesses, with `SUPERSET_CONFIG_PATH`
pointing at `superset/superset_config.py`, the working directory set to `superset_home`, and
`PYTHONPATH` removed.

Why `superset/` has no `__init__.py`: it makes this folder a namespace package, so
`import superset.provision` works here (the pipeline venv has no real `superset`), while inside
the Superset venv the real, regular `superset` package always wins, even with the repo root on
`sys.path`. A test keeps it that way.

Steps, each idempotent:
- `init_metadata()`: `superset db upgrade`, `fab create-admin` (password on stdin, not argv) and
  `superset init`. Each CLI call costs a few seconds of start-up, so a marker file in
  `superset_home` records what was done (Superset version, metadata DB, admin credentials
  fingerprint) and unchanged steps are skipped.
- `start()`: gunicorn on 127.0.0.1:`SUPERSET_PORT` via `stackctl.procs`, then wait for /health.
- `import_assets()`: zip `superset/assets/` with `${SERVING_PATH}` filled in, log in over REST
  (JWT + CSRF token) and POST it to `/api/v1/assets/import/`, which overwrites by UUID.
- `apply_access()`: roles, users (passwords from the environment), dashboard roles and
  row-level security from `superset/roles.yaml` (`superset/access.py`); after the import,
  because the file names dashboards and datasets that only then have ids.

And the way back, `export_assets()`: `GET /api/v1/assets/export/`, normalised into the YAML files
(no ids, no secrets, the serving path re-templated; `superset/asset_files.py`), so a chart edited
in the UI becomes a reviewable diff.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from core.command import prepare_command
from core.settings import Settings, get_settings
from stackctl import cluster, procs
from superset import access, asset_files

SERVICE = "superset"
HERE = Path(__file__).resolve().parent
CONFIG_PATH = HERE / "superset_config.py"
ASSETS_DIR = HERE / "assets"
MARKER_NAME = ".provisioned.json"
_PLACEHOLDER = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


class ProvisionError(RuntimeError):
    """Superset could not be initialised, started or given its assets."""


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str


Log = Callable[[str], None]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _require_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ProvisionError(f"{name} is not set: generate credentials into .env (`make env`)")
    return value


def admin_credentials() -> Credentials:
    """The admin login, from SUPERSET_ADMIN_USER / SUPERSET_ADMIN_PASSWORD."""
    return Credentials(_require_env("SUPERSET_ADMIN_USER"), _require_env("SUPERSET_ADMIN_PASSWORD"))


def superset_venv(settings: Settings) -> Path:
    """The Superset venv (SUPERSET_VENV, default `.venv/superset` in the repo)."""
    value = os.environ.get("SUPERSET_VENV")
    return Path(value).expanduser().resolve() if value else settings.repo_root / ".venv/superset"


def _venv_bin(settings: Settings, name: str) -> Path:
    path = superset_venv(settings) / "bin" / name
    if not path.exists():
        raise ProvisionError(f"{path} not found: create the Superset venv first (`make install`)")
    return path


def base_url(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return f"http://127.0.0.1:{settings.superset_port}"


def superset_env(settings: Settings) -> dict[str, str]:
    """The environment of every Superset process: config file, home and serving file."""
    _require_env("SUPERSET_SECRET_KEY")
    env = {
        key: value
        for key, value in os.environ.items()
        # The repo root on PYTHONPATH is harmless (see module docstring); the pipeline venv's
        # packages are not.
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    }
    env.update(
        SUPERSET_CONFIG_PATH=str(CONFIG_PATH),
        SUPERSET_HOME=str(settings.superset_home),
        SERVING_PATH=str(settings.serving_path),
        PYTHONUNBUFFERED="1",
    )
    if cluster.is_cluster():
        # PostgreSQL metadata and Redis caches (superset_config.py reads these two).
        cfg = cluster.config()
        env.update(
            SUPERSET_METADATA_URI=cfg.superset_metadata_uri, SUPERSET_CACHE_REDIS_URL=cfg.superset_cache_redis_url
        )
    return env


# --- metadata DB --------------------------------------------------------------------------------


def installed_version(settings: Settings) -> str:
    """The apache-superset version installed in the Superset venv."""
    result = subprocess.run(  # noqa: S603 - fixed command
        [
            _venv_bin(settings, "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('apache-superset'))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ProvisionError(f"apache-superset is not installed in {superset_venv(settings)}")
    return result.stdout.strip()


def _fingerprint(key: str, *parts: str) -> str:
    # Keyed hash: the marker proves which values were applied without storing them.
    return hmac.new(key.encode(), "\0".join(parts).encode(), hashlib.sha256).hexdigest()[:32]


def _run_cli(settings: Settings, args: list[str], what: str, stdin: str | None = None) -> tuple[float, str]:
    """Run the Superset CLI; return (seconds, output). Output goes to <run_dir>/superset-cli.log."""
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603 - the Superset CLI with our own arguments
        [_venv_bin(settings, "superset"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=superset_env(settings),
        cwd=settings.superset_home,
        # No controlling terminal: click's hidden prompts then read the password from stdin.
        start_new_session=True,
        check=False,
    )
    output = (result.stdout or "") + (result.stderr or "")
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    log = procs.log_file(f"{SERVICE}-cli", settings.run_dir)
    with log.open("a") as handle:
        handle.write(f"\n=== superset {args[0]} {args[1] if len(args) > 1 else ''}\n{output}")
    if result.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise ProvisionError(f"`superset {what}` failed (exit {result.returncode}):\n{tail}")
    return time.monotonic() - started, output


def _read_marker(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def init_metadata(settings: Settings | None = None, log: Log = _log) -> dict[str, float]:
    """Create or upgrade the metadata DB, sync roles and make sure the admin can log in.

    Returns the seconds spent per step that ran (empty when everything was already done).
    """
    settings = settings or get_settings()
    creds = admin_credentials()
    secret = _require_env("SUPERSET_SECRET_KEY")
    settings.superset_home.mkdir(parents=True, exist_ok=True)
    marker_path = settings.superset_home / MARKER_NAME
    marker = _read_marker(marker_path)
    env = superset_env(settings)
    if cluster.is_cluster():
        cfg = cluster.config()
        cluster.check_superset_services(cfg)
        if cluster.ensure_database(cfg.superset_metadata_uri):
            marker = {}  # a new, empty metadata database: every step runs
            log("created the Superset metadata database on PostgreSQL")
    wanted = {
        "superset_version": installed_version(settings),
        "config": hashlib.sha256(CONFIG_PATH.read_bytes()).hexdigest()[:16],
        "metadata_db": _fingerprint(secret, env.get("SUPERSET_METADATA_URI", "sqlite-default")),
        "admin": _fingerprint(secret, creds.user, creds.password),
    }
    sqlite_db = settings.superset_home / "superset.db"
    if not env.get("SUPERSET_METADATA_URI") and not sqlite_db.exists():
        marker = {}  # the metadata DB was deleted: start over
    new_db = marker.get("metadata_db") != wanted["metadata_db"]
    upgrade = new_db or any(marker.get(key) != wanted[key] for key in ("superset_version", "config"))
    timings: dict[str, float] = {}
    if upgrade:
        timings["db upgrade"], _ = _run_cli(settings, ["db", "upgrade"], "db upgrade")
    if new_db or marker.get("admin") != wanted["admin"]:
        timings["create admin"] = _ensure_admin(settings, creds)
    if upgrade:
        # Creates the permissions and the Admin role's grants: without it the admin gets 403.
        timings["init"], _ = _run_cli(settings, ["init"], "init")
    marker_path.write_text(json.dumps(wanted, indent=2) + "\n")
    for step, seconds in timings.items():
        log(f"superset {step} {seconds:.1f}s")
    return timings


def _ensure_admin(settings: Settings, creds: Credentials) -> float:
    """Create the admin user, or reset its password if it exists (e.g. after a new .env)."""
    password_twice = f"{creds.password}\n{creds.password}\n"
    seconds, output = _run_cli(
        settings,
        [
            "fab",
            "create-admin",
            "--username",
            creds.user,
            "--firstname",
            "Superset",
            "--lastname",
            "Admin",
            "--email",
            f"{creds.user}@localhost.invalid",
        ],
        "fab create-admin",
        stdin=password_twice,
    )
    if "already exists" in output:
        more, _ = _run_cli(
            settings,
            ["fab", "reset-password", "--username", creds.user],
            "fab reset-password",
            stdin=password_twice,
        )
        seconds += more
    elif "created" not in output:
        raise ProvisionError(f"`superset fab create-admin` did not create {creds.user}:\n{output}")
    return seconds


# --- web server ---------------------------------------------------------------------------------


def is_running(settings: Settings | None = None) -> bool:
    settings = settings or get_settings()
    return procs.is_running(SERVICE, settings.run_dir)


def start(settings: Settings | None = None, timeout: float = 120.0, log: Log = _log) -> str:
    """Start gunicorn on 127.0.0.1 (unless it is already running) and wait for /health."""
    settings = settings or get_settings()
    url = base_url(settings)
    if not procs.is_running(SERVICE, settings.run_dir):
        procs.ensure_port_free(settings.superset_port, "Superset", "SUPERSET_PORT")
        # 2 cores: one worker per core; threads cover slow DuckDB queries. FileSystemCache in
        # superset_config is shared between workers.
        workers = os.environ.get("SUPERSET_WEB_WORKERS", "2")
        command = [
            _venv_bin(settings, "gunicorn"),
            f"--bind=127.0.0.1:{settings.superset_port}",
            f"--workers={workers}",
            "--worker-class=gthread",
            "--threads=4",
            "--timeout=120",
            "--graceful-timeout=10",
            # Bounded request lines and headers (gunicorn's maximum line, its default header size):
            # 0 would mean unlimited, a cheap way to make a worker buffer huge requests.
            "--limit-request-line=8190",
            "--limit-request-field_size=8190",
            "superset.app:create_app()",
        ]
        procs.start(
            SERVICE,
            command,
            env=superset_env(settings),
            cwd=settings.superset_home,
            run_dir=settings.run_dir,
        )
    seconds = procs.wait_for_http(f"{url}/health", timeout=timeout, process_name=SERVICE, run_dir=settings.run_dir)
    log(f"superset healthy at {url} after {seconds:.1f}s")
    return url


def stop(settings: Settings | None = None) -> bool:
    """Stop the web server (all gunicorn processes); False if it was not running."""
    settings = settings or get_settings()
    return procs.stop(SERVICE, settings.run_dir)


# --- assets -------------------------------------------------------------------------------------


def _render(value: Any, values: dict[str, str], where: str) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise ProvisionError(f"{where}: unknown placeholder ${{{name}}}")
            return values[name]

        return _PLACEHOLDER.sub(substitute, value)
    if isinstance(value, dict):
        return {key: _render(item, values, where) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, values, where) for item in value]
    return value


def template_values(settings: Settings) -> dict[str, str]:
    """What `${NAME}` placeholders in the asset YAML stand for."""
    from serving.publish import marts_copy_path

    return {
        "SERVING_PATH": str(settings.serving_path),
        # The analyst's SQL Lab file (marts only), which publish writes beside the serving file.
        "SERVING_MARTS_PATH": str(marts_copy_path(settings.serving_path)),
    }


def build_bundle(settings: Settings | None = None, assets_dir: Path = ASSETS_DIR) -> bytes:
    """The import zip: every YAML under `assets_dir`, placeholders filled in."""
    settings = settings or get_settings()
    values = template_values(settings)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(assets_dir.rglob("*.yaml")):
            relative = path.relative_to(assets_dir).as_posix()
            text = path.read_text()
            if "${" in text:
                # Substitute in the parsed document, so a path with YAML-special characters
                # is still quoted correctly.
                rendered = _render(yaml.safe_load(text), values, relative)
                text = yaml.safe_dump(rendered, sort_keys=False, allow_unicode=True)
            # Superset expects one top-level folder in the zip and strips it.
            bundle.writestr(f"assets/{relative}", text)
    return buffer.getvalue()


class SupersetClient:
    """A logged-in REST session (JWT for auth, session cookie + CSRF token for writes).

    Roles without FAB's security API (an executive cannot fetch `/api/v1/security/csrf_token/`)
    log in through the login form instead, exactly as the browser does: session cookie plus the
    form's CSRF token.
    """

    def __init__(self, url: str, creds: Credentials, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.user = creds.user
        self.session = requests.Session()
        response = self.session.post(
            f"{self.url}/api/v1/security/login",
            json={
                "username": creds.user,
                "password": creds.password,
                "provider": "db",
                "refresh": False,
            },
            timeout=timeout,
        )
        if response.status_code == 401:
            raise ProvisionError(
                f"Superset rejected the login of {creds.user!r}: the password in the environment differs "
                "from the metadata DB; run `init` (admin) or `access` (other users) again"
            )
        response.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        csrf = self.session.get(f"{self.url}/api/v1/security/csrf_token/", timeout=timeout)
        if csrf.status_code == 403:
            del self.session.headers["Authorization"]
            token = self._form_login(creds)
        else:
            csrf.raise_for_status()
            token = csrf.json()["result"]
        self.session.headers.update({"X-CSRFToken": token, "Referer": self.url})

    def _form_login(self, creds: Credentials) -> str:
        page = self.session.get(f"{self.url}/login/", timeout=self.timeout)
        match = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page.text)
        if not match:
            raise ProvisionError("the Superset login page has no CSRF token")
        token = match.group(1)
        response = self.session.post(
            f"{self.url}/login/",
            data={"username": creds.user, "password": creds.password, "csrf_token": token},
            allow_redirects=False,
            timeout=self.timeout,
        )
        me = self.session.get(f"{self.url}/api/v1/me/", timeout=self.timeout)
        if response.status_code >= 400 or me.status_code != 200:
            raise ProvisionError(f"the login form rejected {creds.user!r} (HTTP {response.status_code})")
        return token

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.session.get(f"{self.url}{path}", params=params, timeout=self.timeout)
        response.raise_for_status()
        return dict(response.json())

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(f"{self.url}{path}", timeout=self.timeout, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.put(f"{self.url}{path}", timeout=self.timeout, **kwargs)


def import_assets(settings: Settings | None = None, assets_dir: Path = ASSETS_DIR, log: Log = _log) -> float:
    """Import (create or overwrite by UUID) every asset into the running Superset; seconds taken."""
    settings = settings or get_settings()
    started = time.monotonic()
    bundle = build_bundle(settings, assets_dir)
    client = SupersetClient(base_url(settings), admin_credentials())
    response = client.post(
        "/api/v1/assets/import/",
        files={"bundle": ("assets.zip", bundle, "application/zip")},
    )
    if response.status_code != 200:
        raise ProvisionError(f"asset import failed (HTTP {response.status_code}): {response.text[:2000]}")
    seconds = time.monotonic() - started
    log(f"superset assets imported from {assets_dir} in {seconds:.1f}s")
    return seconds


def _secret_values() -> list[str]:
    """Every secret in the environment that must never end up in an exported file."""
    names = [name for name in os.environ if name.endswith(("_PASSWORD", "_SECRET", "_SECRET_KEY", "_TOKEN", "_KEY"))]
    return [os.environ[name] for name in names if len(os.environ[name]) >= 8]


def export_bundle(client: SupersetClient) -> dict[str, dict[str, Any]]:
    """Every asset in the running Superset (GET /api/v1/assets/export/): relative path -> document."""
    response = client.session.get(f"{client.url}/api/v1/assets/export/", timeout=client.timeout)
    if response.status_code != 200:
        raise ProvisionError(f"asset export failed (HTTP {response.status_code}): {response.text[:2000]}")
    documents: dict[str, dict[str, Any]] = {}
    with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
        for name in bundle.namelist():
            # Names are "<export folder>/<kind>/<file>.yaml"; drop the folder.
            relative = name.split("/", 1)[1] if "/" in name else name
            if relative.endswith(".yaml"):
                documents[relative] = yaml.safe_load(bundle.read(name)) or {}
    return documents


def export_assets(
    settings: Settings | None = None,
    assets_dir: Path = ASSETS_DIR,
    *,
    prune: bool = False,
    log: Log = _log,
) -> asset_files.ExportResult:
    """Write what the running Superset holds back to `assets_dir` as normalised YAML (UI edits -> git).

    Only changed or new objects are written (see `superset/asset_files.py`); files of objects that
    are gone from Superset are listed in the result and deleted only with `prune`.
    """
    settings = settings or get_settings()
    client = SupersetClient(base_url(settings), admin_credentials())
    documents = export_bundle(client)
    try:
        result = asset_files.write_assets(
            documents, assets_dir, template_values(settings), _secret_values(), prune=prune
        )
    except asset_files.AssetExportError as exc:
        raise ProvisionError(str(exc)) from exc
    log(
        f"superset export to {assets_dir}: {len(result.changed)} changed, {len(result.added)} added, "
        f"{len(result.unchanged)} unchanged, {len(result.removed)} {'removed' if prune else 'only in git'}"
    )
    for label, paths in (("changed", result.changed), ("added", result.added), ("only in git", result.removed)):
        for path in paths:
            log(f"  {label}: {path}")
    return result


def clear_data_cache(settings: Settings | None = None) -> int:
    """Drop cached chart results (call after a publish); returns the number of entries removed.

    Superset caches query results for SUPERSET_DATA_CACHE_SECONDS (superset_config.py), so
    without this dashboards show the previous serving file's numbers until the entries expire.
    Safe while Superset runs: a missing entry is a cache miss.
    """
    settings = settings or get_settings()
    redis_url = (
        cluster.config().superset_cache_redis_url
        if cluster.is_cluster()
        else os.environ.get("SUPERSET_CACHE_REDIS_URL", "").strip()
    )
    if redis_url:
        return _clear_redis_data_cache(redis_url)
    removed = 0
    for entry in (settings.superset_home / "cache" / "data").glob("*"):
        if entry.is_file():
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


# The data cache's keys in Redis (superset_config.py: CACHE_KEY_PREFIX + "data_").
REDIS_DATA_CACHE_PREFIX = "shop_superset_data_"


def _clear_redis_data_cache(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
    keys = list(client.scan_iter(match=f"{REDIS_DATA_CACHE_PREFIX}*", count=1000))
    return int(client.delete(*keys)) if keys else 0


# --- what `make run` calls ----------------------------------------------------------------------


def apply_access(
    settings: Settings | None = None, assets_dir: Path = ASSETS_DIR, log: Log = _log
) -> access.AccessResult:
    """Roles, users, dashboard roles and row-level security from `superset/roles.yaml` (after the import)."""
    settings = settings or get_settings()
    client = SupersetClient(base_url(settings), admin_credentials())
    try:
        return access.apply_access(client, assets_dir, log=log)
    except access.AccessError as exc:
        raise ProvisionError(str(exc)) from exc


def up(settings: Settings | None = None, log: Log = _log) -> str:
    """Initialise (if needed), start, deploy the assets and the roles; return the URL to open."""
    settings = settings or get_settings()
    init_metadata(settings, log=log)
    url = start(settings, log=log)
    import_assets(settings, log=log)
    apply_access(settings, log=log)
    return url


def down(settings: Settings | None = None) -> list[str]:
    """Stop Superset; the names of the services stopped ([] if it was not running)."""
    return [SERVICE] if stop(settings) else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m superset.provision", description=__doc__)
    parser.add_argument(
        "action", choices=["up", "down", "init", "start", "stop", "import", "export", "access", "status"]
    )
    parser.add_argument(
        "--prune", action="store_true", help="export: also delete files of assets no longer in Superset"
    )
    args = parser.parse_args(argv)
    prepare_command()  # run by hand: the generated credentials (the caller's environment wins)
    try:
        if args.action == "up":
            print(up())
        elif args.action in {"down", "stop"}:
            _log("superset stopped" if down() else "superset was not running")
        elif args.action == "init":
            init_metadata()
        elif args.action == "start":
            print(start())
        elif args.action == "import":
            import_assets()
        elif args.action == "export":
            export_assets(prune=args.prune)
        elif args.action == "access":
            apply_access()
        else:
            running = is_running()
            print(f"superset {'running at ' + base_url() if running else 'not running'}")
            return 0 if running else 3
    except (ProvisionError, procs.ServiceError) as exc:
        print(f"superset: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Serve layer: deploy `superset/assets/` into a running Superset, and edits made in its UI back.

Runs in the *pipeline* venv with nothing but `requests` and PyYAML; starting and stopping Superset
itself (its venv, metadata DB and gunicorn) is `stackctl/superset_service.py`. Both are commands of
the one CLI:

    .venv/pipeline/bin/python -m stackctl superset up      # init if needed, start, import, roles
    .venv/pipeline/bin/python -m stackctl superset export  # UI edits -> superset/assets/*.yaml
    .venv/pipeline/bin/python -m stackctl superset down

Why `superset/` has no `__init__.py`: it makes this folder a namespace package, so
`import superset.provision` works here (the pipeline venv has no real `superset`), while inside
the Superset venv the real, regular `superset` package always wins, even with the repo root on
`sys.path`. A test keeps it that way.

Into a running Superset, each step idempotent:
- `import_assets()`: zip `superset/assets/` with `${SERVING_PATH}` filled in, log in over REST
  (JWT + CSRF token) and POST it to `/api/v1/assets/import/`, which overwrites by UUID.
- `apply_access()`: roles, users (passwords from the environment), dashboard roles and
  row-level security from `superset/roles.yaml` (`superset/access.py`); after the import,
  because the file names dashboards and datasets that only then have ids.
- `apply_reports()`: the e-mail reports and alerts of `superset/reports.yaml`
  (`superset/reports.py`), also after the import; Superset's import does not carry them.

And the way back, `export_assets()`: `GET /api/v1/assets/export/`, normalised into the YAML files
(no ids, no secrets, the serving path re-templated; `superset/asset_files.py`), so a chart edited
in the UI becomes a reviewable diff. `clear_data_cache()` drops cached chart results after a publish.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from core.command import prepare_command
from core.settings import Settings, get_settings
from superset import access, asset_files

HERE = Path(__file__).resolve().parent
CONFIG_PATH = HERE / "superset_config.py"
ASSETS_DIR = HERE / "assets"
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


def require_env(name: str) -> str:
    """The value of a setting Superset cannot run without (ProvisionError when it is not set)."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise ProvisionError(f"{name} is not set: generate credentials into .env (`make env`)")
    return value


def admin_credentials() -> Credentials:
    """The admin login, from SUPERSET_ADMIN_USER / SUPERSET_ADMIN_PASSWORD."""
    return Credentials(require_env("SUPERSET_ADMIN_USER"), require_env("SUPERSET_ADMIN_PASSWORD"))


def base_url(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return f"http://127.0.0.1:{settings.superset_port}"


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


def http_session() -> requests.Session:
    """A requests session that resends a read-only request once when the connection drops.

    A keep-alive connection the server closes just as a request goes out fails with "Remote end
    closed connection without response"; browsers resend such a request, and so does this
    session, but only for methods that change nothing (a POST is never sent twice).
    """
    session = requests.Session()
    retry = Retry(total=1, connect=1, read=1, status=0, other=0, allowed_methods={"GET", "HEAD", "OPTIONS"})
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


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
        self.session = http_session()
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
    redis_url = os.environ.get("SUPERSET_CACHE_REDIS_URL", "").strip()
    if not redis_url and os.environ.get("STACK_MODE", "").strip().lower() == "cluster":
        # Cluster mode's entry points (`python -m stackctl`, the Airflow task environment) put the
        # cache's URL in the environment; without it this would empty a file cache nobody reads.
        raise ProvisionError(
            "STACK_MODE=cluster but SUPERSET_CACHE_REDIS_URL is not set: run the command through "
            "`python -m stackctl`, which fills in cluster mode's defaults"
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


# --- roles and users ----------------------------------------------------------------------------


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


# --- e-mail reports and alerts ----------------------------------------------------------------


def apply_reports(
    settings: Settings | None = None, reports_file: Path | None = None, log: Log = _log
) -> dict[str, str]:
    """The report and alert schedules of `superset/reports.yaml` (`superset/reports.py`), after
    the import, because they name dashboards and databases by uuid; name -> what was done."""
    from superset import reports

    settings = settings or get_settings()
    client = SupersetClient(base_url(settings), admin_credentials())
    try:
        return reports.apply_reports(client, reports_file or reports.REPORTS_FILE, log=log)
    except reports.ReportsError as exc:
        raise ProvisionError(str(exc)) from exc


# --- `python -m superset.provision` (the older entry point; `python -m stackctl superset` has it all)

ACTIONS = ("import", "export", "access")
# Superset's service moved to `stackctl/superset_service.py`; its actions say where they went.
MOVED = ("up", "down", "init", "start", "stop", "status")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m superset.provision", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", help=f"one of {', '.join(ACTIONS)}")
    parser.add_argument(
        "--prune", action="store_true", help="export: also delete files of assets no longer in Superset"
    )
    args = parser.parse_args(argv)
    if args.action in MOVED:
        parser.exit(2, f"error: `{args.action}` is `python -m stackctl superset {args.action}` now\n")
    if args.action not in ACTIONS:
        parser.exit(2, f"error: unknown action {args.action!r}: one of {', '.join(ACTIONS)}\n")
    prepare_command()  # run by hand: the generated credentials (the caller's environment wins)
    try:
        if args.action == "import":
            import_assets()
        elif args.action == "export":
            export_assets(prune=args.prune)
        else:
            apply_access()
    except ProvisionError as exc:
        print(f"error: superset: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Superset configuration for the serve layer: env-driven, offline, read-only DuckDB.

Superset's own process loads this file through `SUPERSET_CONFIG_PATH` (as a module named
`superset_config`), inside the Superset venv. It therefore imports no package of this repository
(`stackctl` lives in the pipeline venv; the modules beside it that it uses, `sqllab_guard.py`,
`sql_policy.py` and `login_throttle.py`, are loaded by path): it reads the same environment variables as
`core.settings.get_settings()` with the same defaults. `stackctl/superset_service.py` always passes
the resolved values explicitly, so the fallbacks here only matter when Superset is started by hand.

What it enforces:
- secrets only from the environment (`SUPERSET_SECRET_KEY`), never a default key;
- DuckDB connections only to files inside the warehouse folder, opened read-only with external
  (file/network) access disabled and the configuration locked (no SET/RESET), whatever a
  database's `extra` or URI query says;
- non-admins run their own SQL only on a database they may read in full (the analyst's `marts`
  file) and only as SELECTs over `marts` (`sqllab_guard.py`, `sql_policy.py`);
- file-reading DuckDB functions refused in SQL Lab;
- failed logins throttled per address and login name (`login_throttle.py`);
- no third-party requests from the UI (the telemetry pixel is dropped from the CSP).

Embedded mode keeps metadata in SQLite and caches on disk under SUPERSET_HOME; cluster mode
(`stackctl/cluster.py`) only sets `SUPERSET_METADATA_URI` (PostgreSQL) and
`SUPERSET_CACHE_REDIS_URL` (Redis caches).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

_REPO_ROOT = Path(__file__).resolve().parent.parent


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def _superset_home() -> Path:
    var_dir = _env_path("STACK_VAR_DIR", _REPO_ROOT / "var")
    return _env_path("SUPERSET_HOME", var_dir / "superset")


def duckdb_allowed_dir() -> Path:
    """The one folder whose DuckDB files Superset may open: the serving file's folder."""
    if os.environ.get("SERVING_PATH"):
        return _env_path("SERVING_PATH", Path()).parent
    data_dir = _env_path("STACK_DATA_DIR", _REPO_ROOT)
    return _env_path("WAREHOUSE_DIR", data_dir / "warehouse")


_PLACEHOLDER = re.compile(r"^(<[^>]*>|change[ _-]?me|x{3,}|todo|secret|password)$", re.IGNORECASE)


def _require_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise RuntimeError(f"{name} is not set: generate it into .env (see .env.example)")
    # A placeholder from .env.example is a key everyone with the repository knows: session cookies
    # signed with it can be forged. The same rule as core/envfile.py (this file cannot import it).
    if _PLACEHOLDER.match(value):
        raise RuntimeError(f"{name} is a placeholder ({value}): run `make env` to generate a random one")
    return value


SUPERSET_HOME = _superset_home()

SECRET_KEY = _require_env("SUPERSET_SECRET_KEY")

SQLALCHEMY_DATABASE_URI = os.environ.get("SUPERSET_METADATA_URI") or (
    f"sqlite:///{SUPERSET_HOME / 'superset.db'}?check_same_thread=false"
)
# Examples are never loaded; keep the (unused) examples URI out of the metadata DB and repo.
SQLALCHEMY_EXAMPLES_URI = f"sqlite:///{SUPERSET_HOME / 'examples.db'}?check_same_thread=false"
UPLOAD_FOLDER = str(SUPERSET_HOME / "uploads") + "/"

# Roles and users over REST (`/api/v1/security/roles/` ...), used to provision view-only roles.
FAB_ADD_SECURITY_API = True

# DASHBOARD_RBAC: a dashboard tied to roles (superset/roles.yaml) is visible to those roles only,
# and serves its charts' data to them without any dataset permission: executives see dashboards,
# never datasets. ALERT_REPORTS: scheduled e-mail reports and SQL alerts (see "Alerts & Reports"
# below); PLAYWRIGHT_REPORTS_AND_THUMBNAILS: their screenshots through Playwright in Debian's
# chromium (Selenium would need a chromedriver, which Debian's chromium does not ship).
FEATURE_FLAGS = {"DASHBOARD_RBAC": True, "ALERT_REPORTS": True, "PLAYWRIGHT_REPORTS_AND_THUMBNAILS": True}

# CSRF stays on for the UI; REST writes fetch `/api/v1/security/csrf_token/` first.
WTF_CSRF_ENABLED = True

ROW_LIMIT = 50_000
SUPERSET_WEBSERVER_TIMEOUT = 60


# --- DuckDB: read-only, inside the warehouse folder, no external access -----------------------


def _is_duckdb(uri: Any) -> bool:
    return str(uri.drivername).split("+")[0] in {"duckdb", "motherduck"}


def DB_SQLA_URI_VALIDATOR(uri: Any) -> None:
    """Refuse DuckDB URIs that point outside the warehouse folder or carry config overrides.

    Called by Superset before every engine is created (queries, connection tests, imports).
    """
    if not _is_duckdb(uri):
        return
    database = uri.database or ""
    if database in {"", ":memory:"} or database.startswith(("md:", "motherduck:")):
        raise ValueError("DuckDB connections must point at a file in the warehouse folder")
    if uri.query:
        # duckdb-engine turns URI query parameters into DuckDB config, overriding connect_args.
        raise ValueError("DuckDB URIs may not carry query parameters (DuckDB config overrides)")
    allowed = duckdb_allowed_dir()
    path = Path(database).expanduser().resolve()
    if not path.is_relative_to(allowed):
        raise ValueError(f"DuckDB file {path} is outside the warehouse folder {allowed}")


def DB_CONNECTION_MUTATOR(
    uri: Any, params: dict[str, Any], username: Any, security_manager: Any, source: Any
) -> tuple[Any, dict[str, Any]]:
    """Force read-only, no-external-access DuckDB connections whatever a database's extra says."""
    if _is_duckdb(uri):
        connect_args = params.setdefault("connect_args", {})
        connect_args["read_only"] = True
        config = dict(connect_args.get("config") or {})
        config["enable_external_access"] = False
        # No SET/RESET from a query: memory_limit, threads, paths stay what the server chose.
        config["lock_configuration"] = True
        connect_args["config"] = config
    return uri, params


def _default_disallowed_functions() -> dict[str, set[str]]:
    # This file is executed while `superset.config` is being imported, after its defaults are
    # defined: extend them instead of replacing the other engines' lists.
    try:
        from superset.config import DISALLOWED_SQL_FUNCTIONS as defaults
    except ImportError:  # loaded outside Superset (tests in the pipeline venv)
        return {}
    return {engine: set(functions) for engine, functions in defaults.items()}


# Defence in depth: `enable_external_access=false` already makes these fail inside DuckDB. Note
# that one of Superset's checks matches these names as substrings of the SQL text, so keep them
# specific (no `query`, `sql`...).
DUCKDB_DISALLOWED_FUNCTIONS = {
    "read_csv",
    "read_csv_auto",
    "sniff_csv",
    "read_parquet",
    "parquet_scan",
    "parquet_metadata",
    "parquet_schema",
    "parquet_file_metadata",
    "parquet_kv_metadata",
    "read_json",
    "read_json_auto",
    "read_json_objects",
    "read_json_objects_auto",
    "read_ndjson",
    "read_ndjson_auto",
    "read_ndjson_objects",
    "read_text",
    "read_blob",
    "read_xlsx",
    "glob",
    "sqlite_scan",
    "sqlite_attach",
    "postgres_scan",
    "mysql_scan",
    "delta_scan",
    "iceberg_scan",
    "st_read",
    "getenv",
    "current_setting",
    "duckdb_settings",
    "duckdb_secrets",
    "duckdb_extensions",
    "duckdb_databases",
}

DISALLOWED_SQL_FUNCTIONS = _default_disallowed_functions()
DISALLOWED_SQL_FUNCTIONS["duckdb"] = DUCKDB_DISALLOWED_FUNCTIONS


# --- Containment of free-form SQL and login throttling (modules beside this file) -------------

_HERE = Path(__file__).resolve().parent


def _local_module(name: str) -> Any:
    """Load `<this folder>/<name>.py`: inside Superset's venv `superset.*` is the real package, not
    this folder, so these modules are loaded by path under a name of their own."""
    module_name = f"shop_superset_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, _HERE / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


# The schemas a non-admin's SQL may name (the analyst's `marts` database holds only these).
SQLLAB_ALLOWED_SCHEMAS = ("marts",)


def _security_manager() -> Any:
    try:
        from superset.security import SupersetSecurityManager
    except ImportError:  # loaded outside Superset (tests in the pipeline venv)
        return None
    guard = _local_module("sqllab_guard")
    policy = _local_module("sql_policy")
    return guard.security_manager_class(SupersetSecurityManager, policy.check, SQLLAB_ALLOWED_SCHEMAS)


CUSTOM_SECURITY_MANAGER = _security_manager()

# Flask-Limiter: on, but only for failed logins (login_throttle.py). Superset enables it in
# production only, with an application-wide limit per address (50/s) that one dashboard's first
# load (dozens of static files and chart requests) can exceed: none here.
RATELIMIT_ENABLED = True
RATELIMIT_APPLICATION = None
# FAB's own login limit counts successful logins too and skips the REST login (see login_throttle).
AUTH_RATE_LIMITED = False
LOGIN_FAILURE_LIMIT = os.environ.get("SUPERSET_LOGIN_FAILURE_LIMIT", "").strip() or "5 per 5 minutes"
# Shared by every worker and host through Redis in cluster mode; per worker process otherwise.
RATELIMIT_STORAGE_URI = os.environ.get("SUPERSET_CACHE_REDIS_URL", "").strip() or "memory://"
RATELIMIT_KEY_PREFIX = "shop_superset_ratelimit"


def FLASK_APP_MUTATOR(app: Any) -> None:
    _local_module("login_throttle").install(app, LOGIN_FAILURE_LIMIT)
    if SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
        _commit_alert_value_before_screenshot()


# --- Caches: on disk under SUPERSET_HOME (embedded) or in Redis (cluster mode) ----------------
# Either way every gunicorn worker shares them; Redis also shares them between Superset hosts.
# `superset/provision.py` (clear_data_cache) relies on the data cache's key prefix below.

CACHE_REDIS_URL = os.environ.get("SUPERSET_CACHE_REDIS_URL", "").strip()
CACHE_KEY_PREFIX = "shop_superset_"


def _cache(name: str, timeout: timedelta) -> dict[str, Any]:
    if CACHE_REDIS_URL:
        return {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": CACHE_REDIS_URL,
            "CACHE_KEY_PREFIX": f"{CACHE_KEY_PREFIX}{name}_",
            "CACHE_DEFAULT_TIMEOUT": int(timeout.total_seconds()),
        }
    return {
        "CACHE_TYPE": "FileSystemCache",
        "CACHE_DIR": str(SUPERSET_HOME / "cache" / name),
        "CACHE_DEFAULT_TIMEOUT": int(timeout.total_seconds()),
        "CACHE_THRESHOLD": 5_000,
    }


CACHE_CONFIG = _cache("metadata", timedelta(days=1))
# Short on purpose: the serving file is replaced by each publish, so results go stale quickly.
DATA_CACHE_CONFIG = _cache("data", timedelta(seconds=int(os.environ.get("SUPERSET_DATA_CACHE_SECONDS", "300"))))
FILTER_STATE_CACHE_CONFIG = _cache("filter_state", timedelta(days=90))
EXPLORE_FORM_DATA_CACHE_CONFIG = _cache("explore_form_data", timedelta(days=7))


# --- Alerts & Reports: Celery worker and beat, e-mail, screenshots in Debian's chromium ---------
# `stackctl/superset_service.py` starts `celery worker` and `celery beat` beside gunicorn; the
# schedules themselves are provisioned from `superset/reports.yaml` (superset/provision.py).
# Embedded mode queues on a SQLite file (kombu's SQLAlchemy transport: no server to run); cluster
# mode passes a Redis URL on 127.0.0.1 (its own db number, apart from Airflow's queue and the caches).

SUPERSET_PORT = int(os.environ.get("SUPERSET_PORT", "").strip() or "8088")
CELERY_BROKER_URL = os.environ.get("SUPERSET_CELERY_BROKER_URL", "").strip() or (
    f"sqla+sqlite:///{SUPERSET_HOME / 'celery_broker.sqlite'}"
)
CELERY_RESULT_BACKEND = os.environ.get("SUPERSET_CELERY_RESULT_BACKEND", "").strip() or (
    f"db+sqlite:///{SUPERSET_HOME / 'celery_results.sqlite'}"
)


def _celery_config() -> Any:
    try:
        from superset.config import CeleryConfig
    except ImportError:  # loaded outside Superset (tests in the pipeline venv)
        return None

    class StackCeleryConfig(CeleryConfig):  # type: ignore[misc,valid-type]
        """Superset's own task list and beat schedule (reports.scheduler every minute), our queue."""

        broker_url = CELERY_BROKER_URL
        result_backend = CELERY_RESULT_BACKEND

    return StackCeleryConfig


CELERY_CONFIG = _celery_config()


def _eta_as_datetime(task: Any = None, **_: Any) -> None:
    """Hand `reports.execute` its scheduled time as a datetime, not as Celery's ISO text.

    Superset stores `request.eta` as the run's `scheduled_dttm`; Celery passes it as text, which
    PostgreSQL converts but SQLite metadata (embedded mode) refuses, failing every report run.
    """
    from datetime import UTC, datetime

    request = getattr(task, "request", None)
    eta = getattr(request, "eta", None)
    if isinstance(eta, str):
        moment = datetime.fromisoformat(eta)
        # Naive UTC, as Superset writes its other report timestamps.
        request.eta = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _connect_celery_signals() -> None:
    try:
        from celery.signals import task_prerun
    except ImportError:  # no Celery where this file is only inspected
        return
    task_prerun.connect(_eta_as_datetime, weak=False, dispatch_uid="shop_superset_eta_as_datetime")


_connect_celery_signals()


def _commit_alert_value_before_screenshot() -> None:
    """SQLite metadata (embedded mode) only: commit an alert's evaluated value before its screenshot.

    Superset writes the value it just computed (`last_value`) and keeps that transaction open while
    the worker's browser renders the dashboard, so the SQLite file stays write-locked for the whole
    screenshot: the web server cannot write its own rows (the event log) and the charts never
    finish loading. PostgreSQL locks only the row, so cluster mode runs Superset's code unchanged.
    """
    from superset.commands.report.alert import AlertCommand
    from superset.extensions import db

    if getattr(AlertCommand.run, "_stack_commits", False):
        return
    original = AlertCommand.run

    def run(self: Any) -> Any:
        outcome = original(self)
        db.session.commit()
        return outcome

    run._stack_commits = True  # type: ignore[attr-defined]
    AlertCommand.run = run  # type: ignore[method-assign]


# E-mail: the stack's one SMTP configuration (ALERT_SMTP_URL, ALERT_EMAIL_FROM; also used for
# Airflow's failure e-mails, core/alerts.py). smtp:// = STARTTLS (port 587), smtps:// = TLS (465);
# `?disable_tls=true` for a local relay without TLS. The server's certificate is verified.


def _smtp_settings(url: str, sender: str) -> dict[str, Any]:
    from urllib.parse import parse_qsl, unquote, urlsplit

    if not url:
        return {"SMTP_HOST": "localhost", "SMTP_PORT": 25, "SMTP_STARTTLS": False, "SMTP_SSL": False}
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        # Not the value itself: it may hold the password.
        raise RuntimeError("ALERT_SMTP_URL: expected smtp://[user:password@]host[:port] (STARTTLS) or smtps://...")
    query = {key.lower(): value.strip().lower() for key, value in parse_qsl(parts.query)}
    use_ssl = query.get("disable_ssl", "false" if parts.scheme == "smtps" else "true") != "true"
    starttls = not use_ssl and query.get("disable_tls", "false") != "true"
    login = unquote(parts.username) if parts.username else None
    return {
        "SMTP_HOST": parts.hostname,
        "SMTP_PORT": parts.port or (465 if parts.scheme == "smtps" else 587),
        "SMTP_SSL": use_ssl,
        "SMTP_STARTTLS": starttls,
        "SMTP_USER": login,
        "SMTP_PASSWORD": unquote(parts.password) if parts.password else None,
        "SMTP_MAIL_FROM": sender or (login if login and "@" in login else "superset@localhost"),
    }


_SMTP = _smtp_settings(os.environ.get("ALERT_SMTP_URL", "").strip(), os.environ.get("ALERT_EMAIL_FROM", "").strip())
SMTP_HOST: str = _SMTP["SMTP_HOST"]
SMTP_PORT: int = _SMTP["SMTP_PORT"]
SMTP_SSL: bool = _SMTP["SMTP_SSL"]
SMTP_STARTTLS: bool = _SMTP["SMTP_STARTTLS"]
# Superset logs in only when both are set; its defaults ("superset"/"superset") must not be sent.
SMTP_USER = _SMTP.get("SMTP_USER")
SMTP_PASSWORD = _SMTP.get("SMTP_PASSWORD")
SMTP_MAIL_FROM = _SMTP.get("SMTP_MAIL_FROM") or "superset@localhost"
# Superset's default skips certificate checks on STARTTLS and TLS.
SMTP_SSL_SERVER_AUTH = True
EMAIL_REPORTS_SUBJECT_PREFIX = "[Superset] "

# Screenshots: the worker opens Superset itself on 127.0.0.1 in headless chromium, logged in as
# the schedule's owner (the admin that provisions them). Links in the e-mails use the public URL.
WEBDRIVER_BASEURL = f"http://127.0.0.1:{SUPERSET_PORT}/"
WEBDRIVER_BASEURL_USER_FRIENDLY = os.environ.get("SUPERSET_PUBLIC_URL", "").strip() or WEBDRIVER_BASEURL
CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "").strip() or "/usr/bin/chromium"
# --no-sandbox: chromium refuses to start as root with its sandbox; it only ever opens this Superset.
WEBDRIVER_OPTION_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
WEBDRIVER_WINDOW = {"dashboard": (1600, 1800), "slice": (1200, 800), "pixel_density": 1}
# Superset waits this long before and after the charts drew (defaults 3 s and 5 s); our charts
# have no long animations.
SCREENSHOT_SELENIUM_HEADSTART = int(os.environ.get("SUPERSET_SCREENSHOT_HEADSTART", "").strip() or "2")
SCREENSHOT_SELENIUM_ANIMATION_WAIT = int(os.environ.get("SUPERSET_SCREENSHOT_ANIMATION_WAIT", "").strip() or "2")
ALERT_REPORTS_NOTIFICATION_DRY_RUN = False


def _use_system_chromium() -> None:
    """Make Playwright launch Debian's chromium, never a browser downloaded by `playwright install`.

    Superset's Playwright driver calls `chromium.launch(args=...)` with no executable path, which
    means Playwright's own browser build; this Superset has none, on purpose (nothing is downloaded
    at run time). Only launches without an explicit path are changed.
    """
    try:
        from playwright.sync_api import BrowserType
    except ImportError:  # no Playwright (the pipeline venv's tests load this file too)
        return
    if getattr(BrowserType.launch, "_stack_system_chromium", False):
        return
    original = BrowserType.launch

    def launch(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.name == "chromium" and not kwargs.get("executable_path"):
            kwargs["executable_path"] = CHROMIUM_PATH
        return original(self, *args, **kwargs)

    launch._stack_system_chromium = True  # type: ignore[attr-defined]
    BrowserType.launch = launch  # type: ignore[method-assign]


_use_system_chromium()


# --- Browser: self-hosted, no third-party requests --------------------------------------------

_CSP: dict[str, Any] = {
    "base-uri": ["'self'"],
    "default-src": ["'self'"],
    # Superset's default also allows *.scarf.sh (a telemetry pixel on every page) and map tiles.
    "img-src": ["'self'", "blob:", "data:"],
    "worker-src": ["'self'", "blob:"],
    "connect-src": ["'self'"],
    "object-src": "'none'",
    "style-src": ["'self'", "'unsafe-inline'"],
    "font-src": ["'self'", "data:"],
    "script-src": ["'self'", "'strict-dynamic'"],
}
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": _CSP,
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}
TALISMAN_DEV_CONFIG = {
    **TALISMAN_CONFIG,
    "content_security_policy": {
        **_CSP,
        "script-src": ["'self'", "'unsafe-inline'", "'unsafe-eval'"],
    },
}

"""Superset on this machine: its process environment, its metadata DB and its web server.

The service manager beside `airflow_service.py`; `superset/provision.py` keeps what goes into a
running Superset (the asset import and export, roles and row-level security).

Superset 6.1 lives in its own venv (it needs SQLAlchemy<2, Airflow needs >=2). This module drives
that venv's `superset` CLI and `gunicorn` as subprocesses, with `SUPERSET_CONFIG_PATH` pointing at
`superset/superset_config.py`, the working directory set to `superset_home`, and `PYTHONPATH`
removed. Each step is idempotent:

- `init_metadata()`: `superset db upgrade`, `fab create-admin` (password on stdin, not argv) and
  `superset init`. Each CLI call costs a few seconds of start-up, so a marker file in
  `superset_home` records what was done (Superset version, metadata DB, admin credentials
  fingerprint) and unchanged steps are skipped.
- `start()`: gunicorn on 127.0.0.1:`SUPERSET_PORT` via `stackctl.procs`, then wait for /health.
- `start_scheduler()`: Superset's Celery worker and beat (Alerts & Reports: the scheduled e-mails
  of `superset/reports.yaml`); their queue is a SQLite file in `superset_home` (kombu's
  SQLAlchemy transport, no server), or Redis in cluster mode (SUPERSET_CELERY_BROKER_URL).
- `up()`: init, start, the scheduler, then the assets, the roles and the report schedules
  (`superset/provision.py`); what `make run` and `make up` call. `down()` stops all three services.

In cluster mode (`stackctl/cluster.py`) the metadata lives on PostgreSQL and the caches in Redis.

    python -m stackctl superset up|down|init|start|stop|status|import|export|access|exposures
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from core.settings import Settings, get_settings
from stackctl import cluster, procs
from superset.provision import (
    CONFIG_PATH,
    Credentials,
    Log,
    ProvisionError,
    admin_credentials,
    apply_access,
    apply_reports,
    base_url,
    export_assets,
    import_assets,
    require_env,
)

SERVICE = "superset"
WORKER = "superset-worker"
BEAT = "superset-beat"
MARKER_NAME = ".provisioned.json"
# Cluster mode's queue for Superset's Celery: the Redis on 127.0.0.1, a db of its own (Airflow's
# queue is db 0, Superset's caches db 1).
CLUSTER_CELERY_URL = "redis://127.0.0.1:6379/2"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def superset_venv(settings: Settings) -> Path:
    """The Superset venv (SUPERSET_VENV, default `.venv/superset` in the repo)."""
    value = os.environ.get("SUPERSET_VENV")
    return Path(value).expanduser().resolve() if value else settings.repo_root / ".venv/superset"


def _venv_bin(settings: Settings, name: str) -> Path:
    path = superset_venv(settings) / "bin" / name
    if not path.exists():
        raise ProvisionError(f"{path} not found: create the Superset venv first (`make install`)")
    return path


def superset_env(settings: Settings) -> dict[str, str]:
    """The environment of every Superset process: config file, home and serving file."""
    require_env("SUPERSET_SECRET_KEY")
    env = {
        key: value
        for key, value in os.environ.items()
        # The repo root on PYTHONPATH is harmless (see superset/provision.py's docstring); the
        # pipeline venv's packages are not.
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    }
    env.update(
        SUPERSET_CONFIG_PATH=str(CONFIG_PATH),
        SUPERSET_HOME=str(settings.superset_home),
        SERVING_PATH=str(settings.serving_path),
        # The report worker's browser opens Superset here (superset_config.py: WEBDRIVER_BASEURL).
        SUPERSET_PORT=str(settings.superset_port),
        PYTHONUNBUFFERED="1",
    )
    env.update(celery_urls(settings))
    if cluster.is_cluster():
        # PostgreSQL metadata and Redis caches (superset_config.py reads these two).
        cfg = cluster.config()
        env.update(
            SUPERSET_METADATA_URI=cfg.superset_metadata_uri, SUPERSET_CACHE_REDIS_URL=cfg.superset_cache_redis_url
        )
    return env


def celery_urls(settings: Settings) -> dict[str, str]:
    """Broker and result backend of Superset's Celery (the environment wins over the mode's default).

    Embedded: SQLite files in `superset_home`, through kombu's SQLAlchemy transport (no server).
    Cluster: the Redis on 127.0.0.1, db 2.
    """
    if cluster.is_cluster():
        broker = os.environ.get("SUPERSET_CELERY_BROKER_URL", "").strip() or CLUSTER_CELERY_URL
        backend = os.environ.get("SUPERSET_CELERY_RESULT_BACKEND", "").strip() or broker
    else:
        home = settings.superset_home
        broker = (
            os.environ.get("SUPERSET_CELERY_BROKER_URL", "").strip()
            or f"sqla+sqlite:///{home / 'celery_broker.sqlite'}"
        )
        backend = (
            os.environ.get("SUPERSET_CELERY_RESULT_BACKEND", "").strip()
            or f"db+sqlite:///{home / 'celery_results.sqlite'}"
        )
    return {"SUPERSET_CELERY_BROKER_URL": broker, "SUPERSET_CELERY_RESULT_BACKEND": backend}


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
    secret = require_env("SUPERSET_SECRET_KEY")
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
            # gunicorn closes an idle keep-alive connection after 2 s by default; a client that
            # pauses longer (a dashboard between clicks, a script between calls) then races the
            # close; 30 s covers such pauses (a reverse proxy in front should idle out sooner).
            "--keep-alive=30",
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


# --- Alerts & Reports: Celery worker and beat ---------------------------------------------------


def start_scheduler(settings: Settings | None = None, log: Log = _log) -> list[str]:
    """Start Superset's Celery worker and beat (unless running); the names of the services.

    Neither listens on a port: the worker takes tasks from the queue, renders screenshots in
    headless chromium against 127.0.0.1 and sends the e-mails; beat enqueues `reports.scheduler`
    every minute, which enqueues the schedules that are due.
    """
    settings = settings or get_settings()
    env = superset_env(settings)
    if cluster.is_cluster():
        cluster.check_redis(env["SUPERSET_CELERY_BROKER_URL"])
    celery = _venv_bin(settings, "celery")
    app = "--app=superset.tasks.celery_app:app"
    # One task at a time by default: a screenshot keeps a browser and the web server busy, and two at
    # once on a small machine can starve each other past Superset's 60 s page timeout. Due schedules
    # only wait (the scheduler task computes what is due from the time beat sent it).
    concurrency = os.environ.get("SUPERSET_WORKER_CONCURRENCY", "").strip() or "1"
    commands = {
        WORKER: [
            celery,
            app,
            "worker",
            f"--concurrency={concurrency}",
            "--hostname=superset-worker@%h",
            "--loglevel=INFO",
            # One worker on one machine: no broadcast chatter between workers.
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        BEAT: [
            celery,
            app,
            "beat",
            f"--schedule={settings.superset_home / 'celerybeat-schedule'}",
            f"--pidfile={settings.run_dir / 'celery' / 'superset-beat.pid'}",
            "--loglevel=INFO",
        ],
    }
    (settings.run_dir / "celery").mkdir(parents=True, exist_ok=True)
    for name, command in commands.items():
        if not procs.is_running(name, settings.run_dir):
            procs.start(name, command, env=env, cwd=settings.superset_home, run_dir=settings.run_dir)
            log(f"{name} started (log: {procs.log_file(name, settings.run_dir)})")
    return list(commands)


def stop_scheduler(settings: Settings | None = None, timeout: float = 60.0) -> list[str]:
    """Stop beat, then the worker (letting a report being rendered finish, up to `timeout` s);
    the names of those that were running."""
    settings = settings or get_settings()
    return [name for name in (BEAT, WORKER) if _stop_celery(settings, name, timeout)]


def _stop_celery(settings: Settings, name: str, timeout: float) -> bool:
    # Celery's warm shutdown is SIGTERM to its main process, which then ends its pool. SIGTERM to
    # the whole group (procs.stop) kills the pool's children under it and leaves the main process
    # waiting for them until SIGKILL.
    pid = procs.read_pid(name, settings.run_dir)
    if pid is None:
        return procs.stop(name, settings.run_dir)  # removes a stale pid file
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while procs.is_running(name, settings.run_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    # Whatever is left (a task that outlived the timeout, its browser): the group, SIGKILL after 5 s.
    procs.stop(name, settings.run_dir, timeout=5)
    return True


def scheduler_running(settings: Settings | None = None) -> bool:
    settings = settings or get_settings()
    return all(procs.is_running(name, settings.run_dir) for name in (WORKER, BEAT))


# --- what `make run` calls ----------------------------------------------------------------------


def up(settings: Settings | None = None, log: Log = _log) -> str:
    """Initialise (if needed), start, deploy the assets and the roles; return the URL to open."""
    settings = settings or get_settings()
    init_metadata(settings, log=log)
    url = start(settings, log=log)
    start_scheduler(settings, log=log)
    import_assets(settings, log=log)
    apply_access(settings, log=log)
    apply_reports(settings, log=log)
    return url


def down(settings: Settings | None = None) -> list[str]:
    """Stop Superset (web server, worker, beat); the names of the services stopped."""
    settings = settings or get_settings()
    return stop_scheduler(settings) + ([SERVICE] if stop(settings) else [])


# --- `python -m stackctl superset` --------------------------------------------------------------

ACTIONS = {
    "up": "initialise if needed, start (web server, report worker and beat), import the assets, apply the roles "
    "and the report schedules; print the URL",
    "down": "stop the web server, the report worker and beat",
    "init": "create or upgrade the metadata DB and the admin login",
    "start": "start the web server and wait for /health; print the URL",
    "stop": "stop the web server, the report worker and beat (same as down)",
    "status": "running or not (exit 3 when not running)",
    "import": "import superset/assets/ into the running Superset (overwrites by UUID), then the report schedules",
    "reports": "create or update the e-mail reports and alerts of superset/reports.yaml",
    "export": "write dashboards edited in the UI back to superset/assets/ (review, then commit)",
    "access": "apply superset/roles.yaml: roles, users, dashboard roles, row-level security",
    "exposures": "rewrite dbt_project's exposures from superset/assets/ (one per dashboard, with the models it reads)",
}


def _exposures(check: bool) -> int:
    from superset.exposures import ExposureError, write_exposures

    settings = get_settings()
    try:
        path, changed = write_exposures(settings, check=check)
    except (ExposureError, RuntimeError) as exc:
        print(f"error: superset exposures: {exc}", file=sys.stderr)
        return 1
    shown = path.relative_to(settings.repo_root) if path.is_relative_to(settings.repo_root) else path
    if check and changed:
        print(f"{shown} is out of date: run `python -m stackctl superset exposures` and commit it", file=sys.stderr)
        return 1
    print(f"{shown} {'rewritten' if changed else 'is up to date'}")
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m stackctl superset") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True, title="actions", metavar="<action>")
    for action, text in ACTIONS.items():
        command = sub.add_parser(action, help=text, description=text)
        if action == "export":
            command.add_argument(
                "--prune", action="store_true", help="also delete files of assets no longer in Superset"
            )
        if action == "exposures":
            command.add_argument(
                "--check", action="store_true", help="write nothing; exit 1 when the committed file is out of date"
            )
    args = parser.parse_args(argv)
    if args.action == "exposures":
        # Needs no running Superset and no credentials: only the asset files and a dbt parse.
        return _exposures(check=args.check)

    from core.command import prepare_command

    prepare_command()  # run by hand: the generated credentials (the caller's environment wins)
    try:
        cluster.use_mode(None)  # STACK_MODE from .env; cluster mode fills its defaults
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
            apply_reports()
        elif args.action == "reports":
            apply_reports()
        elif args.action == "export":
            export_assets(prune=args.prune)
        elif args.action == "access":
            apply_access()
        else:
            running = is_running()
            print(f"superset {'running at ' + base_url() if running else 'not running'}")
            print(f"superset reports (worker, beat) {'running' if scheduler_running() else 'not running'}")
            return 0 if running else 3
    except (ProvisionError, procs.ServiceError) as exc:
        print(f"error: superset: {exc}", file=sys.stderr)
        return 1
    return 0

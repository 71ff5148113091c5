"""Cluster mode: the same stack on PostgreSQL metadata, Celery workers on Redis and a Redis cache.

`make up MODE=cluster` (`python -m stackctl up --mode cluster`, or `STACK_MODE=cluster`) runs the
very same DAGs, dbt project and data folders as embedded mode; only configuration differs, and all
of it is here, as environment variables with defaults that use the PostgreSQL and Redis servers
on 127.0.0.1 (the layout `docker-compose.yml` describes with containers):

| variable | default (cluster mode) | used for |
| --- | --- | --- |
| `AIRFLOW_METADATA_URL` | `postgresql+psycopg://postgres@127.0.0.1:5432/airflow_cluster` | Airflow metadata |
| `CELERY_BROKER_URL` | `redis://127.0.0.1:6379/0` | the Celery queue between scheduler and workers |
| `CELERY_RESULT_BACKEND` | `db+` + `AIRFLOW_METADATA_URL` | Celery task states |
| `CELERY_WORKERS` | `2` | `airflow celery worker` processes started |
| `CELERY_WORKER_CONCURRENCY` | `2` | task slots per worker |
| `SUPERSET_METADATA_URI` | `postgresql://postgres@127.0.0.1:5432/superset_cluster` | Superset metadata |
| `SUPERSET_CACHE_REDIS_URL` | `redis://127.0.0.1:6379/1` | Superset caches (shared by every web worker) |

The metadata URL uses psycopg 3, the driver the app DB source uses too (and the one Airflow's async
engine needs); a `postgresql+psycopg2://` URL still works. Airflow's own `AIRFLOW__...` variables
still win over these. Embedded mode (the default) reads none
of them and needs neither PostgreSQL nor Redis.

The DuckDB warehouse has one writer: every task that writes it runs in the one-slot Airflow pool
`duckdb_warehouse` (created by `airflow_service.init`), so adding workers parallelises extraction
and landing (per-partition lake writes) while warehouse writes stay serialised on purpose.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from stackctl import procs

MODES = ("embedded", "cluster")
WORKER_PREFIX = "airflow-worker-"

DEFAULTS = {
    "AIRFLOW_METADATA_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/airflow_cluster",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "CELERY_WORKERS": "2",
    "CELERY_WORKER_CONCURRENCY": "2",
    "SUPERSET_METADATA_URI": "postgresql://postgres@127.0.0.1:5432/superset_cluster",
    "SUPERSET_CACHE_REDIS_URL": "redis://127.0.0.1:6379/1",
}


class ClusterError(procs.ServiceError):
    """PostgreSQL or Redis is unreachable, or a metadata database cannot be created."""


def mode() -> str:
    """`embedded` (default) or `cluster`, from STACK_MODE."""
    value = os.environ.get("STACK_MODE", "embedded").strip().lower() or "embedded"
    if value not in MODES:
        raise ClusterError(f"STACK_MODE={value!r} is not one of {', '.join(MODES)}")
    return value


def is_cluster() -> bool:
    return mode() == "cluster"


def use_mode(name: str | None) -> str:
    """Select the mode for this process and its children (a --mode flag); fill cluster defaults."""
    if name:
        os.environ["STACK_MODE"] = name
    if is_cluster():
        for key, value in DEFAULTS.items():
            os.environ.setdefault(key, value)
    return mode()


@dataclass(frozen=True)
class ClusterConfig:
    airflow_metadata_url: str
    broker_url: str
    result_backend: str
    workers: int
    worker_concurrency: int
    superset_metadata_uri: str
    superset_cache_redis_url: str


def config() -> ClusterConfig:
    """The cluster's URLs and sizes, read from the environment now (defaults above)."""

    def get(name: str) -> str:
        return os.environ.get(name) or DEFAULTS[name]

    metadata = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or get("AIRFLOW_METADATA_URL")
    return ClusterConfig(
        airflow_metadata_url=metadata,
        broker_url=os.environ.get("AIRFLOW__CELERY__BROKER_URL") or get("CELERY_BROKER_URL"),
        result_backend=os.environ.get("AIRFLOW__CELERY__RESULT_BACKEND")
        or os.environ.get("CELERY_RESULT_BACKEND")
        or f"db+{metadata}",
        workers=int(get("CELERY_WORKERS")),
        worker_concurrency=int(get("CELERY_WORKER_CONCURRENCY")),
        superset_metadata_uri=get("SUPERSET_METADATA_URI"),
        superset_cache_redis_url=get("SUPERSET_CACHE_REDIS_URL"),
    )


def airflow_overrides(cfg: ClusterConfig) -> dict[str, str]:
    """What Airflow's processes and tasks get on top of the embedded environment."""
    return {
        "AIRFLOW__CORE__EXECUTOR": os.environ.get("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": cfg.airflow_metadata_url,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC")
        or async_url(cfg.airflow_metadata_url),
        "AIRFLOW__CELERY__BROKER_URL": cfg.broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": cfg.result_backend,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(cfg.worker_concurrency),
        # Up to every worker slot may be busy at once (the default 4 would cap bigger clusters).
        "AIRFLOW__CORE__PARALLELISM": os.environ.get(
            "AIRFLOW__CORE__PARALLELISM", str(max(4, cfg.workers * cfg.worker_concurrency))
        ),
        # Task instances record which worker ran them (`hostname` in the UI and REST API).
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "stackctl.cluster.worker_hostname",
        # publish clears Superset's result cache, which lives in Redis in this mode.
        "SUPERSET_CACHE_REDIS_URL": cfg.superset_cache_redis_url,
    }


def async_url(url: str) -> str:
    """Airflow's async metadata URL: psycopg 3 (installed) instead of its default, asyncpg (not)."""
    scheme, rest = url.split(":", 1)
    return f"postgresql+psycopg:{rest}" if scheme.split("+")[0] == "postgresql" else url


def worker_hostname() -> str:
    """Airflow's `hostname_callable`: `<worker name>@<host>` inside a worker, else the host."""
    fqdn = socket.getfqdn()
    name = os.environ.get("STACK_WORKER_NAME")
    return f"{name}@{fqdn}" if name else fqdn


# --- the servers this mode needs -----------------------------------------------------------------


def _sqlalchemy_url(url: str):
    from sqlalchemy.engine import make_url

    # Celery's result backend URL carries a `db+` prefix; the driver the URL names is used as is.
    return make_url(url.removeprefix("db+"))


def check_postgres(url: str, timeout: int = 3) -> None:
    """Raise ClusterError unless the PostgreSQL server of `url` answers."""
    from sqlalchemy import create_engine, text

    parsed = _sqlalchemy_url(url)
    engine = create_engine(parsed.set(database="postgres"), connect_args={"connect_timeout": timeout})
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # any driver error means the same to the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterError(
            f"PostgreSQL at {parsed.render_as_string(hide_password=True)} does not answer ({first}); "
            "start it or set AIRFLOW_METADATA_URL / SUPERSET_METADATA_URI"
        ) from None
    finally:
        engine.dispose()


def check_redis(url: str, timeout: float = 3.0) -> None:
    """Raise ClusterError unless the Redis server of `url` answers PING."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping()
    except redis.RedisError as exc:
        raise ClusterError(
            f"Redis at {url} does not answer ({exc}); start it or set CELERY_BROKER_URL / SUPERSET_CACHE_REDIS_URL"
        ) from None


def ensure_database(url: str) -> bool:
    """Create the PostgreSQL database named in `url` if it does not exist; True if created."""
    from sqlalchemy import create_engine, text

    parsed = _sqlalchemy_url(url)
    if parsed.get_backend_name() != "postgresql":
        return False
    engine = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(text("select 1 from pg_database where datname = :n"), {"n": parsed.database}).first()
            if exists:
                return False
            # A name cannot be a bind parameter; quote it as an identifier.
            conn.execute(text(f'create database "{parsed.database.replace(chr(34), chr(34) * 2)}"'))
            return True
    finally:
        engine.dispose()


def drop_database(url: str) -> None:
    """Drop the PostgreSQL database named in `url` (tests clean up their own databases)."""
    from sqlalchemy import create_engine, text

    parsed = _sqlalchemy_url(url)
    engine = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            name = parsed.database.replace('"', '""')
            conn.execute(text(f'drop database if exists "{name}" with (force)'))
    finally:
        engine.dispose()


def check_airflow_services(cfg: ClusterConfig) -> None:
    """Fail with one line naming what to start when Airflow's PostgreSQL or Redis is not there."""
    check_postgres(cfg.airflow_metadata_url)
    check_redis(cfg.broker_url)


def check_superset_services(cfg: ClusterConfig) -> None:
    """The same for Superset's metadata database and cache."""
    if _sqlalchemy_url(cfg.superset_metadata_uri).get_backend_name() == "postgresql":
        check_postgres(cfg.superset_metadata_uri)
    check_redis(cfg.superset_cache_redis_url)


# --- Celery workers ------------------------------------------------------------------------------


def start_workers(settings: Settings, env: dict[str, str], cfg: ClusterConfig) -> list[str]:
    """Start `cfg.workers` Celery workers (if not running); return their service names."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    names = []
    celery_pids = settings.run_dir / "celery"
    celery_pids.mkdir(parents=True, exist_ok=True)
    for n in range(1, cfg.workers + 1):
        name = f"{WORKER_PREFIX}{n}"
        names.append(name)
        if procs.is_running(name, settings.run_dir):
            continue
        command = [
            airflow,
            "celery",
            "worker",
            "--celery-hostname",
            f"worker-{n}@%h",
            "--concurrency",
            str(cfg.worker_concurrency),
            # Each worker writes its own pid file (the default path is shared by all workers).
            "--pid",
            str(celery_pids / f"{name}.pid"),
            # Logs are files on the shared folder the API server reads; a log server per worker
            # would bind 0.0.0.0:8793 (and clash between two workers on one machine).
            "--skip-serve-logs",
            "--without-gossip",
            "--without-mingle",
        ]
        procs.start(name, command, env={**env, "STACK_WORKER_NAME": f"worker-{n}"}, run_dir=settings.run_dir)
    return names


def worker_names(settings: Settings) -> list[str]:
    """Every worker service with a pid file (whatever CELERY_WORKERS was when they started)."""
    return sorted(p.name.removesuffix(".pid") for p in settings.run_dir.glob(f"{WORKER_PREFIX}*.pid"))


def stop_workers(settings: Settings) -> list[str]:
    return [name for name in worker_names(settings) if procs.stop(name, settings.run_dir, timeout=30)]

"""Opening the operational database, with errors a user can act on.

SQLite is the embedded default; any SQLAlchemy URL (e.g. postgresql+psycopg://...) works the same.
Outside Airflow the URL is APP_DB_URL; under Airflow it is the `app_db` Connection, whose fields
`connection_fields` builds from the URL and `url_from_connection` turns back into it (this module
stays Airflow-free: the DAG reads the Connection and hands over its fields as plain values).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError


class AppDbError(RuntimeError):
    """The operational database cannot be used; the message says what to do."""


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


# The Airflow Connection the DAGs read (AIRFLOW_CONN_APP_DB, made by stackctl from APP_DB_URL).
CONN_ID = "app_db"
# Airflow's connection types for SQLAlchemy's backend names where they differ.
_CONN_TYPES = {"postgresql": "postgres"}
_DEFAULT_DRIVERS = {"postgres": "postgresql+psycopg"}
# The extra field that keeps the SQLAlchemy dialect+driver, which Airflow's fields do not hold.
SCHEME_EXTRA = "sqlalchemy_scheme"


def connection_fields(url: str) -> dict:
    """The Airflow Connection (its JSON form: conn_type, host, ...) that holds the app DB at `url`.

    SQLite is conn type `sqlite` with the file's path as host, as Airflow's SQLite connection has
    it; a server keeps host, port, login, password and the database as schema, its driver
    (`postgresql+psycopg`) and URL query (`sslmode`) in extra, so `url_from_connection` gives `url` back.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    extra = {key: value for key, value in parsed.query.items() if isinstance(value, str)}
    if backend == "sqlite":
        fields: dict = {"conn_type": "sqlite", "host": parsed.database or ""}
    else:
        fields = {
            "conn_type": _CONN_TYPES.get(backend, backend),
            "host": parsed.host,
            "port": parsed.port,
            "login": parsed.username,
            "password": parsed.password,
            "schema": parsed.database,
        }
        extra[SCHEME_EXTRA] = parsed.drivername
    if extra:
        fields["extra"] = extra
    return {key: value for key, value in fields.items() if value not in (None, "")}


def url_from_connection(fields: Mapping) -> str:
    """The SQLAlchemy URL of an app-DB Connection's fields (conn_type, host, port, login, password,
    schema, extra as a dict), e.g. one made by `connection_fields` or typed into Airflow's UI."""
    conn_type = (fields.get("conn_type") or "").lower()
    extra = {str(k): str(v) for k, v in (fields.get("extra") or {}).items()}
    if conn_type == "sqlite":
        path = fields.get("host") or fields.get("schema")
        if not path:
            raise AppDbError("the app_db connection (sqlite) has no host: set it to the SQLite file's path")
        return URL.create("sqlite", database=path, query=extra).render_as_string(hide_password=False)
    if not conn_type or not fields.get("host"):
        raise AppDbError(f"the app_db connection needs a conn type and a host (conn type {conn_type or 'missing'})")
    drivername = extra.pop(SCHEME_EXTRA, None) or _DEFAULT_DRIVERS.get(conn_type, conn_type)
    return URL.create(
        drivername,
        username=fields.get("login") or None,
        password=fields.get("password") or None,
        host=fields.get("host"),
        port=int(fields["port"]) if fields.get("port") else None,
        database=fields.get("schema") or None,
        query=extra,
    ).render_as_string(hide_password=False)


def connect(url: str, *, create: bool = False) -> Engine:
    """An engine for `url`, checked to answer. `create` allows a new SQLite file."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        path = Path(parsed.database)
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            raise AppDbError(
                f"the app database {path} does not exist; generate it with `make simulate` "
                "(or point APP_DB_URL, or the app_db Airflow connection, at your operational database)"
            )
    engine = create_engine(url, future=True, pool_pre_ping=True)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise AppDbError(
            f"cannot reach the app database at {redact(url)}: {reason}. "
            "Check APP_DB_URL (the app_db connection under Airflow) and that the server is running."
        ) from None
    return engine


def require_tables(engine: Engine, tables: list[str]) -> None:
    """Fail with a clear message when the source is empty or lacks a table we extract."""
    present = set(inspect(engine).get_table_names())
    missing = [t for t in tables if t not in present]
    if missing:
        raise AppDbError(
            f"the app database {redact(str(engine.url))} has no table(s) {', '.join(missing)}; "
            "is it empty? Generate demo data with `make simulate`."
        )

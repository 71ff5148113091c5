"""Opening the operational database, with errors a user can act on.

SQLite is the embedded default; any SQLAlchemy URL (e.g. postgresql+psycopg://...) works the same.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError


class AppDbError(RuntimeError):
    """The operational database cannot be used; the message says what to do."""


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


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
                "(or set APP_DB_URL to your operational database)"
            )
    engine = create_engine(url, future=True, pool_pre_ping=True)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise AppDbError(
            f"cannot reach the app database at {redact(url)}: {reason}. "
            "Check APP_DB_URL and that the server is running."
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

"""Run an extract query on an Arrow-native driver (ADBC) and return the contract's Arrow batches.

Why ADBC: the driver writes rows straight into Arrow columns in C, so no Python object is made
per value; building the same batch from SQLAlchemy rows (`pa.array` over tuples) costs three to
four times as much per row on a day of a large shop (`make bench` measures both). A query costs
about a millisecond more to start, which only shows on days of a few hundred rows. SQLAlchemy
still builds the queries (extract.py) and the contract still fixes the landed types: this module
only runs a compiled query and casts what the driver returns.

- SQLite: the query runs with bound parameters, converted by SQLAlchemy's own bind processors
  (a timestamp is compared as the text SQLAlchemy stores). SQLite has no column types, so the
  driver reads text for timestamps and dates and integers for booleans; `to_contract` parses them
  to the values SQLAlchemy's result processors give.
- PostgreSQL: the driver streams the result through `COPY (query) TO STDOUT (FORMAT binary)`,
  typed on the server. COPY takes no parameters (given parameters, the driver runs a prepared
  statement instead, outside COPY), so the query is rendered with its values inline;
  `inline_values` allows only integers, dates and timestamps there, the only values extract.py
  binds, so no text ever reaches the SQL.

Batches are bounded (`batch_rows` rows; PostgreSQL's COPY batches by bytes, re-sliced here), so
memory stays flat whatever the day's size.
"""

from __future__ import annotations

import datetime as dt
import threading
import urllib.parse
import weakref
from collections.abc import Callable, Iterator

import adbc_driver_manager
import adbc_driver_manager.dbapi
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine, Select
from sqlalchemy.engine import URL

# the driver infers a SQLite column's type from the first batch (see `_resume_on_type_mismatch`)
SQLITE_TYPE_MISMATCH = "Type mismatch in column"


def supports(url: URL) -> bool:
    """Whether `url`'s database has an Arrow-native driver here (else the SQLAlchemy path is used)."""
    backend = url.get_backend_name()
    # an in-memory SQLite database lives in the engine's own connection: ADBC cannot see it
    return backend == "postgresql" or (backend == "sqlite" and url.database not in (None, "", ":memory:"))


Batches = Iterator[pa.RecordBatch]


def fetch(
    engine: Engine,
    queries: list[Select],
    schema: pa.Schema,
    key: str,
    batch_rows: int,
    fallback: Callable[[Select], Batches],
) -> Batches:
    """Each query's rows in order, as non-empty batches of at most `batch_rows` rows in `schema`.

    Every query is ordered by the unique column `key`; `fallback` reads a query the plain way
    (SQLAlchemy), for the rest of one the SQLite driver cannot type (`_resume_on_type_mismatch`).
    """
    if engine.url.get_backend_name() == "sqlite":
        yield from _sqlite(engine, queries, schema, key, batch_rows, fallback)
    else:
        yield from _postgres(engine, queries, schema, batch_rows)


def _sqlite(engine: Engine, queries, schema, key: str, batch_rows: int, fallback) -> Batches:
    import adbc_driver_sqlite.dbapi

    # read-only: the extract never writes; quoted, so a path with '?' or '#' stays a path
    uri = f"file:{urllib.parse.quote(str(engine.url.database))}?mode=ro"
    # autocommit: each query its own read transaction, as with SQLAlchemy (no lock held between them)
    with adbc_driver_sqlite.dbapi.connect(uri, autocommit=True) as con, con.cursor() as cur:
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
        for query in queries:
            compiled = query.compile(dialect=engine.dialect)
            params = [_bind_value(compiled, name, engine) for name in compiled.positiontup or []]
            cur.execute(compiled.string, params)
            yield from _resume_on_type_mismatch(query, cur.fetch_record_batch(), schema, key, fallback)


def _resume_on_type_mismatch(
    query: Select, reader: pa.RecordBatchReader, schema: pa.Schema, key: str, fallback: Callable[[Select], Batches]
) -> Batches:
    """The reader's batches; if the driver fails on a type it guessed wrong, the rest through SQLAlchemy.

    SQLite's driver types a column from its first batch: a text column NULL throughout that batch
    is taken for integers, and its first text value in a later batch is an error. Queries are
    ordered by a unique key, so the rest of the query is the rows above the last key yielded.
    """
    last = None
    try:
        for batch in reader:
            if batch.num_rows:
                out = to_contract(batch, schema)
                last = out.column(key)[-1].as_py()
                yield out
    except (adbc_driver_manager.Error, OSError) as exc:  # raised through Arrow's reader: an OSError
        if SQLITE_TYPE_MISMATCH not in str(exc):
            raise
        yield from fallback(query if last is None else query.where(query.selected_columns[key] > last))


def _bind_value(compiled, name: str, engine: Engine):
    """A bound value as SQLAlchemy would send it (e.g. a timestamp as SQLite's stored text)."""
    bind = compiled.binds[name]
    processor = bind.type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
    value = compiled.params[name]
    return processor(value) if processor else value


# Opening an ADBC PostgreSQL database loads the server's type catalogue (~40 ms, per table and
# day); connections cloned from one kept per engine cost a libpq connect, like SQLAlchemy's pool.
_PG_ANCHORS: weakref.WeakKeyDictionary[Engine, adbc_driver_manager.dbapi.Connection] = weakref.WeakKeyDictionary()
# tables are landed from several threads (ingestion.app_db.batch.land_day): one anchor per engine, cloned one at a time
_PG_ANCHORS_LOCK = threading.Lock()


def _pg_connection(engine: Engine) -> adbc_driver_manager.dbapi.Connection:
    import adbc_driver_postgresql.dbapi

    with _PG_ANCHORS_LOCK:
        anchor = _PG_ANCHORS.get(engine)
        if anchor is None:
            # libpq takes the same URL without SQLAlchemy's driver suffix (postgresql+psycopg://)
            uri = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            # autocommit: the idle anchor never sits in an open transaction; closed with its engine
            anchor = _PG_ANCHORS[engine] = adbc_driver_postgresql.dbapi.connect(uri, autocommit=True)
            weakref.finalize(engine, anchor.close)
        return anchor.adbc_clone()  # in a transaction of its own, like SQLAlchemy's connection


def _postgres(engine: Engine, queries: list[Select], schema: pa.Schema, batch_rows: int) -> Batches:
    with _pg_connection(engine) as con, con.cursor() as cur:
        for query in queries:
            cur.execute(inline_values(query, engine))
            for batch in cur.fetch_record_batch():
                for offset in range(0, batch.num_rows, batch_rows):
                    yield to_contract(batch.slice(offset, batch_rows), schema)


def inline_values(query: Select, engine: Engine) -> str:
    """The query's SQL with its values inline (COPY takes no parameters): integers and times only."""
    for name, value in query.compile(dialect=engine.dialect).params.items():
        if not isinstance(value, int | dt.date) or isinstance(value, bool):
            raise TypeError(f"{name}={value!r}: only integers, dates and timestamps are inlined into COPY")
    return str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))


def to_contract(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` with the contract's names and types (and no driver metadata)."""
    return pa.RecordBatch.from_arrays(
        [_cast(column, field.type) for column, field in zip(batch.columns, schema, strict=True)], schema=schema
    )


def _cast(column: pa.Array, target: pa.DataType) -> pa.Array:
    if column.type == target:
        return column
    if column.null_count == len(column):
        return pa.nulls(len(column), target)  # SQLite's driver types a column of NULLs as integers
    if pa.types.is_boolean(target) and pa.types.is_integer(column.type):
        return pc.not_equal(column, 0)  # SQLite's 0/1
    if pa.types.is_temporal(target) and not (pa.types.is_string(column.type) or pa.types.is_temporal(column.type)):
        # Arrow would read an integer as a count of days or microseconds; SQLAlchemy refuses it too
        raise TypeError(f"a {column.type} column cannot be read as {target}")
    # SQLite's text timestamps 'YYYY-MM-DD HH:MM:SS[.ffffff]' and dates parse as ISO 8601 (naive
    # UTC, as SQLAlchemy reads them); integers that must fit a narrower type are checked (safe cast):
    # a value that does not fit the contract fails, as `pa.array(..., type=...)` does
    return column.cast(target)

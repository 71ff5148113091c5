"""Bulk writes of the simulator's columnar day batches into the app DB, fast on both backends.

A simulated day is built as Arrow columns (see `generate.py`); this module turns them into what
each driver ingests fastest inside the day's transaction: on SQLite, one `executemany` of plain
tuples in the exact text formats SQLAlchemy itself stores (so the extractor's typed reads and
range filters see the same values); on PostgreSQL, `COPY ... FROM STDIN` fed with CSV written by
Arrow. Row-by-row ORM-style inserts cost ~10 us a row in Python, too slow for tens of millions of
events; these paths cost about what the database itself needs.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Table

# SQLAlchemy's SQLite DateTime storage format is 'YYYY-MM-DD HH:MM:SS.ffffff' (always six digits,
# so text comparisons like `ordered_at >= '2026-03-02 00:00:00.000000'` order as the timestamps do).
# Arrow's cast of a microsecond timestamp to string prints exactly that, 20x faster than strftime.
_SQLITE_TIMESTAMP = pa.timestamp("us")


def _is_sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def _placeholder(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _python_column(conn: Connection, column: pa.Array | pa.ChunkedArray) -> list:
    """One column as Python values the driver accepts for it (SQLite: its stored text forms)."""
    if _is_sqlite(conn):
        if pa.types.is_timestamp(column.type):
            return column.cast(_SQLITE_TIMESTAMP).cast(pa.string()).to_pylist()
        if pa.types.is_date(column.type):
            return column.cast(pa.string()).to_pylist()
        if pa.types.is_boolean(column.type):
            return column.cast(pa.int8()).to_pylist()
    return column.to_pylist()


def rows(conn: Connection, columns: Sequence[pa.Array | pa.ChunkedArray]) -> list[tuple]:
    """Parameter tuples for `execute_many`, one per row of the given columns."""
    return list(zip(*(_python_column(conn, c) for c in columns), strict=True))


def execute_many(conn: Connection, sql: str, columns: Sequence[pa.Array | pa.ChunkedArray]) -> int:
    """Run `sql` once per row; write `:p` for each parameter (becomes the driver's placeholder)."""
    params = rows(conn, columns)
    if params:
        conn.exec_driver_sql(sql.replace(":p", _placeholder(conn)), params)
    return len(params)


def insert(conn: Connection, table: Table, data: Mapping[str, pa.Array] | pa.Table) -> int:
    """Insert the columns of `data` (named like the table's columns) in the open transaction."""
    batch = data if isinstance(data, pa.Table) else pa.table(dict(data))
    if batch.num_rows == 0:
        return 0
    names = batch.column_names
    unknown = set(names) - set(table.c.keys())
    if unknown:
        raise ValueError(f"{table.name}: no column(s) {sorted(unknown)}")
    column_list = ", ".join(names)
    if _is_sqlite(conn):
        marks = ", ".join("?" for _ in names)
        conn.exec_driver_sql(f"insert into {table.name} ({column_list}) values ({marks})", rows(conn, batch.columns))
    else:
        # CSV mode: Arrow quotes every string, so "" is an empty string and an empty field is NULL.
        buffer = io.BytesIO()
        pacsv.write_csv(batch, buffer, pacsv.WriteOptions(include_header=False))
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(f"copy {table.name} ({column_list}) from stdin with (format csv)") as copy:
            copy.write(buffer.getvalue())
    return batch.num_rows

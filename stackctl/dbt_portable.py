"""Put the raw layer where the dbt project's `postgres` target reads it: copy the `raw.*` tables of
a DuckDB warehouse into a PostgreSQL schema `raw`, so `source('shop', 'orders')` and the others
resolve on PostgreSQL exactly as on DuckDB (same schema, table and column names, equivalent types).

In the embedded stack the loaders write `raw` into DuckDB; a team that runs the models on PostgreSQL
would point its loaders there instead. This copy is the bridge for trying the portable project on an
existing warehouse and what tests/dbt/test_portable_postgres.py uses. DuckDB's postgres extension
cannot be installed offline (its PyPI packages stop at older DuckDB releases), so each table goes
through a CSV file: DuckDB's COPY TO, then PostgreSQL's COPY FROM STDIN (psycopg), both streaming,
no row-by-row inserts.

    python -m stackctl dbt-portable copy-raw   # WAREHOUSE_PATH -> the DBT_PG_* database
    (python -m stackctl.dbt_portable copy-raw is the same command)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

import duckdb
import psycopg
from psycopg import sql

# DuckDB column type -> PostgreSQL column type; DECIMAL(p,s) is handled separately. Anything else
# (LIST, STRUCT, MAP, ...) has no faithful CSV round trip and fails loudly.
PG_TYPES = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "UTINYINT": "integer",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric(20, 0)",
    "HUGEINT": "numeric(38, 0)",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "VARCHAR": "text",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "UUID": "uuid",
}
DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def pg_conninfo(dbname: str | None = None) -> str:
    """libpq connection string from the same DBT_PG_* variables the dbt profile's `postgres` target reads."""
    return psycopg.conninfo.make_conninfo(
        host=os.environ.get("DBT_PG_HOST", "127.0.0.1"),
        port=os.environ.get("DBT_PG_PORT", "5432"),
        user=os.environ.get("DBT_PG_USER", "postgres"),
        password=os.environ.get("DBT_PG_PASSWORD", "") or None,
        dbname=dbname or os.environ.get("DBT_PG_DBNAME", "shop_analytics"),
    )


def pg_type(duckdb_type: str) -> str:
    match = DECIMAL.fullmatch(duckdb_type)
    if match:
        return f"numeric({match[1]}, {match[2]})"
    if duckdb_type not in PG_TYPES:
        raise ValueError(f"no PostgreSQL type for DuckDB type {duckdb_type!r}")
    return PG_TYPES[duckdb_type]


def copy_raw_to_postgres(warehouse_path: Path, conninfo: str, schema: str = "raw") -> dict[str, int]:
    """Replace PostgreSQL schema `schema` with a copy of the warehouse's `raw` tables, in one
    transaction (readers see the old copy or the new one). Returns the rows copied per table."""
    copied: dict[str, int] = {}
    with (
        tempfile.TemporaryDirectory(prefix="raw-to-pg-") as tmp,
        duckdb.connect(str(warehouse_path), read_only=True) as duck,
        psycopg.connect(conninfo) as pg,
    ):
        duck.execute("set TimeZone = 'UTC'")  # timestamptz values are written with a +00 offset
        columns: dict[str, list[tuple[str, str]]] = {}
        for table, column, data_type in duck.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' order by table_name, ordinal_position"
        ).fetchall():
            columns.setdefault(table, []).append((column, data_type))
        with pg.cursor() as cur:
            cur.execute("set time zone 'UTC'")
            cur.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
            cur.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
            for table, table_columns in columns.items():
                target = sql.Identifier(schema, table)
                cur.execute(
                    sql.SQL("create table {} ({})").format(
                        target,
                        sql.SQL(", ").join(
                            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pg_type(data_type)))
                            for name, data_type in table_columns
                        ),
                    )
                )
                csv_path = Path(tmp) / f"{table}.csv"
                # DuckDB writes NULL as an empty field and an empty string as "": PostgreSQL's CSV
                # format reads them back the same way.
                duck.execute(f"copy (select * from raw.\"{table}\") to '{csv_path}' (format csv, header true)")
                with cur.copy(sql.SQL("copy {} from stdin (format csv, header true)").format(target)) as copy:
                    with csv_path.open("rb") as handle:
                        while chunk := handle.read(1 << 20):
                            copy.write(chunk)
                copied[table] = cur.rowcount
                csv_path.unlink()
            for table in columns:
                cur.execute(sql.SQL("analyze {}").format(sql.Identifier(schema, table)))
    return copied


def main(argv: list[str] | None = None, prog: str = "python -m stackctl.dbt_portable") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    text = "replace the DBT_PG_* database's schema raw with the warehouse's raw tables"
    copy_raw = sub.add_parser("copy-raw", help=text, description=text)
    copy_raw.add_argument("--warehouse", type=Path, help="DuckDB warehouse (default: the stack's WAREHOUSE_PATH)")
    args = parser.parse_args(argv)
    from core.command import prepare_command

    prepare_command()
    if args.warehouse is None:
        from core.settings import get_settings

        args.warehouse = get_settings().warehouse_path
    if not args.warehouse.is_file():
        print(
            f"error: no DuckDB warehouse at {args.warehouse}: run the pipeline first (`make pipeline`)", file=sys.stderr
        )
        return 2
    try:
        copied = copy_raw_to_postgres(args.warehouse, pg_conninfo())
    except psycopg.OperationalError as exc:
        # Unreachable server, bad password, no such database: libpq's first line says which.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: PostgreSQL (DBT_PG_* settings): {reason}", file=sys.stderr)
        return 2
    except duckdb.IOException as exc:
        print(f"error: the warehouse {args.warehouse} cannot be read now: {exc}", file=sys.stderr)
        return 2
    for table, rows in copied.items():
        print(f"raw.{table}: {rows} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Spark mode's hand-over to the rest of the stack: the marts Spark built, copied into DuckDB.

With `MARTS_ENGINE=spark` the dbt project builds on the Spark cluster (target `spark`), and its
marts are Parquet tables in Spark's warehouse folder. Gate 2, publish and Superset stay as in
the embedded mode: this step copies every mart the dashboards are served (the manifest's marts
without `meta.publish: false`) from Spark's files into the DuckDB warehouse's `marts` schema, in
one transaction, so gate 2 audits exactly what publish will then serve.

Nothing is sent through the Thrift server but the metastore's answer to "where is this table":
the rows are read by DuckDB from the table's own Parquet files, which must lie inside Spark's
warehouse folder (a table pointing elsewhere is refused, not read).
"""

from __future__ import annotations

import logging
from contextlib import closing
from pathlib import Path
from typing import Any

from core.duckdb_connect import connect_file
from core.settings import Settings
from ingestion.spark_tables import connect, identifier, literal
from serving.publish import published_marts

log = logging.getLogger(__name__)

MARTS_DATABASE = "marts"


class SparkMartsError(RuntimeError):
    """The marts on Spark cannot be handed over (missing, misplaced or unreadable)."""


def _stored_at(cursor: Any, table: str) -> str | None:
    """Where a managed Parquet table of Spark's marts is stored (`file:/...`); None when Spark has no such table."""
    cursor.execute(f"show tables in {identifier(MARTS_DATABASE)} like {literal(table)}")
    if not cursor.fetchall():
        return None
    cursor.execute(f"describe formatted {identifier(MARTS_DATABASE)}.{identifier(table)}")
    details = {(row[0] or "").strip(): (row[1] or "").strip() for row in cursor.fetchall()}
    kind, provider = details.get("Type", "?"), details.get("Provider", "?")
    if kind != "MANAGED" or provider.lower() != "parquet" or not details.get("Location"):
        raise SparkMartsError(
            f"{MARTS_DATABASE}.{table} on Spark is a {kind} {provider} table: expected the managed Parquet "
            "table dbt builds (was it replaced by hand?)"
        )
    return details["Location"]


def local_folder(location: str) -> Path:
    return Path(location.removeprefix("file://").removeprefix("file:")).resolve()


def table_folder(location: str, spark_warehouse: Path) -> Path:
    """The local folder of a Spark table location, refused unless it is inside Spark's warehouse folder."""
    path = local_folder(location)
    if not path.is_relative_to(spark_warehouse) or not path.is_dir():
        raise SparkMartsError(f"refusing to read a mart stored at {location!r}: not a folder inside {spark_warehouse}")
    return path


def mart_folders(tables: list[str]) -> dict[str, Path]:
    """Where each of `tables` is stored on the Spark cluster; fails naming every table Spark lacks."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    with closing(connect()) as conn, closing(conn.cursor()) as cursor:
        cursor.execute("set spark.sql.warehouse.dir")
        spark_warehouse = local_folder(cursor.fetchall()[0][1])
        for table in tables:
            location = _stored_at(cursor, table)
            if location is None:
                missing.append(table)
            else:
                found[table] = table_folder(location, spark_warehouse)
    if missing:
        raise SparkMartsError(
            f"Spark has no {', '.join(f'{MARTS_DATABASE}.{t}' for t in missing)}: "
            "the dbt build on Spark did not make them (run `make dbt-build DBT_TARGET=spark`)"
        )
    return found


def _select_list(con: Any, files: str) -> str:
    """Every column of the Parquet files, timestamps as the UTC wall-clock TIMESTAMP the DuckDB build has."""
    columns = con.execute("select column_name, column_type from (describe select * from read_parquet(?))", [files])
    parts = []
    for name, kind in columns.fetchall():
        quoted = '"' + name.replace('"', '""') + '"'
        # Spark's Parquet timestamps read as instants (or nanoseconds, from INT96): as DuckDB's build has them
        is_timestamp = kind in {"TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS"}
        parts.append(f"cast({quoted} as timestamp) as {quoted}" if is_timestamp else quoted)
    return ", ".join(parts)


def _copy_table(con: Any, table: str, folder: Path) -> int:
    if not list(folder.glob("*.parquet")):
        raise SparkMartsError(f"{MARTS_DATABASE}.{table} on Spark has no Parquet file in {folder}")
    files = str(folder / "*.parquet")
    target = f'marts."{table}"'
    con.execute(f"create or replace table {target} as select {_select_list(con, files)} from read_parquet(?)", [files])
    return con.execute(f"select count(*) from {target}").fetchone()[0]


def copy_spark_marts(settings: Settings, manifest_path: Path) -> dict[str, int]:
    """Replace the DuckDB warehouse's published marts with Spark's; return rows per table."""
    tables = published_marts(manifest_path)
    folders = mart_folders(tables)
    copied: dict[str, int] = {}
    con = connect_file(settings, wait_seconds=60)
    try:
        con.execute("set TimeZone = 'UTC'")  # Spark's session time zone: its instants as UTC wall clock
        con.execute("begin")
        try:
            con.execute("create schema if not exists marts")
            for table, folder in folders.items():
                copied[f"marts.{table}"] = _copy_table(con, table, folder)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        con.close()
    log.info("copied %d marts from Spark: %s", len(copied), copied)
    return copied

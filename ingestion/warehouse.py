"""The warehouse loader: landed lake partitions into DuckDB schema `raw`, idempotently.

Each load replaces whole days: in one transaction it deletes the table's rows for the days
being loaded and inserts those days' Parquet files, tagging rows with `_ds`, `_run_id` and
`_loaded_at`. A crash mid-load rolls back to the previous state; loading a day twice leaves
exactly one copy.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from core.duckdb_connect import connect_file
from ingestion import run_ledger
from ingestion.lake import PartitionManifest, partition_file, read_manifest

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadResult:
    table: str
    days: int
    rows: int


def load_batch(
    con: duckdb.DuckDBPyConnection,
    raw_dir: Path,
    manifests_by_table: dict[str, Sequence[PartitionManifest]],
    run_id: str,
) -> list[LoadResult]:
    """Replace the given days of every table in one transaction: all tables move together."""
    con.execute("begin transaction")
    try:
        con.execute("create schema if not exists raw")
        results = [
            _replace_days(con, raw_dir, table, manifests, run_id)
            for table, manifests in manifests_by_table.items()
            if manifests
        ]
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return results


def load_source_days(
    settings: Settings, source: str, tables: Iterable[str], days: Iterable[dt.date], run_id: str
) -> list[LoadResult]:
    """Load the landed partitions of `source`'s `tables` for `days` into schema `raw`, in one transaction.

    Every source's `load_days` (the shop's app DB, the marketing API) is this call with its own
    source name and tables.
    """
    names = list(tables)
    day_list = list(days)
    manifests: dict[str, list[PartitionManifest]] = {
        name: [read_manifest(settings.lake_raw_dir, source, name, ds) for ds in day_list] for name in names
    }
    began = time.monotonic()
    con = connect_file(settings)
    try:
        results = load_batch(con, settings.lake_raw_dir, manifests, run_id)
    finally:
        con.close()
    for result in results:
        log.info("loaded raw.%s days=%d rows=%d", result.table, result.days, result.rows)
    log.info("load of %d day(s) took %.2fs", len(day_list), time.monotonic() - began)
    from ingestion.spark_tables import register_if_spark_mode

    register_if_spark_mode(settings, manifests, run_id)
    return results


def _replace_days(
    con: duckdb.DuckDBPyConnection,
    raw_dir: Path,
    table: str,
    manifests: Sequence[PartitionManifest],
    run_id: str,
) -> LoadResult:
    began = time.monotonic()
    files = [str(partition_file(raw_dir, m)) for m in manifests]
    days = sorted({m.ds for m in manifests})
    target = f'raw."{table}"'
    loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    # The first load creates the table from the files' own schema (no rows copied).
    con.execute(
        f"create table if not exists {target} as "
        "select *, null::date as _ds, null::varchar as _run_id, null::timestamp as _loaded_at "
        "from read_parquet(?, hive_partitioning = false) limit 0",
        [files],
    )
    con.execute(f"delete from {target} where _ds in (select unnest(?::date[]))", [days])
    con.execute(
        f"insert into {target} by name "
        "select * exclude (filename), "
        "regexp_extract(filename, 'ds=(\\d{4}-\\d{2}-\\d{2})', 1)::date as _ds, "
        "? as _run_id, ? as _loaded_at "
        "from read_parquet(?, hive_partitioning = false, filename = true)",
        [run_id, loaded_at, files],
    )
    per_day = dict(
        con.execute(
            f"select _ds::varchar, count(*) from {target} where _ds in (select unnest(?::date[])) group by 1", [days]
        ).fetchall()
    )
    rows = sum(per_day.values())
    expected = sum(m.row_count for m in manifests)
    if rows != expected:
        raise RuntimeError(f"raw.{table}: loaded {rows} rows for {len(days)} day(s), manifests say {expected}")
    run_ledger.record(con, run_id, manifests, per_day, time.monotonic() - began)
    return LoadResult(table, len(days), rows)

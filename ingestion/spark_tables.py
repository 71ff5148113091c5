"""Spark mode's raw layer: the lake's audited partitions as Spark tables, read in place.

The warehouse loader (`ingestion.warehouse`) copies each audited day into DuckDB's `raw`; on the
Spark cluster nothing is copied. For every raw table this keeps, in the Thrift server's metastore:

- `raw_lake.<table>`: an external Parquet table over `lake/raw/<source>/<folder>/` (its `ds=`
  folders are discovered when the table is read, so a re-landed day is the new file, not two);
- `raw_lake.loaded_partitions`: which file of which day was registered, by which run and when,
  appended by `register_partitions` after a day passed gate 1 (the DuckDB load's manifests);
- `raw.<table>`: a view with the columns dbt's sources read, `_ds`, `_run_id` and `_loaded_at`
  as in DuckDB, holding only the registered file of each day (its name, size and modification
  time): a day landed but not yet audited, or re-landed and not audited again (even under the
  same run id), is not visible (write-audit-publish, as in DuckDB).

`_loaded_at` is the registration time, so the incremental models' "loaded after this model's
last run" filter picks up each registered day exactly once.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from ingestion.lake import PartitionManifest, partition_dir, partition_file

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)

LAKE_DATABASE, RAW_DATABASE, REGISTRY = "raw_lake", "raw", "loaded_partitions"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def identifier(name: str) -> str:
    """A table or column name from the lake, quoted for Spark SQL; anything unusual is refused."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"refusing {name!r} as a Spark identifier (lower-case letters, digits, _)")
    return f"`{name}`"


def literal(text: str) -> str:
    """A Spark SQL string literal (backslash escapes, as Spark parses them)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def connect(host: str | None = None, port: int | None = None) -> Any:
    """A DB-API connection to the Thrift server (`SPARK_THRIFT_HOST`/`SPARK_THRIFT_PORT`)."""
    from pyhive import hive

    return hive.connect(
        host=host or os.environ.get("SPARK_THRIFT_HOST", "127.0.0.1"),
        port=int(port or os.environ.get("SPARK_THRIFT_PORT", "10000")),
        username=os.environ.get("SPARK_THRIFT_USER", "stack"),
    )


def _execute(cursor: Any, sql: str) -> list[tuple]:
    cursor.execute(sql)
    return cursor.fetchall() if cursor.description else []


def _spark_type(field) -> str:
    """The Spark SQL type Spark reads a landed Parquet column as."""
    import pyarrow as pa

    kind = field.type
    if pa.types.is_integer(kind):
        return "bigint" if kind.bit_width > 32 else "int"
    if pa.types.is_floating(kind):
        return "double" if kind.bit_width == 64 else "float"
    if pa.types.is_decimal(kind):
        return f"decimal({kind.precision},{kind.scale})"
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "string"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_timestamp(kind):
        return "timestamp_ntz" if kind.tz is None else "timestamp"
    raise ValueError(f"no Spark type for the landed column {field.name}: {kind}")


def _ensure_registry(cursor: Any) -> None:
    _execute(cursor, f"create database if not exists {LAKE_DATABASE}")
    _execute(cursor, f"create database if not exists {RAW_DATABASE}")
    _execute(
        cursor,
        f"create table if not exists {LAKE_DATABASE}.{REGISTRY} "
        "(table_name string, source string, ds date, file string, file_bytes bigint, file_modified_ms bigint, "
        "run_id string, row_count bigint, loaded_at timestamp_ntz) using parquet",
    )


def _ensure_table(cursor: Any, lake_raw_dir: Path, table: str, newest: PartitionManifest) -> None:
    """The external table and the raw view, (re)created when the landed schema is not theirs."""
    schema = pq.read_schema(partition_file(lake_raw_dir, newest))
    columns = [(field.name, _spark_type(field)) for field in schema]
    lake_table = f"{LAKE_DATABASE}.{identifier(table)}"
    folder = partition_dir(lake_raw_dir, newest.source, newest.table, newest.ds).parent
    existing, location = {}, None
    if _execute(cursor, f"show tables in {LAKE_DATABASE} like {literal(table)}"):
        described = _execute(cursor, f"describe table extended {lake_table}")
        columns_part = described[: next((i for i, row in enumerate(described) if not row[0]), len(described))]
        existing = {name: kind for name, kind, *_ in columns_part if not name.startswith("#")}
        location = next((value for name, value, *_ in described if name == "Location"), None)
    wanted = {name: kind for name, kind in columns} | {"ds": "date"}
    if existing != wanted or (location or "").removeprefix("file:") != str(folder):
        if existing:
            log.info("raw_lake.%s: landed schema or lake folder changed, re-registering the table", table)
            _execute(cursor, f"drop table {lake_table}")  # external: the lake's files stay
        spec = ", ".join(f"{identifier(name)} {kind}" for name, kind in columns)
        _execute(
            cursor,
            f"create table {lake_table} ({spec}, ds date) using parquet partitioned by (ds) "
            f"location {literal(str(folder))}",
        )
    select = ", ".join(f"data.{identifier(name)}" for name, _ in columns)
    _execute(
        cursor,
        f"""create or replace view {RAW_DATABASE}.{identifier(table)} as
        select {select}, data.ds as _ds, loaded.run_id as _run_id, loaded.loaded_at as _loaded_at
        from {lake_table} as data
        join (
            select ds, file, file_bytes, file_modified_ms, run_id, loaded_at,
                row_number() over (partition by ds order by loaded_at desc) as newest
            from {LAKE_DATABASE}.{REGISTRY}
            where table_name = {literal(table)}
        ) as loaded
            on data.ds = loaded.ds and loaded.newest = 1
            and data._metadata.file_name = loaded.file
            and data._metadata.file_size = loaded.file_bytes
            and unix_millis(data._metadata.file_modification_time) = loaded.file_modified_ms""",
    )


def _file_identity(lake_raw_dir: Path, manifest: PartitionManifest) -> list[str]:
    """Size and modification time (ms, as Spark lists it) of the landed file being registered."""
    stat = partition_file(lake_raw_dir, manifest).stat()
    if stat.st_size != manifest.bytes:
        raise RuntimeError(
            f"{partition_file(lake_raw_dir, manifest)}: {stat.st_size} bytes, its manifest says {manifest.bytes}; "
            "the lake changed under the run: re-land and audit the day again"
        )
    return [str(stat.st_size), str(stat.st_mtime_ns // 1_000_000)]


def _check_counts(cursor: Any, table: str, manifests: Sequence[PartitionManifest]) -> None:
    """The view shows each registered day with the rows its manifest promised (else: loud)."""
    days = ", ".join(f"date {literal(str(m.ds))}" for m in manifests)
    counted = {
        str(ds): rows
        for ds, rows in _execute(
            cursor, f"select _ds, count(*) from {RAW_DATABASE}.{identifier(table)} where _ds in ({days}) group by _ds"
        )
    }
    wrong = [f"{m.ds}: {counted.get(str(m.ds), 0)} rows" for m in manifests if counted.get(str(m.ds), 0) != m.row_count]
    if wrong:
        raise RuntimeError(
            f"spark raw.{table}: registered days do not show their manifests' rows ({'; '.join(wrong[:5])}); "
            "the lake changed under the run: re-land and audit the day(s) again"
        )


def register_partitions(
    settings: Settings,
    manifests_by_table: Mapping[str, Sequence[PartitionManifest]],
    run_id: str,
    *,
    connection: Any = None,
) -> dict[str, int]:
    """Make these audited partitions the visible days of their Spark raw tables; rows per table.

    Idempotent: registering a day again (a rerun, a re-landed day) makes its newest file the
    visible one; the registry keeps the history. Called with the same manifests as the DuckDB load.
    """
    loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    registered: dict[str, int] = {}
    owns = connection is None
    con = connection if connection is not None else connect()
    try:
        with closing(con.cursor()) as cursor:
            _ensure_registry(cursor)
            for table, manifests in manifests_by_table.items():
                if not manifests:
                    continue
                newest = max(manifests, key=lambda m: m.ds)
                _ensure_table(cursor, settings.lake_raw_dir, table, newest)
                rows = ", ".join(
                    "("
                    + ", ".join(
                        [
                            literal(table),
                            literal(m.source),
                            f"date {literal(str(m.ds))}",
                            literal(m.file),
                            *_file_identity(settings.lake_raw_dir, m),
                            literal(run_id),
                            str(int(m.row_count)),
                            f"timestamp_ntz {literal(loaded_at)}",
                        ]
                    )
                    + ")"
                    for m in manifests
                )
                _execute(cursor, f"insert into {LAKE_DATABASE}.{REGISTRY} values {rows}")
                # the table's file listing is cached by the server: list the lake again
                _execute(cursor, f"refresh table {LAKE_DATABASE}.{identifier(table)}")
                _check_counts(cursor, table, manifests)
                registered[table] = sum(m.row_count for m in manifests)
                log.info("spark: registered raw.%s days=%d rows=%d", table, len(manifests), registered[table])
    finally:
        if owns:
            con.close()
    return registered


def register_if_spark_mode(
    settings: Settings, manifests_by_table: Mapping[str, Sequence[PartitionManifest]], run_id: str
) -> dict[str, int]:
    """After a load into DuckDB: in Spark mode (`MARTS_ENGINE=spark`) the same audited days become
    the visible days of the Spark raw tables; in embedded mode nothing (and no Spark is needed)."""
    if settings.marts_engine != "spark" or not any(manifests_by_table.values()):
        return {}
    try:
        return register_partitions(settings, manifests_by_table, run_id)
    except Exception as exc:
        raise RuntimeError(
            f"the days loaded into DuckDB were not registered on Spark ({exc}); with the cluster up "
            "(`make spark`), rerun the load or run `python -m stackctl spark register`"
        ) from exc


def raw_table_name(source: str, folder: str) -> str:
    """The raw table a lake folder loads into (a partner's folder is named after the partner)."""
    from ingestion.partner_files.contracts import CONTRACTS as PARTNERS
    from ingestion.partner_files.contracts import SOURCE_NAME as PARTNER_SOURCE

    return PARTNERS[folder].table if source == PARTNER_SOURCE else folder


def loaded_manifests(settings: Settings) -> dict[str, list[PartitionManifest]]:
    """Every lake partition whose current file is the one DuckDB's raw layer loaded, by raw table.

    For registering an existing warehouse's history (`python -m stackctl spark register`): a day
    counts when the run ledger has its load and the partition was landed before that load (a day
    re-landed since, and not yet audited, is left out).
    """
    import json

    from core.duckdb_connect import connect_file
    from ingestion.lake import MANIFEST

    if not settings.warehouse_path.exists():
        return {}
    con = connect_file(settings, read_only=True)
    try:
        if not con.execute(
            "select 1 from duckdb_tables() where schema_name = 'ops' and table_name = 'run_ledger'"
        ).fetchall():
            return {}
        loads = {
            (source, table, str(ds)): recorded_at
            for source, table, ds, recorded_at in con.execute(
                "select source, table_name, ds, max(recorded_at) from ops.run_ledger where step = 'load' group by all"
            ).fetchall()
        }
    finally:
        con.close()
    found: dict[str, list[PartitionManifest]] = {}
    for path in sorted(settings.lake_raw_dir.glob(f"*/*/ds=*/{MANIFEST}")):
        manifest = PartitionManifest(**json.loads(path.read_text()))
        loaded = loads.get((manifest.source, manifest.table, str(manifest.ds)))
        landed = dt.datetime.fromisoformat(manifest.landed_at).astimezone(dt.UTC).replace(tzinfo=None)
        if loaded is not None and landed <= loaded:
            found.setdefault(raw_table_name(manifest.source, manifest.table), []).append(manifest)
    return found

"""Publish: copy the audited marts into a fresh serving file and swap it in atomically.

Write-audit-publish's last step. The builder never writes the file Superset reads: marts are
copied into `.serving-<run>.duckdb` beside it, flushed, then `os.replace`d onto the served
path. A reader has the old file or the new one open, never a mix, and never fights the
builder for DuckDB's single-writer lock. If anything fails before the rename, the old serving
file is untouched.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from stackctl.settings import Settings

# Schemas copied to serving: marts for the dashboards, ops for data-health views.
PUBLISHED_SCHEMAS = ("marts",)


@dataclass(frozen=True)
class PublishResult:
    serving_path: Path
    tables: dict[str, int]
    run_id: str


def publish(warehouse_path: Path, serving_path: Path, run_id: str, memory_limit: str = "3GB") -> PublishResult:
    """Copy the published schemas of the warehouse into a new serving file and swap it in."""
    serving_path.parent.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run_id)
    staging = serving_path.with_name(f".{serving_path.stem}-{safe}.duckdb")
    staging.unlink(missing_ok=True)
    # An in-memory session attaching the warehouse read-only and the new file read-write.
    con = duckdb.connect(config={"memory_limit": memory_limit})
    tables: dict[str, int] = {}
    try:
        con.execute(f"attach '{warehouse_path}' as wh (read_only)")
        con.execute(f"attach '{staging}' as serving_new")
        found = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = 'wh' and table_schema in (select unnest(?)) "
            "and table_type = 'BASE TABLE' order by 1, 2",
            [list(PUBLISHED_SCHEMAS)],
        ).fetchall()
        if not found:
            raise RuntimeError(f"nothing to publish: {warehouse_path} has no tables in {PUBLISHED_SCHEMAS}")
        for schema in sorted({s for s, _ in found}):
            con.execute(f'create schema serving_new."{schema}"')
        for schema, table in found:
            con.execute(f'create table serving_new."{schema}"."{table}" as select * from wh."{schema}"."{table}"')
            tables[f"{schema}.{table}"] = con.execute(
                f'select count(*) from serving_new."{schema}"."{table}"'
            ).fetchone()[0]
        con.execute("create schema serving_new.meta")
        con.execute(
            "create table serving_new.meta.publication as select ? as run_id, ? as published_at",
            [run_id, dt.datetime.now(dt.UTC).replace(tzinfo=None)],
        )
        con.execute("detach serving_new")
    except BaseException:
        con.close()
        staging.unlink(missing_ok=True)
        raise
    con.close()
    _fsync(staging)
    os.replace(staging, serving_path)
    _fsync(serving_path.parent)
    return PublishResult(serving_path, tables, run_id)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def published_run(serving_path: Path) -> str | None:
    """The run id of the serving file currently in place (None when nothing is published)."""
    if not serving_path.exists():
        return None
    with duckdb.connect(str(serving_path), read_only=True) as con:
        return con.execute("select run_id from meta.publication").fetchone()[0]


def publish_for_dashboards(settings: Settings, run_id: str) -> PublishResult:
    """Publish, then drop Superset's cached chart results so dashboards show the new file now."""
    from superset.provision import clear_data_cache

    result = publish(settings.warehouse_path, settings.serving_path, run_id, settings.duckdb_memory_limit)
    clear_data_cache(settings)
    return result

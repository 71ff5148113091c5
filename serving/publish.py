"""Publish: copy the audited marts into a fresh serving file and swap it in atomically.

Write-audit-publish's last step. The builder never writes the file Superset reads: tables are
copied into `.serving-<run>.duckdb` beside it, flushed, then `os.replace`d onto the served
path. A reader has the old file or the new one open, never a mix, and never fights the
builder for DuckDB's single-writer lock. If anything fails before the rename, the old serving
file is untouched.

What is published (no raw data, no PII):
- `marts.*` except the models dbt marks `meta.publish: false` (row-level marts keyed by
  customer or visitor, e.g. `fct_order_lines`, `dim_customers`, `fct_sessions`: analysts use them
  in the warehouse, dashboards need only the aggregates), read from dbt's manifest; and only as
  gate 2 audited them: the warehouse's marts fingerprint must equal the one gate 2 recorded for
  this run in `ops.gate_runs` (`quality.fingerprint`), else `PublishRefused`;
- `ops.data_health`, `ops.gate_runs`, `ops.quarantine`, `ops.source_freshness` for the Data
  health dashboard (`quality.health`), and `ops.access_log` for the Governance dashboard
  (`governance.access_log`; staff logins and redacted queries, no data subject's identifiers);
- the churn model's aggregates `ml.churn_risk_segments`, `ml.churn_risk_distribution`,
  `ml.model_versions`, `ml.model_drift` (`ml.tables`; no per-customer predictions);
- `meta.publication` (run id, time, marts fingerprint, last health refresh) and
  `meta.published_tables` (rows and fingerprint per table).

Every swap is followed by the analyst's copy, `serving_marts.duckdb` beside it
(`marts_copy_path`, `write_marts_copy`): the published marts and nothing of ops/ml/meta, the only
file Superset's SQL Lab opens for non-admins (`superset/sqllab_guard.py`), so no statement form
can reach the staff activity in `ops.access_log`. It follows the serving file within the same
lock, a moment after it.

`publish_health` refreshes only the ops tables: it rebuilds the file from the *currently
served* marts plus the warehouse's ops tables, so a failed gate shows on the Data health
dashboard while the KPI dashboards keep the last good numbers. Both hold an flock beside the
serving file, so two publishers never interleave (one could otherwise swap old marts back).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from core import dbt_manifest
from core.dbt_manifest import dbt_manifest_path  # noqa: F401  (callers import it from here)
from core.duckdb_connect import connect_memory
from core.files import safe_file_name
from core.settings import Settings
from ingestion.lake import fsync_path
from quality.fingerprint import schema_fingerprint, schema_tables, table_fingerprint
from quality.health import DDL as OPS_DDL
from serving.schema import ACCESS_LOG_DDL, ML_DDL, PUBLISHED_OPS_TABLES, PUBLISHED_SCHEMAS
from serving.schema import ML_TABLES as PUBLISHED_ML_TABLES


class PublishRefused(RuntimeError):
    """The marts are not what gate 2 audited for this run (or it did not pass): nothing was published."""


@dataclass(frozen=True)
class PublishResult:
    serving_path: Path
    tables: dict[str, int]
    run_id: str
    marts_fingerprint: str | None = None


def unpublished_marts(manifest_path: Path) -> frozenset[str]:
    """core.dbt_manifest's, refusing to publish without a manifest."""
    try:
        return dbt_manifest.unpublished_marts(manifest_path)
    except dbt_manifest.ManifestMissing as exc:
        raise PublishRefused(str(exc)) from None


def published_marts(manifest_path: Path) -> list[str]:
    """core.dbt_manifest's, refusing to publish without a manifest."""
    try:
        return dbt_manifest.published_marts(manifest_path)
    except dbt_manifest.ManifestMissing as exc:
        raise PublishRefused(str(exc)) from None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@contextmanager
def serving_lock(serving_path: Path) -> Iterator[None]:
    """Exclusive for the whole read-current / build / swap of one publication."""
    serving_path.parent.mkdir(parents=True, exist_ok=True)
    with (serving_path.parent / f".{serving_path.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _staging_path(serving_path: Path, run_id: str) -> Path:
    return serving_path.with_name(f".{serving_path.stem}-{safe_file_name(run_id)}.duckdb")


def _audited_fingerprint(con: duckdb.DuckDBPyConnection, run_id: str) -> str:
    """The fingerprint gate 2 recorded for `run_id`'s last audit; PublishRefused if none passed."""
    has_table = con.execute(
        "select count(*) from information_schema.tables where table_catalog = 'wh' and table_schema = 'ops' "
        "and table_name = 'gate_runs'"
    ).fetchall()[0][0]
    rows = (
        con.execute(
            "select status, fingerprint, reason from wh.ops.gate_runs where gate = 'gate2' and run_id = ? "
            "and checked_at = (select max(checked_at) from wh.ops.gate_runs where gate = 'gate2' and run_id = ?)",
            [run_id, run_id],
        ).fetchall()
        if has_table
        else []
    )
    if not rows:
        raise PublishRefused(f"no gate 2 audit recorded for run {run_id!r}: run gate 2 before publishing")
    failed = [reason for status, _, reason in rows if status == "failed"]
    if failed:
        raise PublishRefused(f"gate 2 failed for run {run_id!r}: {failed[0]}")
    fingerprints = {fingerprint for _, fingerprint, _ in rows}
    if len(fingerprints) != 1 or None in fingerprints:
        raise PublishRefused(f"gate 2 of run {run_id!r} recorded no single marts fingerprint: {fingerprints}")
    return fingerprints.pop()


def _copy_marts(
    con: duckdb.DuckDBPyConnection, catalog: str, tables: dict[str, int], exclude: frozenset[str] = frozenset()
) -> None:
    for table in schema_tables(con, catalog, "marts"):
        if table in exclude:
            continue
        con.execute(f'create table serving_new.marts."{table}" as select * from {catalog}.marts."{table}"')
        tables[f"marts.{table}"] = con.execute(f'select count(*) from serving_new.marts."{table}"').fetchall()[0][0]


def _copy_ops(con: duckdb.DuckDBPyConnection, tables: dict[str, int]) -> None:
    # Empty tables first (the dashboard's datasets exist even before the first check), then the
    # warehouse's rows where it has the table.
    con.execute("use serving_new")
    con.execute(OPS_DDL)
    con.execute(ACCESS_LOG_DDL)
    con.execute("use memory")
    present = set(schema_tables(con, "wh", "ops"))
    for table in PUBLISHED_OPS_TABLES:
        if table in present:
            con.execute(f'create or replace table serving_new.ops."{table}" as select * from wh.ops."{table}"')
        tables[f"ops.{table}"] = con.execute(f'select count(*) from serving_new.ops."{table}"').fetchall()[0][0]
    # The churn model's aggregates, versions and drift (serving/schema.py; never its per-customer rows),
    # refreshed like the ops tables: the churn_model DAG publishes through publish_health.
    con.execute("use serving_new")
    con.execute(ML_DDL)
    con.execute("use memory")
    present = set(schema_tables(con, "wh", "ml"))
    for table in PUBLISHED_ML_TABLES:
        if table in present:
            con.execute(f'create or replace table serving_new.ml."{table}" as select * from wh.ml."{table}"')
        tables[f"ml.{table}"] = con.execute(f'select count(*) from serving_new.ml."{table}"').fetchall()[0][0]


def _finish(con: duckdb.DuckDBPyConnection, staging: Path, serving_path: Path, publication: dict) -> None:
    con.execute("create schema serving_new.meta")
    columns = ", ".join(f"? as {name}" for name in publication)
    con.execute(f"create table serving_new.meta.publication as select {columns}", list(publication.values()))
    con.execute(
        "create table serving_new.meta.published_tables "
        "(schema_name varchar, table_name varchar, row_count bigint, fingerprint varchar)"
    )
    for schema in PUBLISHED_SCHEMAS:
        for table in schema_tables(con, "serving_new", schema):
            rows, digest = table_fingerprint(con, f'serving_new."{schema}"."{table}"')
            con.execute(
                "insert into serving_new.meta.published_tables values (?, ?, ?, ?)", [schema, table, rows, str(digest)]
            )
    con.execute("detach serving_new")
    con.close()
    fsync_path(staging)
    os.replace(staging, serving_path)
    fsync_path(serving_path.parent)
    write_marts_copy(serving_path)


def marts_copy_path(serving_path: Path) -> Path:
    """The analyst's SQL Lab file beside the serving file: its marts schema only."""
    return serving_path.with_name(f"{serving_path.stem}_marts{serving_path.suffix}")


def write_marts_copy(serving_path: Path) -> Path:
    """Copy the served marts (nothing else) into `marts_copy_path`, swapped in atomically."""
    target = marts_copy_path(serving_path)
    staging = target.with_name(f".{target.name}.building")
    staging.unlink(missing_ok=True)
    try:
        # A fresh in-memory instance: `duckdb.connect(path)` could reuse a cached pre-swap instance.
        with duckdb.connect() as con:
            con.execute(f"attach '{serving_path}' as served (read_only)")
            con.execute(f"attach '{staging}' as marts_new")
            con.execute("create schema marts_new.marts")
            for table in schema_tables(con, "served", "marts"):
                con.execute(f'create table marts_new.marts."{table}" as select * from served.marts."{table}"')
            con.execute("detach marts_new")
        fsync_path(staging)
        os.replace(staging, target)
        fsync_path(target.parent)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return target


def publish(
    warehouse_path: Path,
    serving_path: Path,
    run_id: str,
    *,
    settings: Settings,
    require_audit: bool = True,
    manifest_path: Path | None = None,
) -> PublishResult:
    """Copy the audited marts (and the data-health tables) into a new serving file and swap it in.

    With require_audit (the default) the marts must be exactly what gate 2 audited for
    `run_id`; otherwise `PublishRefused` and the served file stays as it is. With
    `manifest_path`, marts that dbt marks `meta.publish: false` are not copied. `settings` gives
    the DuckDB session's limits.
    """
    exclude = unpublished_marts(manifest_path) if manifest_path is not None else frozenset()
    with serving_lock(serving_path):
        staging = _staging_path(serving_path, run_id)
        staging.unlink(missing_ok=True)
        # An in-memory session attaching the warehouse read-only and the new file read-write.
        con = connect_memory(settings)
        tables: dict[str, int] = {}
        try:
            con.execute(f"attach '{warehouse_path}' as wh (read_only)")
            if not schema_tables(con, "wh", "marts"):
                raise RuntimeError(f"nothing to publish: {warehouse_path} has no tables in schema marts")
            audited = _audited_fingerprint(con, run_id) if require_audit else None
            # Gate 2 fingerprints the marts publish serves, as this does; the warehouse is attached
            # read-only for the whole session, so no build can slip in before the copy.
            warehouse_marts = schema_fingerprint(con, "wh", "marts", exclude)
            if audited is not None and warehouse_marts != audited:
                raise PublishRefused(
                    f"the marts changed since gate 2 audited them for run {run_id!r} "
                    f"(audited {audited}, now {warehouse_marts}): run gate 2 again"
                )
            con.execute(f"attach '{staging}' as serving_new")
            con.execute("create schema serving_new.marts")
            _copy_marts(con, "wh", tables, exclude)
            # The served file's own fingerprint: what a reader can check its tables against.
            fingerprint = schema_fingerprint(con, "serving_new", "marts")
            _copy_ops(con, tables)
            now = _now()
            _finish(
                con,
                staging,
                serving_path,
                {
                    "run_id": run_id,
                    "published_at": now,
                    "marts_fingerprint": fingerprint,
                    "health_run_id": run_id,
                    "health_refreshed_at": now,
                },
            )
        except BaseException:
            con.close()
            staging.unlink(missing_ok=True)
            raise
    return PublishResult(serving_path, tables, run_id, fingerprint)


def publish_health(warehouse_path: Path, serving_path: Path, run_id: str, *, settings: Settings) -> PublishResult:
    """Refresh only the data-health tables of the served file; its marts stay exactly as they are.

    When nothing was ever published it does nothing (the result lists no tables): the first
    publication must come through gate 2.
    """
    with serving_lock(serving_path):
        if not serving_path.exists():
            return PublishResult(serving_path, {}, run_id, None)
        staging = _staging_path(serving_path, f"health-{run_id}")
        staging.unlink(missing_ok=True)
        con = connect_memory(settings)
        tables: dict[str, int] = {}
        try:
            con.execute(f"attach '{warehouse_path}' as wh (read_only)")
            con.execute(f"attach '{serving_path}' as cur (read_only)")
            cursor = con.execute("select * from cur.meta.publication")
            current = dict(zip([d[0] for d in cursor.description], cursor.fetchall()[0], strict=True))
            con.execute(f"attach '{staging}' as serving_new")
            con.execute("create schema serving_new.marts")
            _copy_marts(con, "cur", tables)
            fingerprint = schema_fingerprint(con, "serving_new", "marts")
            if current.get("marts_fingerprint") not in (None, fingerprint):
                raise RuntimeError(
                    f"copying the served marts changed them ({fingerprint} != {current['marts_fingerprint']})"
                )
            con.execute("detach cur")
            _copy_ops(con, tables)
            _finish(
                con,
                staging,
                serving_path,
                {
                    "run_id": current["run_id"],
                    "published_at": current["published_at"],
                    "marts_fingerprint": fingerprint,
                    "health_run_id": run_id,
                    "health_refreshed_at": _now(),
                },
            )
        except BaseException:
            con.close()
            staging.unlink(missing_ok=True)
            raise
    return PublishResult(serving_path, tables, current["run_id"], fingerprint)


def publication(serving_path: Path) -> dict | None:
    """`meta.publication` of the serving file in place (None when nothing is published).

    Read through ATTACH in a fresh in-memory instance: `duckdb.connect(path)` would reuse a
    database instance this process may still hold on the pre-swap file (DuckDB caches instances
    per path), and report the previous publication.
    """
    if not serving_path.exists():
        return None
    with duckdb.connect() as con:
        con.execute(f"attach '{serving_path}' as served (read_only)")
        cursor = con.execute("select * from served.meta.publication")
        names = [d[0] for d in cursor.description]
        return dict(zip(names, cursor.fetchall()[0], strict=True))


def published_run(serving_path: Path) -> str | None:
    """The run id of the marts currently published (None when nothing is published)."""
    current = publication(serving_path)
    return current["run_id"] if current else None

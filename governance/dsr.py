"""Data subject requests (GDPR art. 15 and 17): export everything held about a person, or erase it.

Where a subject's data lives in this stack, and how each request treats it:

- lake `raw/` and `quarantine/` Parquet (app-DB extracts, typed partner rows): export their rows
  per file; erase by rewriting every affected file without them, the partition folder swapped in
  by rename (as `ingestion.lake` does), `_manifest.json` updated (rows, bytes, sha256);
- warehouse `raw.*`: export their rows; erase by deleting them in one transaction;
- warehouse staging / intermediate (dbt views, pseudonymised): export; they follow `raw` (the one
  staging table, `stg_shop__web_events`, is rebuilt with the marts);
- warehouse `marts.*` (row-level marts): export; erase by `dbt build --full-refresh` (an
  incremental mart never drops rows deleted upstream otherwise);
- serving file: export (should be empty); erase by gate 2 and republishing the rebuilt marts;
- bytes: DuckDB keeps deleted rows in freed blocks, so after deleting, the warehouse file is
  rewritten from its live contents and swapped in (`governance.rewrite`); serving is a new file
  at every publication, and lake files are replaced whole, their old folder deleted.

The subject is found from a customer id or an e-mail address, then widened to every identifier
that leads to them: all their customer ids and e-mail addresses (across versions), their orders
and order lines, the visitor (cookie) ids their logged-in sessions carry, and the keyed-hash
pseudonyms of e-mails and visitor ids as dbt computes them (PII_HASH_KEY). A column is an
identifier by name (`IDENTIFIER_COLUMNS`); order and visitor keys only count in shop-derived
tables (another source's `order_id` is someone else's number).

Not done here, on purpose: the operational app DB belongs to the shop backend, whose account
deletion process erases the person there (the platform only reads it). So that a later
re-extract or backfill cannot bring an erased person back, the erasure is recorded in an
erasure list (keyed hashes only) and `reapply_erasures` (the governance_maintenance DAG, daily)
erases any of them that reappear. Partner files kept byte for byte (`.../_files/`) are not
rewritten (their sha256 ledger proves receipt); their typed rows are.

Every request appends to the audit log (`governance.audit`): who, when, what, outcome, counts.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from core.duckdb_connect import connect_file, connect_memory
from core.files import safe_file_name
from core.settings import Settings
from governance import audit
from governance.rewrite import rewrite_duckdb_file
from governance.settings import governance_dir
from ingestion.lake import fsync_path, swap_in

log = logging.getLogger(__name__)

# column name -> the set of the subject's identifiers it is compared with
IDENTIFIER_COLUMNS = {
    "customer_id": "customer_ids",
    "email": "emails",
    "reviewer_email": "emails",
    "email_hash": "email_hashes",
    "reviewer_email_hash": "email_hashes",
    "visitor_id": "visitor_ids",
    "visitor_hash": "visitor_hashes",
    "order_id": "order_ids",
    "order_item_id": "order_item_ids",
}
# Identifiers that mean the same person in every source (the rest are shop keys).
UNIVERSAL = {"emails", "email_hashes"}
SHOP_SOURCE = "shop"
SKIPPED_SCHEMAS = ("ops", "meta", "information_schema", "pg_catalog")
NOT_ERASED_HERE = "app DB: erased by its owner's account deletion; re-extracts are filtered by the erasure list"


class SubjectNotFound(LookupError):
    """No customer id or e-mail of the request exists anywhere in the stack."""


@dataclass
class Subject:
    """Every identifier of one person found in the stack (plain values: never written to the log)."""

    customer_ids: set[int] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    visitor_ids: set[str] = field(default_factory=set)
    order_ids: set[int] = field(default_factory=set)
    order_item_ids: set[int] = field(default_factory=set)
    email_hashes: set[str] = field(default_factory=set)
    visitor_hashes: set[str] = field(default_factory=set)

    @property
    def key_hash(self) -> str:
        """The subject as the audit log and erasure list name it: the keyed hash of the lowest customer id
        (of the e-mail when there is no customer)."""
        if self.customer_ids:
            return audit.subject_hash("customer_id", min(self.customer_ids))
        return audit.subject_hash("email", min(self.emails))

    def hashes(self) -> dict[str, list[str]]:
        return {
            "customer_id": sorted(audit.subject_hash("customer_id", c) for c in self.customer_ids),
            "email": sorted(audit.subject_hash("email", e) for e in self.emails),
        }


@dataclass(frozen=True)
class Match:
    """Rows of the subject in one place: a lake file, a warehouse relation or a serving table."""

    store: str  # lake | warehouse | serving
    name: str  # path relative to the lake, or schema.table
    rows: int


# --- where to look ---------------------------------------------------------------------------------


def _lake_files(settings: Settings) -> list[tuple[Path, bool]]:
    """Every Parquet file in the lake's raw and quarantine areas, with 'is shop-derived'."""
    out = []
    for root in (settings.lake_raw_dir, settings.quarantine_dir):
        if not root.exists():
            continue
        for path in sorted(root.rglob("*.parquet")):
            relative = path.relative_to(root)
            if any(part.startswith(".") for part in relative.parts):
                continue  # a partition being swapped in by someone else
            out.append((path, relative.parts[0] == SHOP_SOURCE))
    return out


def _is_shop_table(schema: str, table: str) -> bool:
    from ingestion.app_db.contract import CONTRACTS

    # Everything outside raw derives from the shop (dbt models, the churn model's ml.* tables);
    # in raw only the app DB's tables do (partner and vendor rows have their own keys).
    return schema != "raw" or table in CONTRACTS


def _relations(con: duckdb.DuckDBPyConnection, catalog: str) -> list[tuple[str, str, dict[str, str]]]:
    """(schema, name, {column: type}) of every table and view of `catalog` outside ops/meta."""
    rows = con.execute(
        "select table_schema, table_name, column_name, data_type from information_schema.columns "
        "where table_catalog = ? order by table_schema, table_name, ordinal_position",
        [catalog],
    ).fetchall()
    relations: dict[tuple[str, str], dict[str, str]] = {}
    for schema, table, column, kind in rows:
        if schema not in SKIPPED_SCHEMAS:
            relations.setdefault((schema, table), {})[column] = kind
    return [(schema, table, columns) for (schema, table), columns in relations.items()]


def _predicate(columns: Iterable[str], shop: bool) -> str | None:
    parts = []
    for column in columns:
        kind = IDENTIFIER_COLUMNS.get(column.lower())
        if kind is None or (not shop and kind not in UNIVERSAL):
            continue
        value = f'lower(trim("{column}"))' if kind == "emails" else f'"{column}"'
        parts.append(f"{value} in (select v from subject_{kind})")
    return " or ".join(parts) or None


def _session(settings: Settings) -> duckdb.DuckDBPyConnection:
    con = connect_memory(settings)
    # dbt's staging views read the pseudonymisation key from the connection, never from their SQL.
    if os.environ.get("PII_HASH_KEY"):
        con.execute("set variable pii_hash_key = ?", [os.environ["PII_HASH_KEY"]])
    return con


def _load_subject(con: duckdb.DuckDBPyConnection, subject: Subject) -> None:
    """The subject's identifiers as temp tables `subject_<kind>(v)` for the predicates."""
    for kind, values, sql_type in [
        ("customer_ids", subject.customer_ids, "bigint"),
        ("emails", {e.strip().lower() for e in subject.emails}, "varchar"),
        ("visitor_ids", subject.visitor_ids, "varchar"),
        ("order_ids", subject.order_ids, "bigint"),
        ("order_item_ids", subject.order_item_ids, "bigint"),
        ("email_hashes", subject.email_hashes, "varchar"),
        ("visitor_hashes", subject.visitor_hashes, "varchar"),
    ]:
        con.execute(f"create or replace temp table subject_{kind} (v {sql_type})")
        if values:
            con.executemany(f"insert into subject_{kind} values (?)", [(v,) for v in sorted(values)])


def _parquet_columns(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    return [row[0] for row in con.execute("describe select * from read_parquet(?)", [str(path)]).fetchall()]


# --- who is the subject ----------------------------------------------------------------------------


def _shop_sources(con: duckdb.DuckDBPyConnection, settings: Settings, table: str, has_warehouse: bool) -> list[str]:
    """SQL relations holding a shop table's rows: its lake partitions and the warehouse's raw table."""
    out = []
    for root in (settings.lake_raw_dir / SHOP_SOURCE / table, settings.quarantine_dir / SHOP_SOURCE / table):
        if any(root.rglob("*.parquet")):
            out.append(f"read_parquet('{root}/**/*.parquet', union_by_name = true, hive_partitioning = false)")
    if has_warehouse:
        exists = con.execute(
            "select count(*) from information_schema.tables where table_catalog = 'wh' and table_schema = 'raw' "
            "and table_name = ?",
            [table],
        ).fetchall()[0][0]
        if exists:
            out.append(f'wh.raw."{table}"')
    return out


def _collect(con: duckdb.DuckDBPyConnection, sources: list[str], column: str, where: str) -> set:
    values: set = set()
    for source in sources:
        rows = con.execute(f'select distinct "{column}" from {source} where {where}').fetchall()
        values |= {v for (v,) in rows if v is not None}
    return values


def resolve(settings: Settings, customer_id: int | None = None, email: str | None = None) -> Subject:
    """Every identifier of the person with this customer id or e-mail, from the lake and the warehouse."""
    if customer_id is None and not email:
        raise ValueError("a data subject request needs --customer-id or --email")
    subject = Subject()
    if customer_id is not None:
        subject.customer_ids.add(int(customer_id))
    if email:
        subject.emails.add(email.strip().lower())
    con = _session(settings)
    try:
        has_warehouse = settings.warehouse_path.exists()
        if has_warehouse:
            con.execute(f"attach '{settings.warehouse_path}' as wh (read_only)")
        customers = _shop_sources(con, settings, "customers", has_warehouse)
        _load_subject(con, subject)
        if subject.emails:
            subject.customer_ids |= _collect(
                con, customers, "customer_id", "lower(trim(email)) in (select v from subject_emails)"
            )
        _load_subject(con, subject)
        subject.emails |= {
            e.strip().lower()
            for e in _collect(con, customers, "email", "customer_id in (select v from subject_customer_ids)")
        }
        _load_subject(con, subject)
        by_customer = "customer_id in (select v from subject_customer_ids)"
        subject.order_ids |= _collect(
            con, _shop_sources(con, settings, "orders", has_warehouse), "order_id", by_customer
        )
        subject.visitor_ids |= _collect(
            con, _shop_sources(con, settings, "web_events", has_warehouse), "visitor_id", by_customer
        )
        _load_subject(con, subject)
        subject.order_item_ids |= _collect(
            con,
            _shop_sources(con, settings, "order_items", has_warehouse),
            "order_item_id",
            "order_id in (select v from subject_order_ids)",
        )
        # The pseudonyms exactly as dbt staging computes them (macros/pseudonymise.sql).
        key = os.environ.get("PII_HASH_KEY", "")
        for kind, values in (("email_hashes", subject.emails), ("visitor_hashes", subject.visitor_ids)):
            for value in values:
                digest = con.execute("select sha256(concat(?, '|', lower(trim(?))))", [key, str(value)]).fetchall()
                getattr(subject, kind).add(digest[0][0])
    finally:
        con.close()
    if not find(settings, subject, stores=("lake", "warehouse")):
        raise SubjectNotFound("no data held for this subject (customer id / e-mail not found)")
    return subject


# --- find, export ---------------------------------------------------------------------------------


def find(
    settings: Settings, subject: Subject, stores: tuple[str, ...] = ("lake", "warehouse", "serving")
) -> list[Match]:
    """Where the subject has rows, and how many."""
    matches: list[Match] = []
    con = _session(settings)
    try:
        _load_subject(con, subject)
        if "lake" in stores:
            for path, shop in _lake_files(settings):
                predicate = _predicate(_parquet_columns(con, path), shop)
                if predicate:
                    n = con.execute(f"select count(*) from read_parquet(?) where {predicate}", [str(path)]).fetchall()
                    if n[0][0]:
                        matches.append(Match("lake", str(path.relative_to(settings.lake_dir)), n[0][0]))
        for store, path in (("warehouse", settings.warehouse_path), ("serving", settings.serving_path)):
            if store not in stores or not path.exists():
                continue
            con.execute(f"attach '{path}' as {store} (read_only)")
            for schema, table, columns in _relations(con, store):
                predicate = _predicate(columns, _is_shop_table(schema, table) or store == "serving")
                if predicate:
                    n = con.execute(f'select count(*) from {store}."{schema}"."{table}" where {predicate}').fetchall()
                    if n[0][0]:
                        matches.append(Match(store, f"{schema}.{table}", n[0][0]))
            con.execute(f"detach {store}")
    finally:
        con.close()
    return matches


def _exports_dir(settings: Settings) -> Path:
    return governance_dir(settings) / "exports"


def export(settings: Settings, subject: Subject, request_id: str, out: Path | None = None) -> tuple[Path, list[Match]]:
    """One zip: a CSV per place holding the subject's rows, and `manifest.json` listing them."""
    matches = find(settings, subject)
    archive = out or _exports_dir(settings) / f"{request_id}.zip"
    archive.parent.mkdir(parents=True, exist_ok=True)
    con = _session(settings)
    try:
        _load_subject(con, subject)
        for store, path in (("warehouse", settings.warehouse_path), ("serving", settings.serving_path)):
            if path.exists():
                con.execute(f"attach '{path}' as {store} (read_only)")
        with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            files = []
            for match in matches:
                if match.store == "lake":
                    path = settings.lake_dir / match.name
                    shop = match.name.split("/")[1:2] == [SHOP_SOURCE]
                    relation = f"read_parquet('{path}')"
                    columns = _parquet_columns(con, path)
                else:
                    schema, table = match.name.split(".", 1)
                    relation = f'{match.store}."{schema}"."{table}"'
                    columns = [d[0] for d in con.execute(f"select * from {relation} limit 0").description]
                    shop = match.store == "serving" or _is_shop_table(schema, table)
                member = f"{match.store}/{match.name.removesuffix('.parquet')}.csv"
                target = Path(tmp) / f"{len(files)}.csv"
                cursor = con.execute(f"select * from {relation} where {_predicate(columns, shop)}")
                with target.open("w", newline="") as handle:
                    writer = csv.writer(handle)
                    writer.writerow([d[0] for d in cursor.description])
                    writer.writerows(cursor.fetchall())
                bundle.write(target, member)
                files.append({"file": member, "source": f"{match.store}:{match.name}", "rows": match.rows})
            manifest = {
                "request_id": request_id,
                "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "subject": {"customer_ids": sorted(subject.customer_ids), "emails": sorted(subject.emails)},
                "what": "every row held about the subject in the lake, the warehouse (raw, staging, "
                "intermediate, marts) and the serving file; staging and marts hold pseudonyms "
                "(keyed hashes) of e-mail and visitor ids in place of the values",
                "not_included": NOT_ERASED_HERE.split(";")[0] + " (ask the shop for its own export)",
                "files": files,
            }
            bundle.writestr("manifest.json", json.dumps(manifest, indent=2, default=str))
    finally:
        con.close()
    os.chmod(archive, 0o600)
    return archive, matches


# --- erase -----------------------------------------------------------------------------------------


def _rewrite_file(con: duckdb.DuckDBPyConnection, path: Path, shop: bool, request_id: str) -> int:
    """Rewrite one lake Parquet file without the subject's rows, swapping its folder in by rename.

    The Arrow schema is kept exactly (the loader and gate 1 compare it); the partition manifest,
    when the folder has one for this file, gets the new row count, size and checksum, and keeps
    its watermark and max key (the next extract must continue where it did, not re-read).
    """
    table = pq.read_table(path)
    numbered = table.append_column("__row", pa.array(range(table.num_rows), pa.int64()))
    con.register("lake_file", numbered)
    try:
        predicate = _predicate(table.schema.names, shop)
        keep = con.execute(
            f"select __row from lake_file where not coalesce({predicate}, false) order by __row"
        ).fetchall()
    finally:
        con.unregister("lake_file")
    removed = table.num_rows - len(keep)
    if not removed:
        return 0
    kept = table.take(pa.array([r for (r,) in keep], pa.int64()))
    folder = path.parent
    safe = safe_file_name(f"erase-{request_id}")
    tmp = folder.parent / f".tmp-{safe}-{folder.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(folder, tmp)
    pq.write_table(kept, tmp / path.name, compression="zstd")
    data = (tmp / path.name).read_bytes()
    manifest_path = tmp / "_manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("file") == path.name:
            manifest.update(row_count=kept.num_rows, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
            manifest_path.write_text(json.dumps(manifest, indent=2))
    # Why the partition changed since it landed (request id and count only).
    erasures_path = tmp / "_erasures.json"
    history = json.loads(erasures_path.read_text()) if erasures_path.exists() else []
    history.append({"request_id": request_id, "file": path.name, "rows_removed": removed})
    erasures_path.write_text(json.dumps(history, indent=2))
    # The same atomic swap a landing uses.
    fsync_path(tmp)
    swap_in(tmp, folder, safe)
    return removed


def _erase_lake(settings: Settings, subject: Subject, request_id: str) -> dict[str, int]:
    removed: dict[str, int] = {}
    con = _session(settings)
    try:
        _load_subject(con, subject)
        for path, shop in _lake_files(settings):
            if not _predicate(_parquet_columns(con, path), shop):
                continue
            n = _rewrite_file(con, path, shop, request_id)
            if n:
                removed[str(path.relative_to(settings.lake_dir))] = n
    finally:
        con.close()
    return removed


def _erase_warehouse(settings: Settings, subject: Subject, schemas: tuple[str, ...] | None) -> dict[str, int]:
    """Delete the subject from the warehouse's base tables (of `schemas`, or all but raw) in one transaction."""
    if not settings.warehouse_path.exists():
        return {}
    con = connect_file(settings)
    removed: dict[str, int] = {}
    try:
        _load_subject(con, subject)
        catalog = con.execute("select current_database()").fetchall()[0][0]
        base_tables = {
            (schema, table)
            for schema, table in con.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = ?", [catalog]
            ).fetchall()
        }
        con.execute("begin transaction")
        try:
            for schema, table, columns in _relations(con, catalog):
                wanted = schema in schemas if schemas else schema != "raw"
                if not wanted or (schema, table) not in base_tables:
                    continue  # views follow their tables
                predicate = _predicate(columns, _is_shop_table(schema, table))
                if predicate:
                    n = con.execute(f'delete from "{schema}"."{table}" where {predicate}').fetchall()[0][0]
                    if n:
                        removed[f"{schema}.{table}"] = n
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        con.close()
    return removed


def erasure_list_path(settings: Settings) -> Path:
    return governance_dir(settings) / "erasure_list.jsonl"


def erased_hashes(settings: Settings) -> dict[str, set[str]]:
    """The keyed hashes of every erased subject's customer ids and e-mails."""
    out: dict[str, set[str]] = {"customer_id": set(), "email": set()}
    path = erasure_list_path(settings)
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                for kind in out:
                    out[kind] |= set(entry["hashes"].get(kind, []))
    return out


def _remember_erasure(settings: Settings, subject: Subject, request_id: str) -> None:
    path = erasure_list_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"request_id": request_id, "erased_at": dt.datetime.now(dt.UTC).isoformat(), "hashes": subject.hashes()}
    with path.open("a") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _delete_earlier_exports(settings: Settings, subject_hash: str) -> int:
    """Export archives of this subject are copies of the erased data: they go too."""
    gone = 0
    for entry in audit.entries(settings):
        if entry.action == "dsr_export" and entry.subject == subject_hash:
            archive = _exports_dir(settings) / f"{entry.request_id}.zip"
            if archive.exists():
                archive.unlink()
                gone += 1
    return gone


@dataclass(frozen=True)
class ErasureResult:
    request_id: str
    lake_rows: dict[str, int]
    warehouse_rows: dict[str, int]
    published_run: str | None
    remaining: list[Match]


# Rebuilds every mart from raw, gates and publishes them; returns the published run id. The
# caller passes it (`pipelines.marts.rebuild_and_publish`): the sequence sits above governance.
Republish = Callable[[Settings, str], str]


def erase(settings: Settings, subject: Subject, request_id: str, *, republish: Republish | None) -> ErasureResult:
    """Erase the subject from lake, warehouse and serving; verify nothing is left; remember the erasure.

    `republish` None leaves the marts as they are (the warehouse's raw rows are still erased).
    """
    _remember_erasure(settings, subject, request_id)  # first: a crash half-way is finished by reapply
    lake_rows = _erase_lake(settings, subject, request_id)
    warehouse_rows = _erase_warehouse(settings, subject, schemas=("raw",))
    # Marts derive from raw: rebuild when raw changed, or when a model still holds the subject (an
    # earlier attempt died before its rebuild). A re-landed day that was never loaded needs none.
    published = None
    if republish and settings.warehouse_path.exists():
        if warehouse_rows or find(settings, subject, stores=("warehouse", "serving")):
            # Tables dbt does not build (the churn model's per-customer scores) are deleted from
            # here; the marts are rebuilt from the erased raw rows, gated and published.
            warehouse_rows.update(_erase_warehouse(settings, subject, schemas=None))
            published = republish(settings, request_id)
    if warehouse_rows:
        # Deleted rows stay readable in DuckDB's freed blocks until overwritten: a fresh file has none.
        rewrite_duckdb_file(settings.warehouse_path, settings)
    remaining = find(settings, subject)
    return ErasureResult(request_id, lake_rows, warehouse_rows, published, remaining)


# --- the request, as the CLI and the DAG run it ---------------------------------------------------


def run_request(
    settings: Settings,
    action: str,
    customer_id: int | None = None,
    email: str | None = None,
    *,
    republish: Republish | None,
    actor: str | None = None,
    out: Path | None = None,
) -> dict:
    """Run one export or erasure request end to end, with its audit entries; returns a summary.

    `republish` rebuilds and publishes the marts after an erasure (see `erase`).
    """
    if action not in ("export", "erase"):
        raise ValueError(f"unknown data subject request {action!r}: export or erase")
    request_id = audit.new_request_id(f"dsr-{action}")
    what = {"by": "customer_id" if customer_id is not None else "email"}
    # The subject as given (the only identifier known before resolving).
    given = audit.subject_hash(*(("customer_id", customer_id) if customer_id is not None else ("email", email)))
    audit.record(settings, f"dsr_{action}", request_id, "started", subject=given, details=what, actor=actor)
    try:
        subject = resolve(settings, customer_id, email)
        if action == "export":
            archive, matches = export(settings, subject, request_id, out)
            details = {**what, "archive": archive.name, "rows": {f"{m.store}:{m.name}": m.rows for m in matches}}
            audit.record(
                settings, "dsr_export", request_id, "completed", subject=subject.key_hash, details=details, actor=actor
            )
            return {"request_id": request_id, "archive": str(archive), "files": len(matches)}
        result = erase(settings, subject, request_id, republish=republish)
        exports_deleted = _delete_earlier_exports(settings, subject.key_hash)
        details = {
            **what,
            "lake_rows_removed": sum(result.lake_rows.values()),
            "lake_files_rewritten": len(result.lake_rows),
            "warehouse_rows_removed": result.warehouse_rows,
            "republished_run": result.published_run,
            "earlier_exports_deleted": exports_deleted,
            "app_db": NOT_ERASED_HERE,
        }
        if result.remaining:
            details["still_found"] = [f"{m.store}:{m.name}" for m in result.remaining]
            audit.record(
                settings, "dsr_erase", request_id, "failed", subject=subject.key_hash, details=details, actor=actor
            )
            raise RuntimeError(f"erasure {request_id} left rows behind in {details['still_found']}")
        audit.record(
            settings, "dsr_erase", request_id, "completed", subject=subject.key_hash, details=details, actor=actor
        )
        return {"request_id": request_id, **{k: v for k, v in details.items() if k != "app_db"}}
    except SubjectNotFound:
        audit.record(settings, f"dsr_{action}", request_id, "not_found", subject=given, details=what, actor=actor)
        raise
    except Exception as exc:
        # The reason's first line only: exception texts never carry subject data here.
        reason = type(exc).__name__
        audit.record(
            settings,
            f"dsr_{action}",
            request_id,
            "failed",
            subject=given,
            details={**what, "error": reason},
            actor=actor,
        )
        raise


def reapply_erasures(settings: Settings, *, republish: Republish | None, actor: str | None = None) -> list[str]:
    """Erase again any erased subject that came back (a re-extract, a backfill, a released batch)."""
    erased = erased_hashes(settings)
    if not any(erased.values()):
        return []
    con = _session(settings)
    try:
        has_warehouse = settings.warehouse_path.exists()
        if has_warehouse:
            con.execute(f"attach '{settings.warehouse_path}' as wh (read_only)")
        customers = _shop_sources(con, settings, "customers", has_warehouse)
        ids = _collect(con, customers, "customer_id", "true")
    finally:
        con.close()
    back = sorted(c for c in ids if audit.subject_hash("customer_id", c) in erased["customer_id"])
    requests = []
    for customer_id in back:
        request_id = audit.new_request_id("dsr-reapply")
        subject = resolve(settings, customer_id=customer_id)
        result = erase(settings, subject, request_id, republish=republish)
        outcome = "completed" if not result.remaining else "failed"
        details = {
            "lake_rows_removed": sum(result.lake_rows.values()),
            "warehouse_rows_removed": result.warehouse_rows,
            "republished_run": result.published_run,
        }
        audit.record(
            settings, "dsr_reapply", request_id, outcome, subject=subject.key_hash, details=details, actor=actor
        )
        requests.append(request_id)
    return requests


def summary(matches: Iterable[Match]) -> list[dict]:
    return [asdict(m) for m in matches]

"""Everything held in `lake/quarantine/`, of both kinds, as one record: the one quarantine listing.

Two steps hold data back, each in its own folder layout (the folders are the truth); the path of
an item's folder below `lake/quarantine/` is its id:
- `gate1_batch`: a landed batch that failed gate 1 (`quality.quarantine`),
  `<source>/<table>/ds=<ds>/<run>`; statuses held, released, superseded;
- `partner_file`: a partner file, or its bad rows, held by the inbox run
  (`ingestion.partner_files.quarantine`), `partner_files/<partner>/<day held>/<file>-<sha12>`;
  statuses held, released, superseded, dismissed.

`records` reads both into `QuarantineRecord`s (source and table are the id's first two parts for
both kinds, so `source = 'partner_files'` tells the kinds apart in SQL); `find` resolves an id of
either kind; `write_table` rebuilds `ops.quarantine` from them, which every sync of the table does
(gate 1, the hourly freshness check, release and patch), so a held partner file is on the Data
health dashboard after the next one. Actions stay with each kind's module (a partner file is
released back to the inbox, a batch back to `lake/raw`); `release_partner_file` and
`dismiss_partner_file` run the partner ones for `python -m quality quarantine`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.settings import Settings
from ingestion.partner_files import quarantine as partner_quarantine
from ingestion.partner_files.contracts import SOURCE_NAME as PARTNER_SOURCE
from quality import quarantine as gate1_quarantine
from quality.quarantine import HELD, QuarantineEntry, QuarantineError

GATE1_BATCH, PARTNER_FILE = "gate1_batch", "partner_file"
KINDS = (GATE1_BATCH, PARTNER_FILE)
DISMISSED = "dismissed"  # partner files only: closed without a release

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class QuarantineRecord:
    """One item held (or once held) in quarantine, whatever held it."""

    id: str  # the folder below lake/quarantine
    kind: str  # gate1_batch | partner_file
    source: str  # lake source: shop ... for a batch, partner_files for a partner file
    table: str  # the batch's table, or the partner
    what: str  # one line for people: "shop.order_items", "wholesale_orders/orders_2026-03-03.csv"
    ds: dt.date  # the batch's day; a partner file's business date, else the day it was held
    run_id: str
    status: str  # held | released | superseded | dismissed
    quarantined_at: dt.datetime  # UTC, naive like the warehouse's timestamps
    resolved_at: dt.datetime | None
    row_count: int | None  # a batch's rows; a partner file's rows held (all of them, or the bad ones)
    failed_checks: str  # a batch's failed expectations, a partner file's error codes (with columns)
    reason: str  # the one-line reason
    resolution: str | None
    folder: Path

    @property
    def partner_id(self) -> str:
        """A partner file's id as `python -m ingestion.partner_files` and its REPORT.md print it."""
        return self.id.removeprefix(f"{PARTNER_SOURCE}/")


def _utc_naive(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    stamp = dt.datetime.fromisoformat(text)
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    return stamp.replace(microsecond=0)


def _from_batch(settings: Settings, entry: QuarantineEntry) -> QuarantineRecord:
    failed = ", ".join(
        dict.fromkeys(
            f"{f['expectation']}({f['column_name']})" if f.get("column_name") else f["expectation"]
            for f in entry.failures
            if f.get("status", "failed") == "failed"
        )
    )
    return QuarantineRecord(
        id=entry.quarantine_id,
        kind=GATE1_BATCH,
        source=entry.source,
        table=entry.table,
        what=f"{entry.source}.{entry.table}",
        ds=dt.date.fromisoformat(entry.ds),
        run_id=entry.run_id,
        status=entry.status,
        quarantined_at=dt.datetime.fromisoformat(entry.quarantined_at),
        resolved_at=dt.datetime.fromisoformat(entry.resolved_at) if entry.resolved_at else None,
        row_count=entry.manifest.get("row_count"),
        failed_checks=failed,
        reason=entry.reason,
        resolution=entry.resolution,
        folder=entry.folder(settings),
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _partner_failed_checks(reason: dict[str, Any]) -> str:
    """The partner analogue of failed expectations: the file's error code, or each row error's code(column)."""
    if reason.get("file_error"):
        return str(reason["file_error"].get("code", ""))
    return ", ".join(
        dict.fromkeys(
            f"{e['code']}({e['column']})" if e.get("column") else str(e.get("code"))
            for e in reason.get("row_errors") or []
        )
    )


def _partner_resolution(item: partner_quarantine.QuarantineItem, ledger) -> tuple[dt.datetime | None, str | None]:
    """When and how a partner item stopped being held, from the files its actions leave beside it."""
    if item.state == "released":
        done = _read_json(item.path / "RELEASED.json")
        changed = " (changed)" if done.get("changed") else ""
        return _utc_naive(done.get("released_at")), f"released to the inbox{changed}: {done.get('to', '')}"
    if item.state == DISMISSED:
        done = _read_json(item.path / "DISMISSED.json")
        return _utc_naive(done.get("dismissed_at")), f"dismissed: {done.get('note', '')}"
    if item.state == "superseded" and ledger is not None:
        entry = ledger.get(item.reason["sha256"])
        later = ledger.get(entry.superseded_by) if entry is not None and entry.superseded_by else None
        if later is not None:
            return _utc_naive(later.finished_at), f"a later file for the day replaced it: {later.file_name}"
        return None, "a later file for the day replaced it"
    return None, None


def _from_partner_item(item: partner_quarantine.QuarantineItem, ledger) -> QuarantineRecord:
    reason = item.reason
    day_held = item.id.split("/")[1]
    counts = reason.get("counts")
    resolved_at, resolution = _partner_resolution(item, ledger)
    partner = str(reason.get("partner", item.id.split("/")[0]))
    return QuarantineRecord(
        id=f"{PARTNER_SOURCE}/{item.id}",
        kind=PARTNER_FILE,
        source=PARTNER_SOURCE,
        table=partner,
        what=f"{partner}/{reason.get('file_name', item.path.name)}",
        ds=dt.date.fromisoformat(reason.get("business_date") or day_held),
        run_id=str(reason.get("run_id") or ""),
        status=item.state,
        quarantined_at=_utc_naive(reason.get("quarantined_at"))
        or dt.datetime.fromtimestamp(item.path.stat().st_mtime, dt.UTC).replace(tzinfo=None, microsecond=0),
        resolved_at=resolved_at,
        row_count=counts.get("rows_quarantined") if counts else None,
        failed_checks=_partner_failed_checks(reason),
        reason=str(reason.get("summary", "")),
        resolution=resolution,
        folder=item.path,
    )


def _partner_ledger(settings: Settings):
    """The partner ledger if partner files were ever processed (it says which held files were superseded)."""
    from ingestion.partner_files.ledger import Ledger
    from ingestion.partner_files.process import ledger_path

    path = ledger_path(settings)
    return Ledger(path) if path.exists() else None  # opening it would create it


def partner_records(settings: Settings) -> list[QuarantineRecord]:
    """Every partner file ever held, whatever its status."""
    if not partner_quarantine.quarantine_root(settings).exists():
        return []
    ledger = _partner_ledger(settings)
    found = []
    for item in partner_quarantine.items(settings, ledger, include_closed=True):
        try:
            found.append(_from_partner_item(item, ledger))
        except (KeyError, TypeError, ValueError) as error:
            # Gate 1 and the freshness check sync ops.quarantine: a malformed folder must not fail them.
            log.warning("partner quarantine item %s cannot be read, skipped: %s", item.id, error)
    return found


def records(settings: Settings, status: str | None = None, kind: str | None = None) -> list[QuarantineRecord]:
    """Everything quarantined, both kinds, newest first; optionally only one status or kind."""
    found: list[QuarantineRecord] = []
    if kind in (None, GATE1_BATCH):
        found += [_from_batch(settings, e) for e in gate1_quarantine.list_entries(settings)]
    if kind in (None, PARTNER_FILE):
        found += partner_records(settings)
    found = [r for r in found if status is None or r.status == status]
    return sorted(found, key=lambda r: (r.quarantined_at, r.id), reverse=True)


def find(settings: Settings, ref: str) -> QuarantineRecord:
    """The record whose id is `ref`, or the only one it identifies.

    Accepted: an id or a unique prefix of one (of either kind); a partner file's id as the partner
    tools print it (without `partner_files/`), or a prefix (6+ characters) of its checksum or
    folder name. When a prefix matches several records and only one is held, that one.
    """
    ref = ref.strip().strip("/")
    every = records(settings)
    exact = [r for r in every if ref in (r.id, r.partner_id if r.kind == PARTNER_FILE else None)]
    if exact:
        return exact[0]
    matches = [
        r
        for r in every
        if r.id.startswith(ref)
        or (
            r.kind == PARTNER_FILE
            and (
                r.partner_id.startswith(ref)
                or (len(ref) >= 6 and (r.folder.name.startswith(ref) or _sha256(r).startswith(ref)))
            )
        )
    ]
    if not matches:
        raise QuarantineError(f"nothing quarantined matches {ref!r}; see `python -m quality quarantine list --all`")
    if len(matches) > 1:
        held = [r for r in matches if r.status == HELD]
        if len(held) == 1:
            return held[0]
        raise QuarantineError(f"{ref!r} matches several entries: {', '.join(r.id for r in matches)}")
    return matches[0]


def _sha256(record: QuarantineRecord) -> str:
    return str(_read_json(record.folder / "reason.json").get("sha256") or "")


def reason_document(record: QuarantineRecord) -> dict[str, Any]:
    """The record's reason.json; a partner file's with its full id, its kind and its current status."""
    reason = _read_json(record.folder / "reason.json")
    if record.kind == GATE1_BATCH:
        return reason  # kept up to date by gate 1's actions
    return {**reason, "id": record.id, "kind": record.kind, "status": record.status}


def report(settings: Settings, record: QuarantineRecord) -> str:
    """The record's REPORT.md as it reads now (a partner file's report gets its current status)."""
    if record.kind == GATE1_BATCH:
        return gate1_quarantine.render_report(gate1_quarantine.find(settings, record.id))
    text = partner_quarantine.render_report(_read_json(record.folder / "reason.json"))
    status = f"\n## Status\n\n**{record.status}**"
    if record.resolution:
        status += f" ({record.resolved_at} UTC): {record.resolution}"
    return text + status + "\n"


def release_partner_file(
    settings: Settings, record: QuarantineRecord, *, to_partner: str | None = None, force: bool = False
) -> Path:
    """What `python -m ingestion.partner_files release` does: the (fixed) file back to the inbox."""
    from ingestion.partner_files.ledger import Ledger
    from ingestion.partner_files.process import inbox_dir, ledger_path

    try:
        return partner_quarantine.release(
            settings,
            Ledger(ledger_path(settings)),
            record.partner_id,
            inbox=inbox_dir(settings),
            to_partner=to_partner,
            force=force,
        )
    except (LookupError, RuntimeError, FileNotFoundError, FileExistsError) as error:
        raise QuarantineError(str(error)) from error


def dismiss_partner_file(settings: Settings, record: QuarantineRecord, note: str) -> None:
    """What `python -m ingestion.partner_files dismiss` does: close a held file without releasing it."""
    try:
        partner_quarantine.dismiss(settings, record.partner_id, note)
    except (LookupError, RuntimeError) as error:
        raise QuarantineError(str(error)) from error


# --- ops.quarantine ---------------------------------------------------------------------------

_COLUMNS = (
    "quarantine_id, source, table_name, ds, run_id, status, quarantined_at, resolved_at, row_count, "
    "failed_expectations, reason, resolution"
)


def table_rows(found: Sequence[QuarantineRecord]) -> list[tuple]:
    return [
        (
            r.id,
            r.source,
            r.table,
            r.ds,
            r.run_id,
            r.status,
            r.quarantined_at,
            r.resolved_at,
            r.row_count,
            r.failed_checks,
            r.reason,
            r.resolution,
        )
        for r in found
    ]


def write_table(con, settings: Settings) -> int:
    """Rebuild `ops.quarantine` from both quarantine folders on an open read-write connection; rows."""
    from quality.health import ensure_ops_tables

    rows = table_rows(records(settings))
    ensure_ops_tables(con)
    con.execute("begin transaction")
    try:
        con.execute("delete from ops.quarantine")
        if rows:
            con.executemany(f"insert into ops.quarantine ({_COLUMNS}) values ({', '.join(['?'] * 12)})", rows)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return len(rows)


def sync_table(settings: Settings, wait_seconds: float = 0.0) -> int:
    """Rebuild `ops.quarantine` in the warehouse from the folders; rows written."""
    from core.duckdb_connect import connect_file

    con = connect_file(settings, wait_seconds=wait_seconds)
    try:
        return write_table(con, settings)
    finally:
        con.close()


def sync_table_best_effort(settings: Settings, wait_seconds: float = 60.0) -> int | None:
    """`sync_table`, but a busy warehouse only logs: the folder is the truth and the next sync catches up."""
    import duckdb

    try:
        return sync_table(settings, wait_seconds=wait_seconds)
    except duckdb.Error as error:
        log.warning("warehouse busy, ops.quarantine not updated (the next sync does it): %s", error)
        return None

"""Quarantine: landed batches that failed gate 1, held out of `lake/raw` with the reason.

A failed batch's partition folder moves (one rename) from
`lake/raw/<source>/<table>/ds=<ds>/` to `lake/quarantine/<source>/<table>/ds=<ds>/<run>/`,
next to `reason.json` (machine-readable: the gate result, every failed expectation, the
manifest, the history of what was done) and `REPORT.md` (the same for people). Nothing of it
can be loaded: the loader reads only `lake/raw`. The folder is the truth; `ops.quarantine`
in the warehouse is rebuilt from it (`sync_table`) for the Data health dashboard, together with
the partner files held by the inbox: `quality.quarantine_records` reads both kinds as one record.

Ways out (statuses: held -> released | superseded):
- **Re-extract** (the usual fix, for bad data at the source): fix the source, re-run the day.
  When a new batch of the same source/table/day passes gate 1, the held one is marked
  `superseded` automatically (its files stay as evidence).
- **Release** (the batch itself was fine, or was corrected in place): `release` re-runs gate 1
  on the held files with the current suites; only if it passes do the files move back to
  `lake/raw`, then the day is loaded by clearing the DAG run's `gate_landed` task. A batch that
  still fails stays held and the command fails with the reason.
- **Patch** (correct the held batch in place, on the record): `patch --sql` runs one SQL
  statement on the batch (a table named `batch`), rewrites the file in the contract's schema,
  updates the manifest and logs the statement in `reason.json`. Then `release`.

CLI: `python -m quality quarantine list|show|patch|release|dismiss` (list, show and release take
held partner files too; patch is for gate-1 batches, dismiss for partner files).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from core.files import safe_file_name
from core.settings import Settings
from ingestion.lake import MANIFEST, PartitionManifest, partition_dir
from quality.results import GateResult

REASON_FILE = "reason.json"
REPORT_FILE = "REPORT.md"
HELD, RELEASED, SUPERSEDED = "held", "released", "superseded"

log = logging.getLogger(__name__)


class QuarantineError(RuntimeError):
    """A quarantine action that cannot be done (unknown id, not held, a newer batch in the way)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


@dataclass
class QuarantineEntry:
    """One held batch: what `reason.json` holds."""

    quarantine_id: str
    source: str
    table: str
    ds: str
    run_id: str
    status: str
    quarantined_at: str
    reason: str
    failures: list[dict[str, Any]]
    manifest: dict[str, Any]
    files: list[str]
    docs_index: str | None = None
    resolved_at: str | None = None
    resolution: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def folder(self, settings: Settings) -> Path:
        return settings.quarantine_dir / self.quarantine_id


def quarantine_id(source: str, table: str, ds: str, run_id: str) -> str:
    return f"{source}/{table}/ds={ds}/{safe_file_name(run_id)}"


def _write(entry: QuarantineEntry, folder: Path) -> None:
    tmp = folder / f".{REASON_FILE}.tmp"
    tmp.write_text(json.dumps(asdict(entry), indent=2, default=str) + "\n")
    os.replace(tmp, folder / REASON_FILE)
    (folder / REPORT_FILE).write_text(render_report(entry))


def render_report(entry: QuarantineEntry) -> str:
    """REPORT.md: what is held, why, and what to do about it."""
    lines = [
        f"# Quarantined: {entry.source}.{entry.table} ds={entry.ds}",
        "",
        f"- **status**: {entry.status}" + (f" ({entry.resolution}, {entry.resolved_at})" if entry.resolution else ""),
        f"- **run**: `{entry.run_id}`",
        f"- **quarantined at**: {entry.quarantined_at} UTC",
        f"- **rows**: {entry.manifest.get('row_count')}  **file**: {', '.join(entry.files)}",
        f"- **id**: `{entry.quarantine_id}`",
        "",
        "## Why",
        "",
        entry.reason,
        "",
        "| expectation | column | severity | observed |",
        "| --- | --- | --- | --- |",
    ]
    for failure in entry.failures:
        observed = str(failure.get("observed_value", "")).replace("|", "\\|")
        lines.append(
            f"| {failure.get('expectation')} | {failure.get('column_name') or ''} | {failure.get('severity')} "
            f"| {observed} |"
        )
    lines += [
        "",
        "## What to do",
        "",
        "- Bad data at the source: fix it there and re-run the day (clear the DAG run, or `make pipeline "
        f"FROM={entry.ds} TO={entry.ds}`). A new batch that passes gate 1 marks this one superseded.",
        "- The batch is right (the check was wrong, now fixed in `quality/specs.py`): "
        f"`python -m quality quarantine release {entry.quarantine_id}`, then clear `gate_landed` of the run.",
        f"- Correct the held batch in place: `python -m quality quarantine patch {entry.quarantine_id} "
        '--sql "update batch set ..."`, then release it.',
    ]
    if entry.docs_index:
        lines += ["", f"Great Expectations Data Docs: {entry.docs_index}"]
    if entry.history:
        lines += ["", "## History", ""]
        lines += [f"- {h.get('at')}: {h.get('action')} - {h.get('detail', '')}" for h in entry.history]
    return "\n".join(lines) + "\n"


def quarantine_partition(settings: Settings, manifest: PartitionManifest, result: GateResult) -> QuarantineEntry:
    """Move one landed partition out of `lake/raw` into quarantine, with the gate result."""
    source_dir = partition_dir(settings.lake_raw_dir, manifest.source, manifest.table, manifest.ds)
    landed = source_dir / MANIFEST
    if not landed.exists():
        raise QuarantineError(f"{source_dir} has no {MANIFEST}: nothing to quarantine")
    current = json.loads(landed.read_text())
    if current.get("run_id") != manifest.run_id or current.get("file") != manifest.file:
        # A newer landing replaced the partition since the gate ran: that one was not judged.
        raise QuarantineError(
            f"{source_dir} now holds run {current.get('run_id')!r}, not the gated run {manifest.run_id!r}"
        )
    ident = quarantine_id(manifest.source, manifest.table, manifest.ds, manifest.run_id)
    target = settings.quarantine_dir / ident
    if target.exists():
        shutil.rmtree(target)  # the same run quarantined again (a retried gate): keep the newest verdict
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(source_dir, target)  # same file system (both under LAKE_DIR): atomic
    failures = [
        {
            "suite": o.suite,
            "expectation": o.expectation,
            "column_name": o.column_name,
            "severity": o.severity,
            "status": o.status,
            "observed_value": o.observed_value,
            "details": o.details,
        }
        for o in result.outcomes
        if not o.success
    ]
    now = _now().isoformat()
    entry = QuarantineEntry(
        quarantine_id=ident,
        source=manifest.source,
        table=manifest.table,
        ds=str(manifest.ds),
        run_id=manifest.run_id,
        status=HELD,
        quarantined_at=now,
        reason=result.reason,
        failures=failures,
        manifest=current,
        files=sorted(p.name for p in target.glob("*.parquet")),
        docs_index=str(result.docs_index) if result.docs_index else None,
        history=[{"at": now, "action": "quarantined", "detail": result.reason}],
    )
    _write(entry, target)
    return entry


def list_entries(settings: Settings, status: str | None = None) -> list[QuarantineEntry]:
    """Every quarantined batch (newest first), optionally only those with `status`."""
    root = settings.quarantine_dir
    entries = []
    for path in root.glob(f"*/*/ds=*/*/{REASON_FILE}") if root.exists() else []:
        try:
            entry = QuarantineEntry(**json.loads(path.read_text()))
        except (TypeError, ValueError):
            continue  # not a gate-1 entry (another tool's quarantine layout)
        if status is None or entry.status == status:
            entries.append(entry)
    return sorted(entries, key=lambda e: (e.quarantined_at, e.quarantine_id), reverse=True)


def find(settings: Settings, ident: str) -> QuarantineEntry:
    """The entry whose id is `ident`, or the only one whose id starts with it."""
    ident = ident.strip().strip("/")
    entries = list_entries(settings)
    exact = [e for e in entries if e.quarantine_id == ident]
    matches = exact or [e for e in entries if e.quarantine_id.startswith(ident)]
    if not matches:
        raise QuarantineError(f"nothing quarantined matches {ident!r}; see `python -m quality quarantine list`")
    if len(matches) > 1:
        held = [e for e in matches if e.status == HELD]
        if len(held) == 1:
            return held[0]
        ids = ", ".join(e.quarantine_id for e in matches)
        raise QuarantineError(f"{ident!r} matches several entries: {ids}")
    return matches[0]


def held_entry(settings: Settings, source: str, table: str, ds: str, run_id: str) -> QuarantineEntry | None:
    folder = settings.quarantine_dir / quarantine_id(source, table, ds, run_id)
    if not (folder / REASON_FILE).exists():
        return None
    entry = QuarantineEntry(**json.loads((folder / REASON_FILE).read_text()))
    return entry if entry.status == HELD else None


def _resolve(settings: Settings, entry: QuarantineEntry, status: str, resolution: str) -> QuarantineEntry:
    now = _now().isoformat()
    resolved = replace(
        entry,
        status=status,
        resolved_at=now,
        resolution=resolution,
        history=[*entry.history, {"at": now, "action": status, "detail": resolution}],
    )
    _write(resolved, entry.folder(settings))
    return resolved


def supersede(settings: Settings, source: str, table: str, ds: str, run_id: str) -> list[QuarantineEntry]:
    """Mark held batches of (source, table, ds) superseded by run `run_id`, which passed gate 1."""
    day_dir = settings.quarantine_dir / source / table / f"ds={ds}"
    done = []
    for path in sorted(day_dir.glob(f"*/{REASON_FILE}")) if day_dir.exists() else []:
        entry = QuarantineEntry(**json.loads(path.read_text()))
        if entry.status == HELD and entry.run_id != run_id:
            done.append(_resolve(settings, entry, SUPERSEDED, f"a new batch (run {run_id}) passed gate 1"))
    return done


def release(settings: Settings, ident: str, run_id: str | None = None, docs: Path | None = None) -> GateResult:
    """Re-run gate 1 on a held batch; if it passes, move it back to `lake/raw`. Returns the result.

    The result is recorded in `ops.data_health` and `ops.quarantine` is rebuilt (waiting up to a
    minute if the warehouse is busy). A batch that still fails stays held (its history says so)
    and `GateFailed` is raised.
    """
    from quality.gates import validate_landed_batch

    entry = find(settings, ident)
    if entry.status != HELD:
        raise QuarantineError(f"{entry.quarantine_id} is {entry.status}, not held: nothing to release")
    folder = entry.folder(settings)
    target = partition_dir(settings.lake_raw_dir, entry.source, entry.table, entry.ds)
    if (target / MANIFEST).exists():
        other = json.loads((target / MANIFEST).read_text()).get("run_id")
        raise QuarantineError(
            f"{target} already holds a batch (run {other!r}); releasing would replace it. Move it away first "
            "if the held batch is the one to keep."
        )
    paths = [folder / name for name in entry.files]
    result = validate_landed_batch(entry.table, paths, run_id or f"release__{entry.run_id}", entry.ds, docs=docs)
    now = _now().isoformat()
    if result.success:
        # Move the data files back through a hidden folder, then one rename: readers never see half.
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".release-{safe_file_name(entry.run_id)}-{target.name}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for name in [*entry.files, MANIFEST]:
            os.rename(folder / name, staging / name)
        os.rename(staging, target)
        _resolve(settings, entry, RELEASED, f"gate 1 passed on release: {result.reason}")
    else:
        entry.history.append({"at": now, "action": "release refused", "detail": result.reason})
        _write(entry, folder)
    _record(settings, result)
    return result.raise_for_failure()


def _record(settings: Settings, result: GateResult) -> None:
    """Gate result and the rebuilt ops.quarantine, in one warehouse session (best effort)."""
    import duckdb

    from core.duckdb_connect import connect_file
    from quality.health import write_results

    try:
        con = connect_file(settings, wait_seconds=60)
    except duckdb.Error as error:
        # The folder is the truth; ops.quarantine catches up at the next gate run or freshness check.
        log.warning("warehouse busy, ops tables not updated: %s", error)
        return
    try:
        write_results(con, [result])
        write_table(con, settings)
    finally:
        con.close()


def patch(settings: Settings, ident: str, sql: str) -> QuarantineEntry:
    """Correct a held batch in place with one SQL statement on a table named `batch`.

    The rewritten file keeps the contract's column types (the result is cast back to the
    original Arrow schema); the manifest's row count, size and checksum are updated; the
    statement is logged in the entry's history. Release the batch afterwards.
    """
    import duckdb
    import pyarrow.parquet as pq

    entry = find(settings, ident)
    if entry.status != HELD:
        raise QuarantineError(f"{entry.quarantine_id} is {entry.status}, not held: nothing to patch")
    if len(entry.files) != 1:
        raise QuarantineError(f"{entry.quarantine_id} has {len(entry.files)} files; patch expects one")
    folder = entry.folder(settings)
    path = folder / entry.files[0]
    original = pq.read_table(path)
    con = duckdb.connect()
    try:
        con.execute("create table batch as select * from original")
        con.execute(sql)
        patched = con.sql("select * from batch").to_arrow_table()
    finally:
        con.close()
    if patched.schema.names != original.schema.names:
        raise QuarantineError(f"the patch changed the columns: {patched.schema.names} != {original.schema.names}")
    patched = patched.cast(original.schema)
    tmp = folder / f".{path.name}.tmp"
    pq.write_table(patched, tmp, compression="zstd")
    os.replace(tmp, path)
    data = path.read_bytes()
    manifest = {
        **entry.manifest,
        "row_count": patched.num_rows,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }  # the lake's PartitionManifest fields only: the loader reads it back as one
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    entry.manifest = manifest
    detail = re.sub(r"\s+", " ", sql).strip()
    entry.history.append(
        {
            "at": _now().isoformat(),
            "action": "patched",
            "detail": f"{detail} ({original.num_rows} -> {patched.num_rows} rows)",
        }
    )
    _write(entry, folder)
    return entry


def write_table(con, settings: Settings) -> int:
    """Rebuild `ops.quarantine` on an open read-write connection: gate-1 batches and partner files alike."""
    from quality.quarantine_records import write_table as write_every_kind

    return write_every_kind(con, settings)


def sync_table(settings: Settings, wait_seconds: float = 0.0) -> int:
    """Rebuild `ops.quarantine` in the warehouse from the folders (both kinds); rows written."""
    from quality.quarantine_records import sync_table as sync_every_kind

    return sync_every_kind(settings, wait_seconds=wait_seconds)

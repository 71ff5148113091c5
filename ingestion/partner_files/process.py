"""Process the partner inbox: every dropped file is landed, or quarantined, exactly once.

Flow of one file in `lake/inbox/<partner>/` (the `partner_files` DAG's `process` task):
1. wait until the file has settled (not modified for PARTNER_FILES_SETTLE_SECONDS); names starting
   with "." are uploads in progress and are not touched;
2. sha256 of its bytes; the ledger (`ledger.py`) says whether this content was seen before. Seen
   and finished -> a *duplicate*: recorded as a receipt, removed from the inbox, nothing loaded;
3. archive the bytes unchanged: `lake/raw/partner_files/<partner>/_files/<sha256>.<ext>`;
4. check it against the partner's contract (`validate.py`: encoding, header, truncation, types,
   ranges, keys) and apply the policy below;
5. good rows -> `lake/raw/partner_files/<partner>/ds=<business date>/part-<run_id>.parquet`
   (`ingestion.lake.write_partition`: atomic swap); held rows or files -> `lake/quarantine/...`
   (`quarantine.py`) with `reason.json` and `REPORT.md`, and an alert;
6. the ledger records the outcome; only then is the file removed from the inbox.
A crash anywhere before step 6 leaves the file in the inbox and the ledger without a finished
entry, so the next run redoes it; every write it repeats replaces (partition, quarantine folder,
archive), so nothing is doubled. `load_landed` (the DAG's `load` task, in the warehouse pool)
then replaces those days of `raw.partner_<partner>` with `ingestion.warehouse.load_batch`.

**Policy for partly bad files.** A fault of the file itself (name without a business date, wrong
extension, empty, not in an accepted encoding, wrong header or fields, truncated, not parseable)
quarantines the whole file. Otherwise each row is checked; if the bad rows are at most
`max_bad_row_ratio` of the file's rows (5% by default, per contract; PARTNER_FILES_MAX_BAD_ROW_RATIO
overrides it), the good rows are loaded and the bad rows are quarantined with their row numbers
and reasons. Above the threshold the whole file is quarantined: that many bad rows means the export
is broken, and loading a part of it would look complete while it is not. Either way nothing is
dropped silently: every row of the file is counted once as loaded or quarantined, and
rows in = loaded + quarantined is asserted before the outcome is recorded.

**One file per partner and business day.** The business date comes from the file name and is the
partition `ds`. A later file for the same partner and day replaces that day (a corrected re-send);
the earlier file is marked `superseded` in the ledger. Files without a date in their name are
quarantined rather than dated by processing day, because two such files would replace each other.
**A file with no data rows never replaces a day that holds rows** (a header only, `[]`): an
export that lost its rows looks exactly like that, so it is quarantined with the day's row count
as the reason, unless the contract's `allow_empty_replacement` (or
PARTNER_FILES_ALLOW_EMPTY_REPLACEMENT=1) says an empty file is a real "no rows any more".

**Every file on its own.** Anyone who can write to the inbox chooses its content, so one file can
never stop the others; a hostile or broken file is quarantined with its reason and the run goes
on with the next one:
- only regular files are read (`inbox.py`: lstat, O_NOFOLLOW | O_NONBLOCK, fstat). Symlinks,
  FIFOs, sockets, devices and hard-linked files are refused unread: recorded in the ledger and the
  quarantine, then removed from the inbox (a file over the size limit is moved to quarantine whole);
- limits (`limits.py`) on size, name length, JSON nesting, the age of the business date, and time:
  the contract check runs in a worker process (`sandbox.py`) that is killed past the time limit;
- anything unexpected while processing one file quarantines that file as an internal error
  instead of failing the run, so no ledger entry stays `processing` after a run. Only a fault of
  the pipeline itself (the check worker cannot start) fails the run, leaving the file in the inbox
  for the retry;
- everything the run writes to the lake and the quarantine is the pipeline user's only (files
  0600, folders 0700): partner files may hold personal data.

Fault injection for tests: PARTNER_FILES_FAULT=after_archive|after_land|after_ledger|after_load makes
the process die on the spot (os._exit, like kill -9) at that point.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import shutil
import stat
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa

from core.duckdb_connect import connect_file
from core.private_files import private_umask
from core.settings import Settings
from ingestion.lake import read_manifest, write_partition
from ingestion.partner_files import quarantine
from ingestion.partner_files.contracts import CONTRACTS, SOURCE_NAME, PartnerContract
from ingestion.partner_files.inbox import (
    INBOX_ROOT_PARTNER,
    InboxEntry,
    Refused,
    display_name,
    entry_identity,
    list_entries,
    name_problem,
    read_regular,
    refusal_for,
    safe_component,
    safe_extension,
)
from ingestion.partner_files.ledger import DONE, FileEntry, Ledger
from ingestion.partner_files.limits import Limits
from ingestion.partner_files.sandbox import CheckFailed, CheckWorker, WorkerUnavailable, shared_worker
from ingestion.partner_files.validate import CheckedFile, FileError, business_date_from_name, count_lines
from ingestion.warehouse import LoadResult, load_batch

log = logging.getLogger(__name__)


def inbox_dir(settings: Settings) -> Path:
    return settings.lake_dir / "inbox"


def ledger_path(settings: Settings) -> Path:
    return settings.lake_raw_dir / SOURCE_NAME / "_ledger.sqlite"


def archive_path(settings: Settings, partner: str, sha256: str, file_name: str) -> Path:
    return settings.lake_raw_dir / SOURCE_NAME / partner / "_files" / f"{sha256}{safe_extension(file_name)}"


def max_bad_row_ratio(contract: PartnerContract) -> float:
    override = os.environ.get("PARTNER_FILES_MAX_BAD_ROW_RATIO")
    return float(override) if override else contract.max_bad_row_ratio


def settle_seconds_default() -> float:
    return float(os.environ.get("PARTNER_FILES_SETTLE_SECONDS", "5"))


@dataclass(frozen=True, kw_only=True)
class FileOutcome:
    """What one run did with one dropped file (keyword arguments only: eleven fields read badly by position)."""

    partner: str
    file_name: str  # as shown in logs and reports (undecodable bytes and control characters escaped)
    sha256: str
    outcome: str  # loaded | loaded_partial | quarantined | duplicate | cleared | skipped
    ds: str | None = None
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    quarantine_id: str | None = None
    reason: str | None = None
    seconds: float = 0.0


@dataclass
class InboxSummary:
    run_id: str
    files: list[FileOutcome] = field(default_factory=list)

    @property
    def outcomes(self) -> dict[str, int]:
        return dict(Counter(f.outcome for f in self.files))

    @property
    def landed(self) -> list[FileOutcome]:
        return [f for f in self.files if f.outcome in ("loaded", "loaded_partial")]

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "outcomes": self.outcomes,
            "rows_in": sum(f.rows_in for f in self.files if f.outcome not in ("duplicate", "cleared")),
            "rows_loaded": sum(f.rows_loaded for f in self.landed),
            "rows_quarantined": sum(f.rows_quarantined for f in self.files if f.outcome != "duplicate"),
            "files": [asdict(f) for f in self.files],
        }


@dataclass
class _Progress:
    """How far one file got, for the fallback when processing it fails unexpectedly."""

    sha256: str | None = None


def _fault_point(name: str) -> None:
    if os.environ.get("PARTNER_FILES_FAULT") == name:
        log.error("PARTNER_FILES_FAULT=%s: dying here on purpose", name)
        logging.shutdown()
        os._exit(137)


def process_inbox(
    settings: Settings,
    run_id: str,
    *,
    settle_seconds: float | None = None,
    today: dt.date | None = None,
) -> InboxSummary:
    """Process every file waiting in the inbox; see the module docstring for the rules."""
    inbox = inbox_dir(settings)
    for partner in CONTRACTS:  # so partners (and engineers) see where to drop files
        (inbox / partner).mkdir(parents=True, exist_ok=True)
    limits = Limits.from_env()
    settle = settle_seconds_default() if settle_seconds is None else settle_seconds
    day = today or dt.datetime.now(dt.UTC).date()
    summary = InboxSummary(run_id)
    # Partner files may hold personal data: archive, lake partitions, quarantine and ledger are
    # created private by whatever writes them in this block.
    with private_umask():
        ledger = Ledger(ledger_path(settings))
        worker = shared_worker()
        with _inbox_lock(settings):
            entries = list_entries(inbox)
            if any(e.kind == "regular" and e.partner in CONTRACTS for e in entries):
                worker.prestart()
            for entry in entries:
                summary.files.append(_process_entry(settings, ledger, worker, entry, run_id, day, settle, limits))
    held = [f"{f.partner}/{f.file_name}" for f in summary.files if f.outcome == "quarantined"]
    log.info(
        "partner inbox run %s: %s%s",
        run_id,
        summary.outcomes or "no files",
        f"; quarantined: {', '.join(held)}" if held else "",
    )
    return summary


@contextmanager
def _inbox_lock(settings: Settings) -> Iterator[None]:
    """One inbox run at a time (the DAG runs one at a time; this also covers the CLI beside it)."""
    path = ledger_path(settings).with_name(".process.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("another partner-files run is processing the inbox; waiting for it to finish")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _process_entry(
    settings: Settings,
    ledger: Ledger,
    worker: CheckWorker,
    entry: InboxEntry,
    run_id: str,
    today: dt.date,
    settle: float,
    limits: Limits,
) -> FileOutcome:
    """One inbox entry, whatever it is; never raises (but a fault point still kills the process)."""
    shown = display_name(entry.path.name)
    progress = _Progress()
    try:
        if entry.kind == "directory":
            return _hold_directory(settings, entry.partner, entry.path, today, run_id)
        if entry.kind != "regular":
            refused = refusal_for(entry.kind, entry.path, entry.stat)
            return _refuse(settings, ledger, entry.partner, entry.path, refused, run_id, today)
        if not _wait_until_settled(entry.path, settle):
            return FileOutcome(
                partner=entry.partner, file_name=shown, sha256="", outcome="skipped", reason="still being written"
            )
        return process_file(
            settings, ledger, entry.partner, entry.path, run_id, today, limits=limits, worker=worker, progress=progress
        )
    except WorkerUnavailable:
        raise  # the pipeline's own fault: fail the run (the file stays in the inbox for the retry)
    except Exception as exc:
        if progress.sha256 is None and not os.path.lexists(entry.path):
            return FileOutcome(
                partner=entry.partner,
                file_name=shown,
                sha256="",
                outcome="skipped",
                reason="removed from the inbox before it was read",
            )
        log.exception("%s/%s: processing failed; holding the file and going on", entry.partner, shown)
        try:
            return _hold_after_error(settings, ledger, entry, run_id, today, exc, progress.sha256)
        except Exception as again:
            log.exception("%s/%s: could not be quarantined either; it stays in the inbox", entry.partner, shown)
            return FileOutcome(
                partner=entry.partner,
                file_name=shown,
                sha256=progress.sha256 or "",
                outcome="skipped",
                reason=f"processing failed ({_first_line(exc)}) and so did holding it ({_first_line(again)})",
            )


def process_file(
    settings: Settings,
    ledger: Ledger,
    partner: str,
    path: Path,
    run_id: str,
    today: dt.date,
    *,
    limits: Limits | None = None,
    worker: CheckWorker | None = None,
    progress: _Progress | None = None,
) -> FileOutcome:
    """Land or quarantine one file, exactly once per content.

    The steps: read it (a file refused unread, or content seen before, ends here), claim and
    archive it, judge it against the contract and the policy, hold what is bad and land what is
    good, then record the outcome and clear the inbox.
    """
    limits = limits or Limits.from_env()
    worker = worker or shared_worker()
    progress = progress or _Progress()
    began = time.monotonic()
    try:
        data, _ = read_regular(path, limits.max_bytes)
    except Refused as refused:
        return _refuse(settings, ledger, partner, path, refused, run_id, today)
    sha = hashlib.sha256(data).hexdigest()
    progress.sha256 = sha
    seen = ledger.get(sha)
    if seen is not None and seen.status in DONE:
        return _already_seen(ledger, seen, partner, path, run_id)

    received = _claim_and_archive(settings, ledger, partner, path, data, sha, run_id)
    verdict = _judge(settings, received, today, limits, worker)
    qid = _hold(settings, received, verdict, run_id, today, limits) if verdict.decision != "loaded" else None
    if verdict.decision != "quarantined":
        _land(settings, received, verdict, run_id)
    _fault_point("after_land")
    return _record(settings, ledger, received, verdict, qid, began)


@dataclass(frozen=True, kw_only=True)
class _Received:
    """One file read from the inbox and claimed in the ledger: its bytes and where they are archived."""

    partner: str
    path: Path
    shown: str  # the name as logs and reports show it
    data: bytes
    sha256: str
    contract: PartnerContract | None  # None: dropped outside any known partner folder
    archived: Path | None


@dataclass(frozen=True, kw_only=True)
class _Verdict:
    """What the contract check and the policy decided for one file."""

    checked: CheckedFile
    ds: str | None  # the business date: the lake partition the good rows go to
    decision: str  # loaded | loaded_partial | quarantined
    reason: str
    max_bad_row_ratio: float
    bad_row_ratio: float | None
    rows_loaded: int
    rows_quarantined: int


def _claim_and_archive(
    settings: Settings, ledger: Ledger, partner: str, path: Path, data: bytes, sha: str, run_id: str
) -> _Received:
    """Start the ledger entry and keep the bytes unchanged (content-addressed) before judging them."""
    shown = display_name(path.name)
    ledger.start(sha, partner, shown, len(data), run_id)
    contract = CONTRACTS.get(partner)
    archived = None
    if contract is not None:
        archived = archive_path(settings, partner, sha, path.name)
        _write_once(archived, data)
    _fault_point("after_archive")
    return _Received(
        partner=partner, path=path, shown=shown, data=data, sha256=sha, contract=contract, archived=archived
    )


def _judge(settings: Settings, received: _Received, today: dt.date, limits: Limits, worker: CheckWorker) -> _Verdict:
    """The contract check, the empty-file rule and the bad-row policy; asserts every row is counted once."""
    contract = received.contract
    checked = _check(
        received.data, received.path.name, received.partner, contract, received.archived, today, limits, worker
    )
    ratio = max_bad_row_ratio(contract) if contract is not None else 0.0
    ds = str(checked.business_date) if checked.business_date else None
    if contract is not None and ds is not None and checked.file_error is None and checked.rows_in == 0:
        checked.file_error = _empty_replacement(settings, contract, ds, limits)
    decision, reason_text, bad_ratio = _decide(checked, ratio)
    rows_loaded = checked.rows_good if decision != "quarantined" else 0
    if decision != "quarantined" and rows_loaded + len(checked.bad_rows) != checked.rows_in:
        raise AssertionError(
            f"{received.shown}: {checked.rows_in} rows read but {rows_loaded} good + {len(checked.bad_rows)} bad"
        )
    return _Verdict(
        checked=checked,
        ds=ds,
        decision=decision,
        reason=reason_text,
        max_bad_row_ratio=ratio,
        bad_row_ratio=bad_ratio,
        rows_loaded=rows_loaded,
        rows_quarantined=checked.rows_in - rows_loaded,
    )


def _hold(
    settings: Settings, received: _Received, verdict: _Verdict, run_id: str, today: dt.date, limits: Limits
) -> str:
    """Write the quarantine folder (the file as received, the bad rows of a partial load); its id."""
    checked, contract, file_name = verdict.checked, received.contract, received.path.name
    qid = quarantine.item_id(received.partner, today, file_name, received.sha256)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    reason = {
        "id": qid,
        "summary": verdict.reason,
        "partner": received.partner,
        "partner_owner": contract.owner if contract else None,
        "file_name": received.shown,
        "held_as": quarantine.held_name(file_name, limits.max_name_bytes),
        "sha256": received.sha256,
        "bytes": len(received.data),
        "received_at": now,
        "quarantined_at": now,
        "run_id": run_id,
        "business_date": verdict.ds,
        "encoding": checked.encoding,
        "decision": verdict.decision,
        "policy": {"max_bad_row_ratio": verdict.max_bad_row_ratio, "bad_row_ratio": verdict.bad_row_ratio},
        "counts": {
            "rows_in": checked.rows_in,
            "rows_loaded": verdict.rows_loaded,
            "rows_quarantined": verdict.rows_quarantined,
            "rows_bad": len(checked.bad_rows) if not checked.file_error else verdict.rows_quarantined,
        },
        "file_error": asdict(checked.file_error) if checked.file_error else None,
        "row_errors": checked.errors_as_dicts(),
        "archive_path": str(received.archived) if received.archived else None,
        "contract": contract.describe() if contract else None,
    }
    bad_rows_file = _bad_rows_file(checked, contract, file_name) if verdict.decision == "loaded_partial" else None
    quarantine.write_item(settings, qid, reason, received.data, bad_rows_file)
    return qid


def _land(settings: Settings, received: _Received, verdict: _Verdict, run_id: str) -> None:
    """The good rows, with their lineage columns, into the day's lake partition (an atomic swap)."""
    contract, good = received.contract, verdict.checked.good
    assert contract is not None and good is not None and verdict.ds is not None
    table = _with_lineage(good, contract, received.sha256, received.shown)
    manifest = write_partition(
        settings.lake_raw_dir,
        SOURCE_NAME,
        received.partner,
        verdict.ds,
        table.to_batches(),
        contract.arrow_schema,
        run_id,
        watermark_column=contract.watermark_column,
    )
    if manifest.row_count != verdict.rows_loaded:
        raise RuntimeError(f"{received.shown}: landed {manifest.row_count} rows, expected {verdict.rows_loaded}")


def _record(
    settings: Settings, ledger: Ledger, received: _Received, verdict: _Verdict, qid: str | None, began: float
) -> FileOutcome:
    """The outcome in the ledger, then the file out of the inbox (in that order: see the module docstring)."""
    reason = verdict.reason if verdict.decision != "loaded" else None
    superseded = ledger.finish(
        received.sha256,
        status="quarantined" if verdict.decision == "quarantined" else "landed",
        decision=verdict.decision,
        reason=reason,
        ds=verdict.ds,
        encoding=verdict.checked.encoding,
        rows_in=verdict.checked.rows_in,
        rows_loaded=verdict.rows_loaded,
        rows_quarantined=verdict.rows_quarantined,
        quarantine_id=qid,
        archive_path=str(received.archived) if received.archived else None,
    )
    _fault_point("after_ledger")
    received.path.unlink()
    ledger.inbox_cleared(received.sha256)
    outcome = FileOutcome(
        partner=received.partner,
        file_name=received.shown,
        sha256=received.sha256,
        outcome=verdict.decision,
        ds=verdict.ds,
        rows_in=verdict.checked.rows_in,
        rows_loaded=verdict.rows_loaded,
        rows_quarantined=verdict.rows_quarantined,
        quarantine_id=qid,
        reason=reason,
        seconds=round(time.monotonic() - began, 3),
    )
    _log_and_alert(outcome, settings, superseded)
    return outcome


def _check(
    data: bytes,
    file_name: str,
    partner: str,
    contract: PartnerContract | None,
    archived: Path | None,
    today: dt.date,
    limits: Limits,
    worker: CheckWorker,
) -> CheckedFile:
    """The contract's verdict, from the worker process; a file it cannot judge gets a file error."""
    if contract is None:
        known = ", ".join(CONTRACTS)
        where = (
            "outside any partner folder"
            if partner == INBOX_ROOT_PARTNER
            else f"in unknown folder {display_name(partner)!r}"
        )
        return CheckedFile(
            None,
            None,
            max(data.count(b"\n") - 1, 0),
            file_error=FileError("unknown_partner", f"dropped {where}; partner folders are: {known}"),
        )
    header = contract.format == "csv"
    problem = name_problem(file_name, limits.max_name_bytes)
    if problem is not None:
        error = FileError("file_name", f"{problem}; rename the file and deliver it again")
        return CheckedFile(_date_in_name(file_name), None, count_lines(data, header=header), file_error=error)
    assert archived is not None
    try:
        return worker.check(archived, file_name, partner, today, limits)
    except CheckFailed as failed:
        error = FileError(failed.code, failed.message)
        return CheckedFile(_date_in_name(file_name), None, count_lines(data, header=header), file_error=error)


def _date_in_name(file_name: str) -> dt.date | None:
    try:
        return business_date_from_name(file_name)
    except ValueError:
        return None


def _empty_replacement(settings: Settings, contract: PartnerContract, ds: str, limits: Limits) -> FileError | None:
    """The policy for a file without data rows: it may not replace a day that holds rows."""
    allowed = (
        limits.allow_empty_replacement
        if limits.allow_empty_replacement is not None
        else contract.allow_empty_replacement
    )
    try:
        held = read_manifest(settings.lake_raw_dir, SOURCE_NAME, contract.partner, ds).row_count
    except FileNotFoundError:
        held = 0
    if allowed or held == 0:
        return None
    return FileError(
        "no_rows",
        f"no data rows; day {ds} already holds {held} rows (a file without rows never replaces a loaded "
        "day; allow_empty_replacement in the contract or PARTNER_FILES_ALLOW_EMPTY_REPLACEMENT=1 permits it)",
        {"ds": ds, "rows_held": held},
    )


def _decide(checked: CheckedFile, max_ratio: float) -> tuple[str, str, float | None]:
    """The policy: (decision, one-line reason, bad-row ratio)."""
    if checked.file_error is not None:
        return "quarantined", f"whole file quarantined: {checked.file_error.message}", None
    bad = len(checked.bad_rows)
    if bad == 0:
        return "loaded", f"all {checked.rows_in} rows loaded", 0.0
    ratio = bad / checked.rows_in
    if ratio <= max_ratio:
        return (
            "loaded_partial",
            f"{checked.rows_good} rows loaded, {bad} bad row(s) quarantined ({ratio:.1%} <= {max_ratio:.1%} limit)",
            ratio,
        )
    return (
        "quarantined",
        f"whole file quarantined: {bad} of {checked.rows_in} rows are bad ({ratio:.1%} > {max_ratio:.1%} limit)",
        ratio,
    )


def _refuse(
    settings: Settings,
    ledger: Ledger,
    partner: str,
    path: Path,
    refused: Refused,
    run_id: str,
    today: dt.date,
    *,
    identity: str | None = None,
    keep: bool | None = None,
) -> FileOutcome:
    """Quarantine an entry without reading it (a link, a FIFO, a file too large ...), then clear it.

    Its ledger id is its content's sha256 when known, else an id of the entry itself. A file is
    moved into its quarantine folder as it is (`keep`); anything else is only recorded and removed
    from the inbox, since it holds no delivery (a link's target is not the partner's to send).
    """
    began = time.monotonic()
    shown = display_name(path.name)
    content_known = identity is not None
    identity = identity or entry_identity(partner, path, refused.stat)
    keep = refused.code == "too_large" if keep is None else keep
    ds = _date_in_name(path.name)
    unread = "" if refused.code == "internal_error" else ", not read"
    summary = f"whole file quarantined{unread}: {refused.message}"
    held_as = quarantine.held_name(path.name) if keep else None
    known = ledger.get(identity)
    if known is not None and known.status in DONE and known.quarantine_id:
        qid = known.quarantine_id  # recorded by an earlier run that died before clearing the inbox
    else:
        qid = quarantine.item_id(partner, today, path.name, identity)
        ledger.start(identity, partner, shown, refused.stat.st_size, run_id)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        reason = {
            "id": qid,
            "summary": summary,
            "partner": partner,
            "partner_owner": CONTRACTS[partner].owner if partner in CONTRACTS else None,
            "file_name": shown,
            "held_as": held_as,
            "sha256": identity,
            "sha256_of": "the file's content"
            if content_known
            else "the inbox entry (name, inode, size, time): its content was not read",
            "bytes": refused.stat.st_size,
            "received_at": now,
            "quarantined_at": now,
            "run_id": run_id,
            "business_date": str(ds) if ds else None,
            "encoding": None,
            "decision": "quarantined",
            "policy": {"max_bad_row_ratio": None, "bad_row_ratio": None},
            "counts": {"rows_in": 0, "rows_loaded": 0, "rows_quarantined": 0, "rows_bad": 0},
            "file_error": {"code": refused.code, "message": refused.message, "details": refused.details},
            "row_errors": [],
            "archive_path": None,
            "contract": None,
        }
        quarantine.write_item(settings, qid, reason, None, None)
        ledger.finish(
            identity,
            status="quarantined",
            decision="quarantined",
            reason=summary,
            ds=reason["business_date"],
            encoding=None,
            rows_in=0,
            rows_loaded=0,
            rows_quarantined=0,
            quarantine_id=qid,
            archive_path=None,
        )
    _fault_point("after_ledger")
    if keep and held_as is not None:
        target = quarantine.quarantine_root(settings) / qid / held_as
        if not target.exists():
            shutil.move(str(path), str(target))  # a rename on the lake's file system
            _make_private(target)
    else:
        path.unlink(missing_ok=True)  # removes a link itself, never what it points at
    ledger.inbox_cleared(identity)
    outcome = FileOutcome(
        partner=partner,
        file_name=shown,
        sha256=identity,
        outcome="quarantined",
        ds=str(ds) if ds else None,
        quarantine_id=qid,
        reason=summary,
        seconds=round(time.monotonic() - began, 3),
    )
    _log_and_alert(outcome, settings, [])
    return outcome


def _hold_after_error(
    settings: Settings,
    ledger: Ledger,
    entry: InboxEntry,
    run_id: str,
    today: dt.date,
    exc: Exception,
    sha: str | None,
) -> FileOutcome:
    """The fallback for a file whose processing raised: quarantine it so the run can go on."""
    shown = display_name(entry.path.name)
    message = f"processing failed with {type(exc).__name__}: {_first_line(exc)} (an internal error)"
    known = ledger.get(sha) if sha else None
    if known is not None and known.status in DONE:
        # Its outcome is recorded; only clearing the inbox failed, which the next run completes.
        return FileOutcome(
            partner=entry.partner, file_name=shown, sha256=sha or "", outcome="skipped", ds=known.ds, reason=message
        )
    try:
        st = entry.path.lstat()
    except FileNotFoundError:
        st = entry.stat
    refused = Refused("internal_error", message, st)
    return _refuse(
        settings, ledger, entry.partner, entry.path, refused, run_id, today, identity=sha, keep=stat.S_ISREG(st.st_mode)
    )


def _already_seen(ledger: Ledger, entry: FileEntry, partner: str, path: Path, run_id: str) -> FileOutcome:
    shown = display_name(path.name)
    if entry.partner == partner and entry.file_name == shown and not entry.inbox_cleared:
        # A previous run recorded the outcome but died before removing the file: finish that.
        path.unlink()
        ledger.inbox_cleared(entry.sha256)
        log.warning("%s/%s was already %s; removed it from the inbox", partner, shown, entry.status)
        return FileOutcome(
            partner=partner,
            file_name=shown,
            sha256=entry.sha256,
            outcome="cleared",
            ds=entry.ds,
            reason=f"already {entry.status}",
        )
    ledger.duplicate(entry.sha256, partner, shown, run_id)
    path.unlink()
    held = f" (quarantine item {entry.quarantine_id})" if entry.quarantine_id else ""
    reason = (
        f"same content as {entry.partner}/{entry.file_name} (sha256 {entry.sha256[:12]}), already {entry.status}"
        f"{held}: not processed again"
    )
    log.warning("duplicate %s/%s: %s", partner, shown, reason)
    return FileOutcome(
        partner=partner, file_name=shown, sha256=entry.sha256, outcome="duplicate", ds=entry.ds, reason=reason
    )


def _with_lineage(good: pa.Table, contract: PartnerContract, sha: str, file_name: str) -> pa.Table:
    n = good.num_rows
    table = good.append_column("_file_sha256", pa.array([sha] * n, pa.string())).append_column(
        "_file_name", pa.array([file_name] * n, pa.string())
    )
    schema = contract.arrow_schema
    return table.select(schema.names).cast(schema)


def _bad_rows_file(checked: CheckedFile, contract: PartnerContract | None, file_name: str) -> tuple[str, bytes]:
    """The held rows as the partner sent them (same format and encoding), header first for CSV."""
    assert contract is not None
    parts = []
    if contract.format == "csv" and checked.header is not None:
        parts.append(contract.delimiter.join(checked.header) + "\n")
    parts += [checked.bad_records[row] for row in sorted(checked.bad_records)]
    text = "".join(p if p.endswith(("\n", "\r")) else p + "\n" for p in parts)
    return f"bad_rows{safe_extension(file_name)}", text.encode(checked.encoding or "utf-8")


def _write_once(path: Path, data: bytes) -> None:
    """Content-addressed write: skip when present, else write beside it and rename in."""
    if path.exists() and path.stat().st_size == len(data):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _wait_until_settled(path: Path, settle_seconds: float) -> bool:
    """True once the file has not been modified for settle_seconds (bounded wait)."""
    deadline = time.monotonic() + max(settle_seconds * 6, 30.0)
    while True:
        age = time.time() - path.lstat().st_mtime
        if age >= settle_seconds:
            return True
        if time.monotonic() > deadline:
            log.warning("%s is still being written after %.0fs; leaving it for the next run", path, settle_seconds * 6)
            return False
        time.sleep(min(settle_seconds - age, 5.0))


def _hold_directory(settings: Settings, partner: str, path: Path, today: dt.date, run_id: str) -> FileOutcome:
    """A folder inside a partner folder is not a delivery: move it to quarantine as it is."""
    tag = hashlib.sha256(os.fsencode(path.name)).hexdigest()[:8]
    qid = f"{safe_component(partner, 60)}/{today}/{safe_component(path.name)}-directory-{tag}"
    target = quarantine.quarantine_root(settings) / qid
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    shutil.move(str(path), str(target))  # a rename: links and FIFOs inside move as they are, unopened
    _make_private(target)
    reason = {
        "id": qid,
        "summary": "a directory was dropped inside a partner folder; only files are processed",
        "partner": partner,
        "file_name": display_name(path.name),
        "sha256": "",
        "run_id": run_id,
        "decision": "quarantined",
        "quarantined_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    (target / "reason.json").write_text(json.dumps(reason, indent=2) + "\n")
    log.warning("moved directory %s to quarantine %s", display_name(str(path)), qid)
    return FileOutcome(
        partner=partner,
        file_name=display_name(path.name),
        sha256="",
        outcome="quarantined",
        quarantine_id=qid,
        reason=reason["summary"],
    )


def _make_private(path: Path) -> None:
    """Give what was moved in from the inbox the quarantine's modes (files 0600, folders 0700).

    A rename keeps the modes the partner gave; the umask only covers what the run creates. Links
    are never followed: folders are walked without following them, files changed through an
    O_NOFOLLOW descriptor, and anything else is left as it is.
    """
    targets = [path]
    if path.is_dir() and not path.is_symlink():
        for folder, dirs, files in os.walk(path):
            targets += [Path(folder) / name for name in dirs + files]
    for target in targets:
        mode = target.lstat().st_mode
        if stat.S_ISDIR(mode):
            os.chmod(target, 0o700)
        elif stat.S_ISREG(mode):
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)


def _log_and_alert(outcome: FileOutcome, settings: Settings, superseded: list[str]) -> None:
    log.info(
        "%s/%s sha256=%s -> %s ds=%s rows in=%d loaded=%d quarantined=%d in %.2fs%s",
        outcome.partner,
        outcome.file_name,
        outcome.sha256[:12],
        outcome.outcome,
        outcome.ds,
        outcome.rows_in,
        outcome.rows_loaded,
        outcome.rows_quarantined,
        outcome.seconds,
        f" (replaces {len(superseded)} earlier file(s) of the day)" if superseded else "",
    )
    if outcome.quarantine_id is None:
        return
    from core.alerts import send_alert

    where = quarantine.quarantine_root(settings) / outcome.quarantine_id / "REPORT.md"
    send_alert(
        f"partner_files: {outcome.partner}/{outcome.file_name}: {outcome.reason} - report: {where}",
        partner=outcome.partner,
        file_name=outcome.file_name,
        quarantine_id=outcome.quarantine_id,
        decision=outcome.outcome,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


# --- warehouse -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadSummary:
    files: int
    tables: list[dict]
    ledger_rows: int


def load_landed(settings: Settings, run_id: str) -> LoadSummary:
    """Load every landed-but-not-loaded day into raw.partner_<partner>, then mirror the ledger.

    Runs inside the `duckdb_warehouse` pool. One transaction replaces all affected days of all
    partner tables (`load_batch`); the ledger marks the files loaded only after it commits, so a
    crash in between just loads the same days again on the next run.
    """
    ledger = Ledger(ledger_path(settings))
    landed = ledger.landed()
    days: dict[str, set[str]] = {}
    for entry in landed:
        assert entry.ds is not None
        days.setdefault(entry.partner, set()).add(entry.ds)
    manifests = {
        CONTRACTS[partner].table: [read_manifest(settings.lake_raw_dir, SOURCE_NAME, partner, d) for d in sorted(ds)]
        for partner, ds in days.items()
    }
    con = connect_file(settings)
    try:
        results: list[LoadResult] = load_batch(con, settings.lake_raw_dir, manifests, run_id) if manifests else []
        _fault_point("after_load")
        ledger.mark_loaded([e.sha256 for e in landed], run_id)
        mirrored = mirror_ledger(con, ledger)
    finally:
        con.close()
    for result in results:
        log.info("loaded raw.%s days=%d rows=%d", result.table, result.days, result.rows)
    from ingestion.spark_tables import register_if_spark_mode

    register_if_spark_mode(settings, manifests, run_id)
    return LoadSummary(len(landed), [asdict(r) for r in results], mirrored)


def mirror_ledger(con, ledger: Ledger) -> int:
    """Copy the ledger into ops.partner_file_ledger / ops.partner_file_receipts (for SQL and dashboards)."""
    entries = ledger.entries()
    numeric = {"bytes", "rows_in", "rows_loaded", "rows_quarantined", "inbox_cleared"}
    schema = pa.schema(
        [pa.field(c, pa.int64() if c in numeric else pa.string()) for c in FileEntry.__dataclass_fields__]
    )
    files = pa.Table.from_pylist([asdict(e) for e in entries], schema=schema)
    receipt_names = ["received_at", "partner", "file_name", "sha256", "run_id", "outcome"]
    receipts = pa.Table.from_pylist(
        [dict(zip(receipt_names, r, strict=True)) for r in ledger.receipts()],
        schema=pa.schema([pa.field(n, pa.string()) for n in receipt_names]),
    )
    con.execute("begin transaction")
    try:
        con.execute("create schema if not exists ops")
        con.register("_partner_files", files)
        con.register("_partner_receipts", receipts)
        con.execute("create or replace table ops.partner_file_ledger as select * from _partner_files")
        con.execute("create or replace table ops.partner_file_receipts as select * from _partner_receipts")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.unregister("_partner_files")
        con.unregister("_partner_receipts")
    return len(entries)

"""The governance audit log: an append-only record of every governance action (who, when, what, outcome).

Data subject requests (export, erasure, re-applied erasures) and other governance actions append
one JSON line each to `var/governance/audit.jsonl` (`GOVERNANCE_AUDIT_LOG` overrides the path).
The log never holds the data it is about: the subject appears only as a keyed hash
(`subject_hash`, HMAC-SHA256 with `PII_HASH_KEY` and its own domain, so it cannot be joined to the
pseudonyms in the warehouse either), and details are counts per location, never values.

Append-only in practice, and checked: lines are appended under an flock with `O_APPEND` and
fsynced, and each line carries the SHA-256 of the previous line (`prev`), so an edited or deleted
line breaks the chain. The chain alone cannot see its own end (the last line edited or removed,
the file truncated or deleted), so every append also rewrites an anchor next to the log
(`audit.jsonl.anchor`: the number of entries and the SHA-256 of the last line, replaced
atomically), and `governance.access_log` records the same pair in the warehouse every day
(`ops.audit_anchors`), where rewriting the log and its anchor file together still shows: the log
only grows, so every anchored head must still be at its line. `verify` checks all three.
`governance.access_log` copies the entries into `ops.access_log`.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from governance.settings import audit_log_file, current_actor

GENESIS = "0" * 64


def audit_log_path(settings: Settings) -> Path:
    return audit_log_file(settings)


class MissingSetting(RuntimeError):
    """A setting the stack's `.env` provides is not set; the message names it and the fix."""


def _key() -> bytes:
    key = os.environ.get("PII_HASH_KEY")
    if not key:
        raise MissingSetting("PII_HASH_KEY is not set: it keys the subject hashes (`make env` writes it to .env)")
    return key.encode()


def subject_hash(kind: str, value: object) -> str:
    """Keyed hash of one identifier of a data subject (kind: customer_id, email, ...).

    Stable, so the erasure list and the audit log can be searched for a subject by recomputing it;
    useless without the key; distinct from dbt's pseudonyms (another domain), so a hash in the log
    cannot be matched against the warehouse.
    """
    text = str(value).strip().lower()
    return hmac.new(_key(), f"dsr-subject|{kind}|{text}".encode(), hashlib.sha256).hexdigest()


def new_request_id(action: str) -> str:
    return f"{action}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class AuditEntry:
    at: str
    request_id: str
    action: str
    actor: str
    outcome: str
    subject: str | None
    details: dict
    prev: str

    @property
    def occurred_at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.at).astimezone(dt.UTC).replace(tzinfo=None)


def anchor_path(settings: Settings) -> Path:
    """The anchor file: entry count and head hash of the log, rewritten on every append."""
    log = audit_log_path(settings)
    return log.with_name(log.name + ".anchor")


def line_hash(line: str) -> str:
    return hashlib.sha256(line.encode()).hexdigest()


def _write_anchor(path: Path, entries: int, head: str) -> None:
    """Replace the anchor atomically (a reader sees the old or the new one, never half)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps({"entries": entries, "head": head}) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def record(
    settings: Settings,
    action: str,
    request_id: str,
    outcome: str,
    *,
    subject: str | None = None,
    details: dict | None = None,
    actor: str | None = None,
) -> AuditEntry:
    """Append one entry and move the anchor to it (both fsynced before returning).

    `subject` must already be a `subject_hash`.
    """
    path = audit_log_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            lines = [line.rstrip("\n") for line in handle if line.strip()]
            entry = AuditEntry(
                at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                request_id=request_id,
                action=action,
                actor=actor or current_actor(),
                outcome=outcome,
                subject=subject,
                details=details or {},
                prev=line_hash(lines[-1]) if lines else GENESIS,
            )
            text = json.dumps(entry.__dict__, sort_keys=True, default=str)
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            _write_anchor(anchor_path(settings), len(lines) + 1, line_hash(text))
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return entry


def entries(settings: Settings) -> list[AuditEntry]:
    path = audit_log_path(settings)
    if not path.exists():
        return []
    return [AuditEntry(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class Verification:
    """The outcome of `verify`: problems (empty when intact), entry count and head hash."""

    problems: list[str]
    entries: int
    head: str | None

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return f"ok, {self.entries} entries, head {self.head}"
        return "\n".join(self.problems)


def _read_locked(settings: Settings) -> tuple[list[str], dict | None]:
    """The log's lines and the anchor, read under the log's lock (never between an append and its anchor)."""
    with audit_log_path(settings).open(encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        try:
            lines = handle.read().split("\n")
            anchor_file = anchor_path(settings)
            anchor = anchor_file.read_text() if anchor_file.exists() else None
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last entry
    try:
        parsed = json.loads(anchor) if anchor is not None else None
    except ValueError:
        parsed = {}
    return lines, parsed


def _line_problems(lines: list[str]) -> list[str]:
    problems = []
    previous = None
    for number, line in enumerate(lines, 1):
        expected = line_hash(previous) if previous is not None else GENESIS
        previous = line
        if not line.strip():
            problems.append(f"line {number}: blank (the log never has blank lines)")
            continue
        try:
            AuditEntry(**json.loads(line))
            prev = json.loads(line)["prev"]
        except (ValueError, TypeError, KeyError):
            problems.append(f"line {number}: not an audit entry (garbled or hand-written)")
            continue
        if prev != expected:
            problems.append(f"line {number}: the chain is broken (an earlier line was changed or removed)")
    return problems


def verify(settings: Settings, anchors: list[tuple[int, str]] | None = None) -> Verification:
    """Check the chain, the anchor file and the `anchors` recorded elsewhere ((entries, head) pairs).

    Any problem is reported, none is repaired: a broken log is evidence and stays as it is.
    """
    path = audit_log_path(settings)
    if not path.exists():
        where = f"; its anchor {anchor_path(settings)} exists" if anchor_path(settings).exists() else ""
        return Verification([f"{path}: the audit log is missing{where}"], 0, None)
    lines, anchor = _read_locked(settings)
    problems = _line_problems(lines)
    head = line_hash(lines[-1]) if lines else None
    if anchor is None:
        problems.append(f"{anchor_path(settings)}: the anchor is missing (written on every append)")
    elif not isinstance(anchor, dict) or {"entries", "head"} - set(anchor):
        problems.append(f"{anchor_path(settings)}: the anchor is garbled")
    else:
        if anchor["entries"] != len(lines):
            problems.append(
                f"the log has {len(lines)} lines, its anchor says {anchor['entries']} "
                "(lines were removed or added outside `record`)"
            )
        elif anchor["head"] != head:
            problems.append("the last line is not the anchored one (it was edited or replaced)")
    for count, anchored_head in anchors or []:
        if count < 1:
            continue
        if count > len(lines):
            problems.append(f"the log has {len(lines)} lines, but had {count} when last anchored in the warehouse")
        elif line_hash(lines[count - 1]) != anchored_head:
            problems.append(f"line {count}: not the line anchored in the warehouse (history was rewritten)")
    return Verification(problems, len(lines), head)

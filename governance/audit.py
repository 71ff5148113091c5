"""The governance audit log: an append-only record of every governance action (who, when, what, outcome).

Data subject requests (export, erasure, re-applied erasures) and other governance actions append
one JSON line each to `var/governance/audit.jsonl` (`GOVERNANCE_AUDIT_LOG` overrides the path).
The log never holds the data it is about: the subject appears only as a keyed hash
(`subject_hash`, HMAC-SHA256 with `PII_HASH_KEY` and its own domain, so it cannot be joined to the
pseudonyms in the warehouse either), and details are counts per location, never values.

Append-only in practice: lines are appended under an flock with `O_APPEND` and fsynced, and
each line carries the SHA-256 of the previous line (`prev`), so an edited or deleted line breaks
the chain (`verify`). `governance.access_log` copies the entries into `ops.access_log`.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import getpass
import hashlib
import hmac
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from stackctl.settings import Settings

GENESIS = "0" * 64


def governance_dir(settings: Settings) -> Path:
    """`var/governance/`: the audit log, the erasure list and export archives."""
    return settings.run_dir.parent / "governance"


def audit_log_path(settings: Settings) -> Path:
    override = os.environ.get("GOVERNANCE_AUDIT_LOG")
    return Path(override) if override else governance_dir(settings) / "audit.jsonl"


def _key() -> bytes:
    key = os.environ.get("PII_HASH_KEY")
    if not key:
        raise RuntimeError("PII_HASH_KEY is not set: it keys the subject hashes (make env generates it)")
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


def current_actor() -> str:
    """Who asked: `GOVERNANCE_ACTOR` (the DAG passes the triggering user), else the OS user."""
    return os.environ.get("GOVERNANCE_ACTOR") or getpass.getuser()


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
    """Append one entry (fsynced before returning). `subject` must already be a `subject_hash`."""
    path = audit_log_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            last = None
            for line in handle:
                if line.strip():
                    last = line.rstrip("\n")
            entry = AuditEntry(
                at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                request_id=request_id,
                action=action,
                actor=actor or current_actor(),
                outcome=outcome,
                subject=subject,
                details=details or {},
                prev=hashlib.sha256(last.encode()).hexdigest() if last else GENESIS,
            )
            handle.write(json.dumps(entry.__dict__, sort_keys=True, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return entry


def entries(settings: Settings) -> list[AuditEntry]:
    path = audit_log_path(settings)
    if not path.exists():
        return []
    return [AuditEntry(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def verify(settings: Settings) -> list[str]:
    """Problems with the chain (an edited, removed or reordered line); empty when intact."""
    path = audit_log_path(settings)
    if not path.exists():
        return []
    problems = []
    previous = None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        expected = hashlib.sha256(previous.encode()).hexdigest() if previous else GENESIS
        if json.loads(line).get("prev") != expected:
            problems.append(f"line {number}: the chain is broken (an earlier line was changed or removed)")
        previous = line
    return problems

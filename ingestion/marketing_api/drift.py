"""Schema drift: compare the records an endpoint really sent with its declared contract.

Policy (the vendor changes its API without telling us):
- a **new field** is tolerated: reported as a warning, recorded in the partition's
  `_drift_report.json`, and left out of the typed table until the contract adopts it;
- a **missing field** (which is what a rename looks like: the old name missing, a new one
  appearing - the report names the likely new name) or a **type change** is fatal: the task fails
  with a one-line reason, the raw pages stay in the lake for inspection, and the typed table and
  the warehouse keep the day's last good version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from ingestion.marketing_api.contract import EndpointContract

TOLERATED = "tolerated"
FATAL = "fatal"
POLICY = {"new_field": TOLERATED, "missing_field": FATAL, "type_change": FATAL}


class SchemaDriftError(RuntimeError):
    """The API sent something the contract forbids; the message is one line, the report has details."""

    def __init__(self, message: str, reports: list[DriftReport]):
        super().__init__(message)
        self.reports = reports


@dataclass(frozen=True)
class DriftIssue:
    kind: str  # new_field | missing_field | type_change
    field: str
    expected: str | None  # the contract's JSON type; None for a field the contract does not know
    seen: str  # JSON type(s) observed, "absent" when missing
    rows: int  # records affected
    action: str  # tolerated | fatal (from POLICY)
    hint: str | None = None

    def describe(self) -> str:
        text = {
            "new_field": f"new field '{self.field}' ({self.seen})",
            "missing_field": f"field '{self.field}' missing in {self.rows} record(s) (expected {self.expected})",
            "type_change": f"field '{self.field}' is {self.seen}, expected {self.expected}",
        }[self.kind]
        return f"{text}; {self.hint}" if self.hint else text


@dataclass(frozen=True)
class DriftReport:
    source: str
    endpoint: str
    ds: str
    run_id: str
    records: int
    issues: list[DriftIssue] = field(default_factory=list)

    @property
    def fatal(self) -> list[DriftIssue]:
        return [i for i in self.issues if i.action == FATAL]

    @property
    def tolerated(self) -> list[DriftIssue]:
        return [i for i in self.issues if i.action == TOLERATED]

    def summary(self) -> str:
        """One line: what drifted, fatal issues first."""
        issues = self.fatal + self.tolerated
        return f"{self.source}.{self.endpoint} ds={self.ds}: " + "; ".join(i.describe() for i in issues)

    def to_dict(self) -> dict:
        return {**asdict(self), "fatal": bool(self.fatal)}


def json_type(value: object) -> str:
    """The JSON type name of a parsed value, with ISO dates told apart from other strings."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return "string"
        return "date" if len(value) == 10 else "string"
    return "array" if isinstance(value, list) else "object"


def _compatible(expected: str, seen: str) -> bool:
    # JSON has one number type: an integer is a valid number, and an ISO date is a valid string.
    return seen == expected or (expected, seen) in {("number", "integer"), ("string", "date")}


def observed_schema(records: Iterable[dict]) -> dict[str, Counter]:
    """Field name -> Counter of JSON types seen, over all records."""
    seen: dict[str, Counter] = {}
    for record in records:
        for name, value in record.items():
            seen.setdefault(name, Counter())[json_type(value)] += 1
    return seen


def observed_schema_hash(seen: dict[str, Counter]) -> str:
    text = ",".join(f"{name}:{'|'.join(sorted(types))}" for name, types in sorted(seen.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_drift(contract: EndpointContract, records: list[dict], source: str, ds: dt.date, run_id: str) -> DriftReport:
    """Every difference between the records and the contract, with the policy's verdict on each."""
    seen = observed_schema(records)
    expected = contract.field_types
    issues: list[DriftIssue] = []
    new_fields = {name: types for name, types in seen.items() if name not in expected}
    for name, want in expected.items():
        types = seen.get(name, Counter())
        present = sum(types.values())
        if present < len(records):
            renamed = [n for n, t in new_fields.items() if all(_compatible(want, s) for s in t)]
            hint = f"looks renamed to '{renamed[0]}'" if len(renamed) == 1 else None
            issues.append(_issue("missing_field", name, want, "absent", len(records) - present, hint))
        wrong = {s: n for s, n in types.items() if not _compatible(want, s)}
        if wrong:
            issues.append(_issue("type_change", name, want, "|".join(sorted(wrong)), sum(wrong.values())))
    for name, types in new_fields.items():
        issues.append(_issue("new_field", name, None, "|".join(sorted(types)), sum(types.values())))
    return DriftReport(source, contract.endpoint, str(ds), run_id, len(records), issues)


def _issue(kind: str, name: str, expected: str | None, seen: str, rows: int, hint: str | None = None) -> DriftIssue:
    return DriftIssue(kind, name, expected, seen, rows, POLICY[kind], hint)

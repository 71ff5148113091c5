"""What a gate run returns: pass/fail, a one-line reason, and one row per expectation.

`GateResult` is plain data (no GX objects), so callers can log it, record it in
`ops.data_health` (`quality.health.record_results`) and raise `GateFailed` to fail a task.
`outcomes_from_checkpoint` flattens a GX CheckpointResult into those rows.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Keep the reason readable in an Airflow log line or an alert.
_MAX_OBSERVED_CHARS = 160
_MAX_REASON_CHARS = 1500
_EXAMPLES = 5

# Outcome statuses, as stored in ops.data_health / ops.gate_runs and shown on the dashboard.
PASSED, WARNED, FAILED = "passed", "warned", "failed"
CRITICAL = "critical"


class GateFailed(RuntimeError):
    """Raised by `GateResult.raise_for_failure`; the message is the one-line reason."""

    def __init__(self, result: GateResult) -> None:
        super().__init__(result.reason)
        self.result = result


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's result: a row of `ops.data_health`."""

    suite: str
    table_name: str
    expectation: str
    column_name: str | None
    success: bool
    observed_value: str
    details: Mapping[str, Any] = field(default_factory=dict)
    severity: str = CRITICAL  # GX 1.x severity: only a failed "critical" expectation fails the gate

    @property
    def label(self) -> str:
        return f"{self.expectation}({self.column_name})" if self.column_name else self.expectation

    @property
    def blocking(self) -> bool:
        return self.severity == CRITICAL

    @property
    def status(self) -> str:
        """passed | failed (a critical expectation failed) | warned (a warning/info one did)."""
        if self.success:
            return PASSED
        return FAILED if self.blocking else WARNED


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate run over one or more suites."""

    gate: str
    run_id: str
    checked_at: dt.datetime  # UTC, naive (the stack's timestamp convention)
    success: bool
    reason: str
    outcomes: tuple[ExpectationOutcome, ...]
    ds: str | None = None
    row_counts: Mapping[str, int] = field(default_factory=dict)  # rows audited, by table
    docs_index: Path | None = None
    # Gate 2: fingerprint of every marts table as audited; publish refuses anything else.
    fingerprint: str | None = None

    @property
    def failures(self) -> tuple[ExpectationOutcome, ...]:
        """Failed blocking (critical) expectations: why the gate failed."""
        return tuple(o for o in self.outcomes if o.status == FAILED)

    @property
    def warnings(self) -> tuple[ExpectationOutcome, ...]:
        """Failed non-blocking (warning/info) expectations: recorded and reported, not blocking."""
        return tuple(o for o in self.outcomes if o.status == WARNED)

    @property
    def status(self) -> str:
        if not self.success:
            return FAILED
        return WARNED if self.warnings else PASSED

    @property
    def suites(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(o.suite for o in self.outcomes))

    def raise_for_failure(self) -> GateResult:
        """Raise `GateFailed` (message: the reason) unless the gate passed; return self."""
        if not self.success:
            raise GateFailed(self)
        return self


def combine(gate: str, results: Sequence[GateResult]) -> GateResult:
    """Merge the results of several suites of one gate run (e.g. several tables) into one.

    The merged result keeps `ds` only when every part has the same one.
    """
    if not results:
        raise ValueError(f"{gate}: nothing was validated")
    first = results[0]
    days = {r.ds for r in results}
    ds = first.ds if len(days) == 1 else None
    outcomes = tuple(o for r in results for o in r.outcomes)
    rows: dict[str, int] = {}
    for r in results:
        for table, n in r.row_counts.items():
            rows[table] = rows.get(table, 0) + n
    success = all(r.success for r in results)
    subject = ", ".join(dict.fromkeys(o.suite for o in outcomes))
    fingerprints = {r.fingerprint for r in results}
    return GateResult(
        gate=gate,
        run_id=first.run_id,
        checked_at=first.checked_at,
        success=success,
        reason=make_reason(gate, subject, outcomes, rows, ds),
        outcomes=outcomes,
        ds=ds,
        row_counts=rows,
        docs_index=first.docs_index,
        fingerprint=first.fingerprint if len(fingerprints) == 1 else None,
    )


def make_reason(
    gate: str,
    subject: str,
    outcomes: Sequence[ExpectationOutcome],
    row_counts: Mapping[str, int],
    ds: str | None,
) -> str:
    """One line: what was checked, and either a pass summary or every failure with its evidence.

    Blocking failures come first; failed warning-severity expectations follow as "warnings".
    """
    where = f"{gate} {subject}" + (f" ds={ds}" if ds else "")
    rows = sum(row_counts.values())
    failures = [o for o in outcomes if o.status == FAILED]
    warnings = [o for o in outcomes if o.status == WARNED]
    # Table-level failures first: a missing column explains the column-level errors after it.
    failures.sort(key=lambda o: o.column_name is not None)
    several_suites = len({o.suite for o in outcomes}) > 1
    if not failures and not warnings:
        return f"{where} passed: {len(outcomes)} expectations on {rows} rows"
    if failures:
        head = f"{where} FAILED {len(failures)} of {len(outcomes)} expectations ({rows} rows): "
    else:
        plural = "s" if len(warnings) > 1 else ""
        head = f"{where} passed with {len(warnings)} warning{plural} ({len(outcomes)} expectations, {rows} rows): "
    parts = _evidence(failures, several_suites, len(head))
    if warnings:
        listed = _evidence(warnings, several_suites, len(head) + sum(len(p) + 2 for p in parts))
        parts += [("warnings: " if failures else "") + "; ".join(listed)] if listed else []
    return _one_line(head + "; ".join(parts))


def _evidence(outcomes: Sequence[ExpectationOutcome], several_suites: bool, length: int) -> list[str]:
    parts: list[str] = []
    for index, outcome in enumerate(outcomes):
        label = f"{outcome.suite} {outcome.label}" if several_suites else outcome.label
        part = f"{label} observed {outcome.observed_value}"
        if length + len(part) > _MAX_REASON_CHARS and parts:
            parts.append(f"... and {len(outcomes) - index} more")
            break
        parts.append(part)
        length += len(part) + 2
    return parts


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _short(text: str, limit: int = _MAX_OBSERVED_CHARS) -> str:
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def jsonable(value: Any) -> Any:
    """Plain JSON types (numpy scalars, NaN/NA, dates and tuples converted)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return jsonable(item())
        except (TypeError, ValueError):
            pass
    if type(value).__name__ in {"NAType", "NaTType"}:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _exception_message(exception_info: Any) -> str | None:
    """GX reports exceptions either flat or keyed by metric; return the first message."""
    if not isinstance(exception_info, Mapping):
        return None
    infos: Iterable[Any] = [exception_info] if "raised_exception" in exception_info else exception_info.values()
    for info in infos:
        if isinstance(info, Mapping) and info.get("raised_exception"):
            message = _one_line(str(info.get("exception_message") or "exception"))
            return message.removeprefix("Error: ")
    return None


def _observed(result: Mapping[str, Any], error: str | None) -> str:
    if error:
        return _short(f"error: {error}")
    if "redacted" in result:
        count, total = result.get("unexpected_count"), result.get("element_count")
        counted = f"{count} of {total} unexpected, " if count is not None and total is not None else ""
        return _short(f"{counted}{result['redacted']}")
    mismatched = (result.get("details") or {}).get("mismatched")
    if isinstance(mismatched, Mapping) and any(mismatched.values()):
        # expect_table_columns_to_match_set: say which columns, not the whole observed list.
        return _short(", ".join(f"{kind} {jsonable(cols)}" for kind, cols in mismatched.items() if cols))
    if "observed_value" in result:
        return _short(f"{jsonable(result['observed_value'])}")
    if "unexpected_count" in result:
        examples = jsonable(list(result.get("partial_unexpected_list") or [])[:_EXAMPLES])
        count = result.get("unexpected_count") or 0
        total = result.get("element_count")
        text = f"{count} of {total} unexpected" if total is not None else f"{count} unexpected"
        return _short(f"{text}, e.g. {examples}" if count else text)
    return ""


# Result keys that carry the data's own values (GX SUMMARY format).
_VALUE_KEYS = (
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "partial_unexpected_index_list",
    "unexpected_list",
    "unexpected_index_list",
    "observed_value",
)


def _redacted(result: dict[str, Any], classification: str) -> dict[str, Any]:
    kept = {k: v for k, v in result.items() if k not in _VALUE_KEYS}
    kept["redacted"] = f"values of a {classification} column are not recorded"
    return kept


def outcomes_from_validation(
    suite: str,
    table_name: str,
    validation_result: Any,
    personal_columns: Mapping[str, str] | None = None,
) -> list[ExpectationOutcome]:
    """Flatten one GX ExpectationSuiteValidationResult into outcome rows.

    For columns in `personal_columns` (column -> classification, e.g. "pii:email") the data's
    values (unexpected examples, observed values) are dropped: outcomes go to ops.data_health,
    the reason and the serving file, which must hold no personal data. Counts stay.
    """
    personal_columns = personal_columns or {}
    outcomes = []
    for evr in validation_result.results:
        config = evr.expectation_config
        kwargs = {k: v for k, v in dict(config.kwargs).items() if k != "batch_id"}
        column = kwargs.get("column") or (
            f"{kwargs['column_A']},{kwargs['column_B']}" if "column_A" in kwargs else None
        )
        result = dict(evr.result or {})
        personal = [personal_columns[c] for c in (column or "").split(",") if c in personal_columns]
        if personal:
            result = _redacted(result, personal[0])
        error = _exception_message(evr.exception_info)
        details = {"kwargs": kwargs, "result": result}
        if error:
            details["exception"] = error
        if config.notes:
            details["notes"] = config.notes
        severity = getattr(config, "severity", None) or CRITICAL
        outcomes.append(
            ExpectationOutcome(
                suite=suite,
                table_name=table_name,
                expectation=config.type,
                column_name=column,
                success=bool(evr.success),
                observed_value=_observed(result, error),
                details=jsonable(details),
                severity=str(getattr(severity, "value", severity)),
            )
        )
    return outcomes

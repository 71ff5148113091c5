"""The gate runner: validate a DataFrame with a stored GX checkpoint and summarise the result.

- Gate 1, `validate_landed_batch`: a landed lake batch, before it is loaded into `raw`.
- Gate 2, `validate_marts`: the marts in the warehouse, before they are published to serving.

Data problems (a null key, a gap in the calendar) come back as a failed `GateResult`; problems
of the run itself (no manifest, no warehouse, an unknown table) raise. The caller decides what
to do with a result: `record_results` it, then `raise_for_failure()` to fail the task.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.files import safe_file_name
from quality.context import build_pages, docs_dir, docs_index, ensure_checkpoint, forget_batches, open_context
from quality.results import FAILED, GateResult, combine, make_reason, outcomes_from_validation
from quality.specs import personal_columns
from quality.suites import BATCH_END, BATCH_START, MANIFEST_ROW_COUNT, RUN_DATE

if TYPE_CHECKING:
    import pandas as pd

    from core.settings import Settings

log = logging.getLogger(__name__)

GATES = ("gate1", "gate2")


@dataclass
class _GateSession:
    """What one gate step shares between its validations (see `batched_data_docs`)."""

    stack: ExitStack
    contexts: dict[Path, Any] = field(default_factory=dict)  # docs dir -> open File Data Context
    checkpoints: dict[tuple[Path, str, str], Any] = field(default_factory=dict)
    pages: dict[Path, list] = field(default_factory=dict)  # results whose pages wait for the end
    index_wanted: set[Path] = field(default_factory=set)  # docs whose index must be rebuilt too

    def context(self, docs: Path) -> Any:
        if docs not in self.contexts:
            self.contexts[docs] = self.stack.enter_context(open_context(docs))
        return self.contexts[docs]

    def checkpoint(self, docs: Path, gate: str, table: str) -> Any:
        key = (docs, gate, table)
        if key not in self.checkpoints:
            self.checkpoints[key] = ensure_checkpoint(self.context(docs), gate, table)
        return self.checkpoints[key]


_SESSION: ContextVar[_GateSession | None] = ContextVar("gate_session", default=None)


@contextmanager
def batched_data_docs() -> Iterator[None]:
    """One gate step: its validations share one GX context and checkpoint per table, and their
    Data Docs pages are rendered once, at the end of the block.

    Opening the File Data Context (reading the project, building its stores) and checking the
    stored checkpoint against the code cost ~0.3 s per validation, and rendering pages about three
    times the validation itself (templates are compiled for every build): a gate step validating
    a table per day (a snapshot table, a backfill) pays them once. The GX project lock is held for
    the whole block. A nested block joins the enclosing one.
    """
    if _SESSION.get() is not None:
        yield
        return
    with ExitStack() as stack:
        session = _GateSession(stack)
        token = _SESSION.set(session)
        try:
            yield
        finally:
            _SESSION.reset(token)
            for docs, identifiers in session.pages.items():
                try:
                    build_pages(session.context(docs), identifiers, index=docs in session.index_wanted)
                except Exception:  # Data Docs are a view: never let them hide the gates' own outcome
                    log.exception("Data Docs pages of %d results not built in %s", len(identifiers), docs)


def _gx_run_name(run_id: str, ds: str | None) -> str:
    # Becomes a folder of the validation store and a link in Data Docs: keep it path-safe, and
    # lead with the day so the Data Docs index reads as a calendar.
    name = f"{ds}__{run_id}" if ds else run_id
    return safe_file_name(name, ascii_only=True)  # ASCII only, as these run names always were


def run_gate(
    gate: str,
    table: str,
    frame: pd.DataFrame,
    run_id: str,
    *,
    ds: str | None = None,
    expectation_parameters: Mapping[str, Any] | None = None,
    checked_at: dt.datetime | None = None,
    docs: Path | None = None,
    fingerprint: str | None = None,
) -> GateResult:
    """Validate `frame` with the checkpoint `<gate>.<table>` and build its Data Docs page (at once,
    or at the end of the enclosing `batched_data_docs` block)."""
    from quality.suites import SUITES

    if gate not in SUITES or table not in SUITES[gate]:
        known = {g: sorted(t) for g, t in SUITES.items()}
        raise KeyError(f"no suite for {gate} table {table!r}; known: {known}")
    checked_at = checked_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    docs = docs or docs_dir()
    began = time.monotonic()
    session = _SESSION.get()
    with nullcontext() if session is not None else open_context(docs) as own_context:
        import great_expectations as gx

        if session is not None:
            checkpoint = session.checkpoint(docs, gate, table)
        else:
            checkpoint = ensure_checkpoint(own_context, gate, table)
        result = checkpoint.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=dict(expectation_parameters or {}),
            run_id=gx.RunIdentifier(run_name=_gx_run_name(run_id, ds), run_time=checked_at.replace(tzinfo=dt.UTC)),
        )
        context = own_context if session is None else session.context(docs)
        forget_batches(context, gate)
        # The index lists every stored result, so rebuilding it costs more as results pile up: a
        # failure (someone will open the docs now) or a site without one rebuilds it; passing runs
        # leave it to the hourly full rebuild (data_health's data_docs task).
        index = not result.success or not docs_index(docs).exists()
        if session is None:
            build_pages(own_context, list(result.run_results), index=index)
        else:
            session.pages.setdefault(docs, []).extend(result.run_results)
            if index:
                session.index_wanted.add(docs)
    personal = personal_columns(table) if gate == "gate1" else {}
    outcomes = []
    for validation in result.run_results.values():
        suite = validation.suite_name
        outcomes += outcomes_from_validation(suite, table, validation, personal)
    suite_names = ", ".join(dict.fromkeys(o.suite for o in outcomes))
    rows = {table: len(frame)}
    # GX's own `success` is False when any expectation fails; the gate blocks only on critical
    # ones. Warning-severity failures are recorded and named in the reason, not blocking.
    success = not any(o.status == FAILED for o in outcomes)
    gate_result = GateResult(
        gate=gate,
        run_id=run_id,
        checked_at=checked_at,
        success=success,
        reason=make_reason(gate, suite_names, outcomes, rows, ds),
        outcomes=tuple(outcomes),
        ds=ds,
        row_counts=rows,
        docs_index=docs_index(docs),
        fingerprint=fingerprint,
    )
    log.info("%s (%.2fs)", gate_result.reason, time.monotonic() - began)
    return gate_result


def batch_window(days: Sequence[str | dt.date]) -> dict[str, str]:
    """Suite parameters for the freshness checks: the batch covers [first day, last day + 1)."""
    parsed = sorted(dt.date.fromisoformat(str(d)) for d in days)
    start = dt.datetime.combine(parsed[0], dt.time())
    end = dt.datetime.combine(parsed[-1] + dt.timedelta(days=1), dt.time())
    return {BATCH_START: start.isoformat(), BATCH_END: end.isoformat()}


def landed_batch_parameters(expected_row_count: int, days: Sequence[str | dt.date]) -> dict[str, Any]:
    return {MANIFEST_ROW_COUNT: expected_row_count, **batch_window(days)}


def validate_landed_batch(
    table: str,
    parquet_paths: Sequence[Path],
    run_id: str,
    ds: str,
    *,
    expected_row_count: int | None = None,
    docs: Path | None = None,
) -> GateResult:
    """Gate 1: audit one table's landed batch (its Parquet files) before it is loaded.

    The row count must equal the landing manifest's (`_manifest.json` beside the files) unless
    `expected_row_count` is given, and the change timestamps must lie in the day `ds` (freshness:
    see `quality.suites`). An empty batch (a quiet day) passes if its schema is right.
    """
    from quality.loaders import manifest_row_count, read_landed_batch
    from quality.suites import is_snapshot_table

    paths = [Path(p) for p in parquet_paths]
    expected = manifest_row_count(paths) if expected_row_count is None else expected_row_count
    frame = read_landed_batch(paths, [ds] * len(paths) if is_snapshot_table(table) else None)
    return run_gate(
        "gate1",
        table,
        frame,
        run_id,
        ds=str(ds),
        expectation_parameters=landed_batch_parameters(expected, [ds]),
        docs=docs,
    )


def validate_marts(
    warehouse_path: Path,
    run_id: str,
    *,
    settings: Settings,
    ds: str | dt.date | None = None,
    serving_path: Path | None = None,
    tables: Sequence[str] | None = None,
    docs: Path | None = None,
    unserved: frozenset[str] = frozenset(),
) -> GateResult:
    """Gate 2: audit the marts in the warehouse (read-only) before they are published.

    Each mart must reach `ds` (the day the run produced) or, without one, the newest day the
    run ledger shows loaded for all its source tables. `serving_path` is the published file
    whose history the anomaly bounds come from (none: only the candidate's own history).
    The result carries the fingerprint of the marts tables as audited, but the `unserved` ones
    (those publish will not copy: `core.dbt_manifest.unserved_marts`); `serving.publish` publishes
    only data with that fingerprint. `settings` gives the DuckDB session's limits.
    """
    from quality.mart_frames import read_mart_frames
    from quality.specs import MARTS

    names = list(tables or MARTS)
    checked_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    frames, latest, fingerprint = read_mart_frames(
        Path(warehouse_path),
        names,
        published_path=serving_path,
        settings=settings,
        unserved=unserved,
    )
    run_date = str(ds) if ds is not None else None
    with batched_data_docs():
        results = [
            run_gate(
                "gate2",
                name,
                frames[name],
                run_id,
                ds=run_date,
                expectation_parameters={RUN_DATE: run_date or (str(latest[name]) if latest[name] else None)},
                checked_at=checked_at,
                docs=docs,
                fingerprint=fingerprint,
            )
            for name in names
        ]
    return results[0] if len(results) == 1 else combine("gate2", results)

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
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quality.context import docs_dir, docs_index, ensure_checkpoint, open_context
from quality.results import GateResult, combine, make_reason, outcomes_from_validation

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

GATES = ("gate1", "gate2")


def _gx_run_name(run_id: str, ds: str | None) -> str:
    # Becomes a folder of the validation store and a link in Data Docs: keep it path-safe, and
    # lead with the day so the Data Docs index reads as a calendar.
    name = f"{ds}__{run_id}" if ds else run_id
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


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
) -> GateResult:
    """Validate `frame` with the checkpoint `<gate>.<table>` and build its Data Docs page."""
    from quality.suites import SUITES

    if gate not in SUITES or table not in SUITES[gate]:
        known = {g: sorted(t) for g, t in SUITES.items()}
        raise KeyError(f"no suite for {gate} table {table!r}; known: {known}")
    checked_at = checked_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    docs = docs or docs_dir()
    began = time.monotonic()
    with open_context(docs) as context:
        import great_expectations as gx

        checkpoint = ensure_checkpoint(context, gate, table)
        result = checkpoint.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=dict(expectation_parameters or {}),
            run_id=gx.RunIdentifier(run_name=_gx_run_name(run_id, ds), run_time=checked_at.replace(tzinfo=dt.UTC)),
        )
    outcomes = []
    for validation in result.run_results.values():
        suite = validation.suite_name
        outcomes += outcomes_from_validation(suite, table, validation)
    suite_names = ", ".join(dict.fromkeys(o.suite for o in outcomes))
    rows = {table: len(frame)}
    success = bool(result.success)
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
    )
    log.info("%s (%.2fs)", gate_result.reason, time.monotonic() - began)
    return gate_result


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
    `expected_row_count` is given. An empty batch (a quiet day) passes if its schema is right.
    """
    from quality.loaders import manifest_row_count, read_landed_batch

    paths = [Path(p) for p in parquet_paths]
    expected = manifest_row_count(paths) if expected_row_count is None else expected_row_count
    frame = read_landed_batch(paths)
    return run_gate(
        "gate1",
        table,
        frame,
        run_id,
        ds=str(ds),
        expectation_parameters={"manifest_row_count": expected},
        docs=docs,
    )


def validate_marts(
    warehouse_path: Path,
    run_id: str,
    *,
    tables: Sequence[str] | None = None,
    docs: Path | None = None,
    memory_limit: str = "3GB",
    threads: int = 2,
) -> GateResult:
    """Gate 2: audit the marts in the warehouse (read-only) before they are published."""
    from quality.loaders import read_mart
    from quality.specs import MARTS

    names = list(tables or MARTS)
    checked_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    results = [
        run_gate(
            "gate2",
            name,
            read_mart(Path(warehouse_path), MARTS[name].query, memory_limit=memory_limit, threads=threads),
            run_id,
            checked_at=checked_at,
            docs=docs,
        )
        for name in names
    ]
    return results[0] if len(results) == 1 else combine("gate2", results)

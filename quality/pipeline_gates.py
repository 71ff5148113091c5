"""The gates as pipeline steps: what the DAG's `gate_landed` / `gate_marts` tasks and the headless
runner call. Each validates, records the outcome in `ops.data_health` / `ops.gate_runs`, and
raises `GateFailed` with the one-line reason when the data must not move on.

Gate 1 also quarantines: every (table, day) batch that fails moves to `lake/quarantine/` with
its result (`quality.quarantine`), so the load cannot pick it up; a batch that passes marks
older held batches of the same day superseded. Both callers hold the warehouse's writer pool.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from core.dbt_manifest import unserved_marts
from core.duckdb_connect import connect_file, connect_memory
from core.settings import Settings
from ingestion.lake import MANIFEST, PartitionManifest, partition_file
from quality import quarantine
from quality.gates import (
    batched_data_docs,
    landed_batch_parameters,
    run_gate,
    validate_landed_batch,
    validate_marts,
)
from quality.health import write_results
from quality.loaders import read_landed_batch
from quality.results import FAILED, ExpectationOutcome, GateFailed, GateResult, combine, make_reason
from quality.settings import gate1_chunk_rows
from quality.suites import is_snapshot_table

__all__ = ["GateFailed", "gate_landed_batches", "gate_marts"]

log = logging.getLogger(__name__)


def _validate_day(settings: Settings, table: str, manifest: PartitionManifest, run_id: str) -> GateResult:
    path = partition_file(settings.lake_raw_dir, manifest)
    return validate_landed_batch(table, [path], run_id, manifest.ds, expected_row_count=manifest.row_count)


def day_chunks(manifests: Sequence[PartitionManifest], limit: int) -> list[list[PartitionManifest]]:
    """Consecutive days grouped so that a chunk holds at most `limit` rows (a bigger day alone)."""
    chunks: list[list[PartitionManifest]] = []
    rows = 0
    for manifest in manifests:
        if chunks and rows + manifest.row_count <= limit:
            chunks[-1].append(manifest)
            rows += manifest.row_count
        else:
            chunks.append([manifest])
            rows = manifest.row_count
    return chunks


def _validate_table(
    settings: Settings, table: str, manifests: Sequence[PartitionManifest], run_id: str
) -> list[tuple[GateResult, list[PartitionManifest]]]:
    """Results with the partitions each covers: one per day, or one for a bulk run's days.

    A bulk run (history, backfill) audits all its days of a table as one batch, except snapshot
    tables (every day repeats their keys). Memory stays bounded: the batch is read and validated
    in chunks of whole days (`GATE1_CHUNK_ROWS`), and the key's uniqueness across chunks is checked on
    the key column alone (`_keys_in_several_chunks`); the chunks' outcomes are merged into the
    batch's one result. When it fails, each day of the failing chunks is validated again on its
    own, so only the bad days are quarantined, each with its own reason.
    """
    if len(manifests) == 1:
        return [(_validate_day(settings, table, manifests[0], run_id), list(manifests))]
    snapshot = is_snapshot_table(table)
    chunks = day_chunks(manifests, gate1_chunk_rows())
    chunk_results = []
    for chunk in chunks:
        paths = [partition_file(settings.lake_raw_dir, m) for m in chunk]
        days = [m.ds for m in chunk]
        result = run_gate(
            "gate1",
            table,
            read_landed_batch(paths, days if snapshot else None),
            run_id,
            expectation_parameters=landed_batch_parameters(sum(m.row_count for m in chunk), days),
        )
        chunk_results.append(_snapshot_rows_counted_per_day(settings, result, chunk) if snapshot else result)
    # a snapshot repeats its keys every day: its uniqueness is per day (in each chunk's result)
    duplicates = _keys_in_several_chunks(settings, table, chunks) if len(chunks) > 1 and not snapshot else None
    result = _merge_chunks(table, chunk_results, duplicates)
    if result.success:
        return [(result, list(manifests))]
    failing = [m for r, chunk in zip(chunk_results, chunks, strict=True) if not r.success for m in chunk]
    per_day = [(_validate_day(settings, table, m, run_id), [m]) for m in failing]
    if snapshot and all(r.success for r, _ in per_day):
        return per_day  # GX on each day has the last word
    if all(r.success for r, _ in per_day):
        # Only the days together fail (e.g. a key repeated across days): hold them all.
        return [(result, list(manifests)), *per_day]
    return [(result, []), *per_day]


def _snapshot_rows_counted_per_day(
    settings: Settings, result: GateResult, days: Sequence[PartitionManifest]
) -> GateResult:
    """A snapshot table's days validated by GX as one batch, with the row count checked per day.

    GX costs about a tenth of a second per validation whatever the rows, so a year of a small
    snapshot table validated day by day took most of a bulk run's gate 1. The suite checks the
    key's uniqueness and freshness per row's day (`SNAPSHOT_DAY_END`), so those hold for the
    union exactly when they hold for each day; the row count is compared with each day's
    manifest here (a day short and another long would still sum to the batch's count). A failing
    chunk is then validated again day by day (`_validate_table`), so a bad day gets GX's verdict.
    """
    files = {str(partition_file(settings.lake_raw_dir, m)): m for m in days}
    con = connect_memory(settings)
    try:
        counted = dict(
            con.execute(
                "select filename, count(*) from read_parquet(?, filename = true, union_by_name = true) group by 1",
                [list(files)],
            ).fetchall()
        )
    finally:
        con.close()
    miscounted = [
        f"{m.ds}: {counted.get(file, 0)} rows, manifest {m.row_count}"
        for file, m in files.items()
        if counted.get(file, 0) != m.row_count
    ]
    outcomes = []
    for outcome in result.outcomes:
        if outcome.expectation == "expect_table_row_count_to_equal":
            observed = (
                f"{len(miscounted)} of {len(days)} days, e.g. {'; '.join(miscounted[:3])}"
                if miscounted
                else outcome.observed_value
            )
            details = {**outcome.details, "check": "per day of a snapshot batch", "failed_days": len(miscounted)}
            outcome = replace(
                outcome, success=outcome.success and not miscounted, observed_value=observed, details=details
            )
        outcomes.append(outcome)
    success = not any(o.status == FAILED for o in outcomes)
    suite = ", ".join(dict.fromkeys(o.suite for o in outcomes))
    return replace(
        result,
        success=success,
        outcomes=tuple(outcomes),
        reason=make_reason("gate1", suite, outcomes, result.row_counts, None),
    )


def _merge_chunks(table: str, results: Sequence[GateResult], duplicates: ExpectationOutcome | None) -> GateResult:
    """One result for a batch validated in chunks: per expectation, failed if any chunk failed it
    (with that chunk's evidence); the cross-chunk key check replaces the chunks' own uniqueness
    outcome when keys repeat across chunks."""
    if len(results) == 1 and duplicates is None:
        return results[0]
    outcomes = []
    for parts in zip(*(r.outcomes for r in results), strict=True):
        failed = [o for o in parts if not o.success]
        chosen = failed[0] if failed else parts[0]
        observed = {o.observed_value for o in parts}
        outcome = replace(
            chosen,
            success=not failed,
            observed_value=chosen.observed_value if failed or len(observed) == 1 else f"passed in {len(parts)} chunks",
            details={**chosen.details, "chunks": len(parts), "failed_chunks": len(failed)},
        )
        if duplicates is not None and (outcome.expectation, outcome.column_name) == (
            duplicates.expectation,
            duplicates.column_name,
        ):
            outcome = duplicates if outcome.success else outcome
        outcomes.append(outcome)
    first = results[0]
    rows = {table: sum(r.row_counts.get(table, 0) for r in results)}
    suite = ", ".join(dict.fromkeys(o.suite for o in outcomes))
    return GateResult(
        gate="gate1",
        run_id=first.run_id,
        checked_at=first.checked_at,
        success=not any(o.status == FAILED for o in outcomes),
        reason=make_reason("gate1", suite, outcomes, rows, None),
        outcomes=tuple(outcomes),
        row_counts=rows,
        docs_index=first.docs_index,
    )


def _keys_in_several_chunks(
    settings: Settings, table: str, chunks: Sequence[Sequence[PartitionManifest]]
) -> ExpectationOutcome | None:
    """The key's uniqueness across chunks (within a chunk GX checks it), on the key column only.

    Chunks whose key ranges (Parquet statistics) do not overlap cannot share a key: an insert-only
    table with increasing ids is cleared without reading a row. Overlapping chunks are compared in
    DuckDB (bounded by the stack's memory limit). Returns the failing outcome, or None.
    """
    import pyarrow.parquet as pq

    from quality.specs import RAW_TABLES
    from quality.suites import raw_suite_name

    key = RAW_TABLES[table].key
    ranges = []
    for index, chunk in enumerate(chunks):
        low = high = None
        for manifest in chunk:
            if not manifest.row_count:
                continue
            metadata = pq.read_metadata(partition_file(settings.lake_raw_dir, manifest))
            column = metadata.schema.to_arrow_schema().get_field_index(key)
            for group in range(metadata.num_row_groups):
                stats = metadata.row_group(group).column(column).statistics
                if stats is None or not stats.has_min_max:
                    low, high = float("-inf"), float("inf")  # unknown: compare it
                    break
                low = stats.min if low is None else min(low, stats.min)
                high = stats.max if high is None else max(high, stats.max)
        if low is not None:
            ranges.append((low, high, index))
    ranges.sort()
    overlapping: set[int] = set()
    reach, owner = None, None
    for low, high, index in ranges:
        if reach is not None and low <= reach:
            overlapping.update({index, owner})
        if reach is None or high > reach:
            reach, owner = high, index
    if not overlapping:
        return None
    files = [
        (str(partition_file(settings.lake_raw_dir, m)), index)
        for index in sorted(overlapping)
        for m in chunks[index]
        if m.row_count
    ]
    con = connect_memory(settings)
    try:
        con.execute("create temp table chunk_files (file varchar, chunk integer)")
        con.executemany("insert into chunk_files values (?, ?)", files)
        count, examples = con.execute(
            f"""
            with keyed as (
                select distinct data."{key}" as k, chunk_files.chunk
                from read_parquet(?, filename = true) as data
                join chunk_files on data.filename = chunk_files.file
            ),
            repeated as (select k from keyed group by k having count(*) > 1)
            select count(*), list(k order by k)[1:5] from repeated
            """,
            [[f for f, _ in files]],
        ).fetchone()
    finally:
        con.close()
    if not count:
        return None
    return ExpectationOutcome(
        suite=raw_suite_name(table),
        table_name=table,
        expectation="expect_column_values_to_be_unique",
        column_name=key,
        success=False,
        observed_value=f"{count} keys landed on more than one day of the batch, e.g. {list(examples)}",
        details={"kwargs": {"column": key}, "result": {"unexpected_count": count}, "check": "across day chunks"},
    )


def _as_landed_now(settings: Settings, manifest: PartitionManifest) -> PartitionManifest:
    """The lake's manifest of the same landing if it changed since (a batch patched in quarantine
    and released: its row count may differ from what the land task returned)."""
    path = partition_file(settings.lake_raw_dir, manifest).with_name(MANIFEST)
    if path.exists():
        current = PartitionManifest(**json.loads(path.read_text()))
        if current.run_id == manifest.run_id and current.file == manifest.file:
            return current
    return manifest


def _missing_partitions_error(settings: Settings, manifests: Sequence[PartitionManifest], run_id: str) -> None:
    """A batch already moved to quarantine (the task cleared without a release) fails clearly."""
    held = []
    for m in manifests:
        if partition_file(settings.lake_raw_dir, m).exists():
            continue
        entry = quarantine.held_entry(settings, m.source, m.table, m.ds, m.run_id)
        if entry is None:
            raise FileNotFoundError(
                f"landed file {partition_file(settings.lake_raw_dir, m)} is missing: re-land the day"
            )
        held.append(entry.quarantine_id)
    if held:
        raise GateFailed(
            GateResult(
                gate="gate1",
                run_id=run_id,
                checked_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                success=False,
                reason=(
                    f"gate1: batch(es) held in quarantine: {', '.join(held)}; release them "
                    "(`python -m quality quarantine release <id>`) or re-land the day"
                ),
                outcomes=(),
            )
        )


def gate_landed_batches(
    settings: Settings, landed: Mapping[str, Mapping | Sequence[Mapping]], run_id: str
) -> GateResult:
    """Gate 1 over each table's landed partitions (one manifest, or several days of them).

    Failing batches are quarantined before `GateFailed` is raised; its message is the one-line
    reason followed by where the batches went.
    """
    checked: list[tuple[GateResult, list[PartitionManifest]]] = []
    with batched_data_docs():
        for table, manifests in landed.items():
            items = [manifests] if isinstance(manifests, Mapping) else list(manifests)
            parsed = [_as_landed_now(settings, PartitionManifest(**m)) for m in items]
            if not parsed:
                continue
            _missing_partitions_error(settings, parsed, run_id)
            checked += _validate_table(settings, table, parsed, run_id)

    held: list[str] = []
    for result, manifests in checked:
        for manifest in manifests:
            if result.success:
                quarantine.supersede(settings, manifest.source, manifest.table, manifest.ds, manifest.run_id)
            elif partition_file(settings.lake_raw_dir, manifest).exists():
                entry = quarantine.quarantine_partition(settings, manifest, result)
                held.append(entry.quarantine_id)
                log.error("quarantined %s: %s", entry.quarantine_id, result.reason)

    con = connect_file(settings)
    try:
        write_results(con, [r for r, _ in checked])
        quarantine.write_table(con, settings)
    finally:
        con.close()

    # The verdict covers every batch once: per-day results where a bulk validation was split.
    verdicts = [r for r, ms in checked if ms] or [r for r, _ in checked]
    combined = combine("gate1", verdicts)
    if not combined.success and held:
        where = f" -> quarantined {len(held)} batch(es) in {Path(settings.quarantine_dir)}: {', '.join(held)}"
        combined = replace(combined, reason=combined.reason + where)
    return combined.raise_for_failure()


def gate_marts(settings: Settings, run_id: str, ds: str | dt.date | None = None) -> GateResult:
    """Gate 2 over the marts in the warehouse, before publishing.

    `ds`: the day the run produced (the mart must reach it). Anomaly bounds come from the
    currently published serving file.
    """
    result = validate_marts(
        settings.warehouse_path,
        run_id,
        ds=ds,
        serving_path=settings.serving_path,
        settings=settings,
        # the marts publish will copy (pipelines.publishing reads the same manifest)
        unserved=unserved_marts(settings),
    )
    con = connect_file(settings)
    try:
        write_results(con, [result])
    finally:
        con.close()
    return result.raise_for_failure()

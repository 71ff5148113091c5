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

from ingestion.lake import MANIFEST, PartitionManifest, partition_file
from quality import quarantine
from quality.gates import (
    batched_data_docs,
    landed_batch_parameters,
    run_gate,
    validate_landed_batch,
    validate_marts,
)
from quality.health import connect_for_write, write_results
from quality.loaders import read_landed_batch
from quality.results import GateFailed, GateResult, combine
from stackctl.settings import Settings

__all__ = ["GateFailed", "gate_landed_batches", "gate_marts"]

log = logging.getLogger(__name__)


def _is_snapshot(manifest: PartitionManifest) -> bool:
    from ingestion.app_db.contract import CONTRACTS, SOURCE_NAME

    contract = CONTRACTS.get(manifest.table)
    return manifest.source == SOURCE_NAME and contract is not None and contract.mode == "snapshot"


def _validate_day(settings: Settings, table: str, manifest: PartitionManifest, run_id: str) -> GateResult:
    path = partition_file(settings.lake_raw_dir, manifest)
    return validate_landed_batch(table, [path], run_id, manifest.ds, expected_row_count=manifest.row_count)


def _validate_table(
    settings: Settings, table: str, manifests: Sequence[PartitionManifest], run_id: str
) -> list[tuple[GateResult, list[PartitionManifest]]]:
    """Results with the partitions each covers: one per day, or one for a bulk run's days.

    A bulk run (history, backfill) audits all its days of a table in one validation, except
    snapshot tables (every day repeats their keys). When the bulk validation fails, each day is
    validated again on its own, so only the bad days are quarantined, each with its own reason.
    """
    if len(manifests) == 1 or _is_snapshot(manifests[0]):
        return [(_validate_day(settings, table, m, run_id), [m]) for m in manifests]
    paths = [partition_file(settings.lake_raw_dir, m) for m in manifests]
    result = run_gate(
        "gate1",
        table,
        read_landed_batch(paths),
        run_id,
        expectation_parameters=landed_batch_parameters(sum(m.row_count for m in manifests), [m.ds for m in manifests]),
    )
    if result.success:
        return [(result, list(manifests))]
    per_day = [(_validate_day(settings, table, m, run_id), [m]) for m in manifests]
    if all(r.success for r, _ in per_day):
        # Only the days together fail (e.g. a key repeated across days): hold them all.
        return [(result, list(manifests)), *per_day]
    return [(result, []), *per_day]


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

    con = connect_for_write(
        settings.warehouse_path, memory_limit=settings.duckdb_memory_limit, threads=settings.duckdb_threads
    )
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
        memory_limit=settings.duckdb_memory_limit,
        threads=settings.duckdb_threads,
    )
    con = connect_for_write(
        settings.warehouse_path, memory_limit=settings.duckdb_memory_limit, threads=settings.duckdb_threads
    )
    try:
        write_results(con, [result])
    finally:
        con.close()
    return result.raise_for_failure()

"""The gates as pipeline steps: what the DAG's `gate_landed` / `gate_marts` tasks and the headless
runner call. Each validates, records the outcome in `ops.data_health`, and raises `GateFailed`
with the one-line reason when the data must not move on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ingestion.lake import PartitionManifest, partition_file
from quality.gates import run_gate, validate_landed_batch, validate_marts
from quality.health import record_results
from quality.loaders import read_landed_batch
from quality.results import GateFailed, GateResult, combine
from stackctl.settings import Settings

__all__ = ["GateFailed", "gate_landed_batches", "gate_marts"]


def gate_landed_batches(
    settings: Settings, landed: Mapping[str, Mapping | Sequence[Mapping]], run_id: str
) -> GateResult:
    """Gate 1 over each table's landed partitions (one manifest, or several days of them)."""
    results = []
    for table, manifests in landed.items():
        items = [manifests] if isinstance(manifests, Mapping) else list(manifests)
        parsed = [PartitionManifest(**m) for m in items]
        days = sorted({m.ds for m in parsed})
        paths = [partition_file(settings.lake_raw_dir, m) for m in parsed]
        expected = sum(m.row_count for m in parsed)
        if len(days) == 1:
            result = validate_landed_batch(table, paths, run_id, days[0], expected_row_count=expected)
        else:
            # A bulk run (history, backfill) audits all its days of a table in one validation.
            result = run_gate(
                "gate1",
                table,
                read_landed_batch(paths),
                run_id,
                expectation_parameters={"manifest_row_count": expected},
            )
        results.append(result)
    combined = combine("gate1", results)
    record_results(settings.warehouse_path, combined, memory_limit=settings.duckdb_memory_limit)
    return combined.raise_for_failure()


def gate_marts(settings: Settings, run_id: str) -> GateResult:
    """Gate 2 over the marts in the warehouse, before publishing."""
    result = validate_marts(settings.warehouse_path, run_id, memory_limit=settings.duckdb_memory_limit)
    record_results(settings.warehouse_path, result, memory_limit=settings.duckdb_memory_limit)
    return result.raise_for_failure()

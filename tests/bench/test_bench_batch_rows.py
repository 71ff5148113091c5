"""The pipeline step's batch size comes from the loader's own ledger: this run's loaded rows only."""

from __future__ import annotations

from pathlib import Path

import duckdb

from bench.worker import _loaded_rows
from ingestion import run_ledger
from ingestion.lake import PartitionManifest


def _manifest(table: str, ds: str, run_id: str, rows: int) -> PartitionManifest:
    return PartitionManifest("shop", table, ds, run_id, "f.parquet", rows, 10, "x", "h", None, "2026-01-01")


def test_batch_rows_count_this_runs_loads_not_landings_or_other_runs(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        run_ledger.record(con, "day-2", [_manifest("orders", "2026-01-02", "day-2", 7)], {"2026-01-02": 7}, 1.0)
        run_ledger.record(con, "day-2", [_manifest("web_events", "2026-01-02", "day-2", 90)], {"2026-01-02": 90}, 1.0)
        run_ledger.record(con, "day-1", [_manifest("orders", "2026-01-01", "day-1", 5)], {"2026-01-01": 5}, 1.0)
        # a retried load of the same partition replaces its ledger rows: counted once
        run_ledger.record(con, "day-2", [_manifest("orders", "2026-01-02", "day-2", 7)], {"2026-01-02": 7}, 1.0)
    assert _loaded_rows(warehouse, "day-2") == 97
    assert _loaded_rows(warehouse, "day-3") == 0

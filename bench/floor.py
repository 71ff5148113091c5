"""Baseline (a), the floor: `floor.sql` over the lake's raw Parquet in one DuckDB process.

It is what the transformation costs the engine itself, with no orchestration, no gates, no
intermediate tables kept and no publication: the pipeline's dbt stage can only be slower.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

SCRIPT = Path(__file__).with_name("floor.sql")
KPI_TABLES = {
    "daily_revenue": "kpi_daily_revenue",
    "cohort_retention": "kpi_cohort_retention",
    "experiment_results": "kpi_experiment_results",
}


def run_floor(raw_shop_dir: Path, out_dir: Path, *, memory_limit: str = "3GB", threads: int = 2) -> dict[str, int]:
    """Compute the KPIs from `raw_shop_dir` (lake/raw/shop); write one Parquet file per KPI."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spill = out_dir / ".duckdb_tmp"
    spill.mkdir(exist_ok=True)
    con = duckdb.connect(config={"memory_limit": memory_limit, "threads": threads, "temp_directory": str(spill)})
    try:
        script = SCRIPT.read_text().replace("{raw}", str(raw_shop_dir).replace("'", "''"))
        con.execute(script)
        rows = {}
        for name, table in KPI_TABLES.items():
            target = str(out_dir / f"{name}.parquet").replace("'", "''")
            con.execute(f"copy {table} to '{target}' (format parquet)")
            rows[name] = con.execute(f"select count(*) from {table}").fetchone()[0]
        return rows
    finally:
        con.close()

"""Baseline (a), the floor: `floor.sql` over the lake's raw Parquet in one DuckDB process.

It is what the transformation costs the engine itself, with no orchestration, no gates, no
intermediate tables kept and no publication: the pipeline's dbt stage can only be slower.
"""

from __future__ import annotations

from pathlib import Path

from core.duckdb_connect import connect_memory
from core.settings import Settings

SCRIPT = Path(__file__).with_name("floor.sql")
KPI_TABLES = {
    "daily_revenue": "kpi_daily_revenue",
    "cohort_retention": "kpi_cohort_retention",
    "experiment_results": "kpi_experiment_results",
}


def run_floor(raw_shop_dir: Path, out_dir: Path, settings: Settings) -> dict[str, int]:
    """Compute the KPIs from `raw_shop_dir` (lake/raw/shop); write one Parquet file per KPI.

    One DuckDB session with the stack's limits (`settings`), spilling into `out_dir`.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    con = connect_memory(settings, spill_dir=out_dir / ".duckdb_tmp")
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

"""One measured step of the benchmark, run in a fresh process by `bench.__main__`.

`python -m bench.worker <step> ... --json <file>`: simulate, pipeline (the real `run_range`, with
wall time and peak RSS per stage), extraction (µs per row per table, bench/extraction.py), floor
or pandas (a baseline writing its KPIs as Parquet), spark-marts (the marts built on a Spark
cluster, bench/spark_marts.py). A fresh process per step makes its peak
memory its own; the environment (set by the caller) points every data path at the scale's bench
folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import re
import sys
import time
from pathlib import Path

from bench.measure import StageMeter, peak_rss_mib, write_json


def _simulate(args: argparse.Namespace) -> dict:
    from core.settings import get_settings
    from ingestion.simulator.run import simulate

    totals = simulate(
        get_settings().app_db_url,
        dt.date.fromisoformat(args.start),
        dt.date.fromisoformat(args.end),
        seed=args.seed,
        scale=args.scale,
        browse_sample=args.browse_sample,
        growth=args.growth,
    )
    return {"rows_written": totals}


def _pipeline(args: argparse.Namespace) -> dict:
    from bench.dbt_nodes import node_seconds, run_results_path
    from core.settings import get_settings
    from pipelines.runner import run_range

    meter = StageMeter()
    began = time.monotonic()
    started_at = time.time()
    error = None
    timings: dict[str, float] = {}
    try:
        timings = run_range(
            get_settings(),
            dt.date.fromisoformat(args.start),
            dt.date.fromisoformat(args.end),
            args.run_id,
            progress=meter.progress_hook("extract+land"),
        )
    except Exception as exc:  # recorded with the stages measured up to the failure
        failed_stage = meter.current
        detail = " | ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()[-3:])
        error = f"{failed_stage}: {type(exc).__name__}: {detail}"
    meter.end()
    stages = {}
    for name, result in meter.stages.items():
        # run_range's own clock is the reference for wall time; the meter adds memory
        stages[name] = {**result.__dict__, "wall_s": timings.get(name, result.wall_s)}
    outcome = {"stages": stages, "wall_s": time.monotonic() - began, "peak_rss_resets": meter.resets_work}
    run_results = run_results_path(get_settings())
    if run_results.exists() and run_results.stat().st_mtime >= started_at:  # written by this run's build
        outcome["dbt_nodes"] = node_seconds(run_results)
    if "load" in timings:
        outcome["batch_rows"] = _loaded_rows(get_settings().warehouse_path, args.run_id)
    if error:
        outcome["error"] = error
    return outcome


def _loaded_rows(warehouse: Path, run_id: str) -> int:
    """Rows this run loaded into the warehouse's raw tables (the load step's own ledger): the size
    of the batch that gate 1 and the load worked on, so their cost can be given per million rows."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        query = "select coalesce(sum(rows), 0) from ops.run_ledger where run_id = ? and step = 'load'"
        return int(con.execute(query, [run_id]).fetchone()[0])


def _extraction(args: argparse.Namespace) -> dict:
    from bench.extraction import extraction_cost
    from core.settings import get_settings

    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
    return extraction_cost(get_settings(), start, end, days=args.sample_days)


def _spark_marts(args: argparse.Namespace) -> dict:
    from bench.spark_marts import build_on_spark
    from core.settings import get_settings

    return build_on_spark(get_settings())


def _floor(args: argparse.Namespace) -> dict:
    from bench.floor import run_floor
    from core.settings import get_settings

    rows = run_floor(Path(args.raw), Path(args.out), get_settings())
    return {"rows": rows}


def _pandas(args: argparse.Namespace) -> dict:
    from bench.pandas_baseline import run_pandas

    return {"rows": run_pandas(Path(args.raw), Path(args.out))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("--json", required=True, help="where to write the step's result")
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("simulate")
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--scale", type=float, required=True)
    p.add_argument("--browse-sample", type=float, required=True)
    p.add_argument("--growth", type=float, required=True, help="orders growth per day (simulator option)")
    p = sub.add_parser("pipeline")
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)
    p.add_argument("--run-id", required=True)
    p = sub.add_parser("extraction")
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)
    p.add_argument("--sample-days", type=int, default=12, help="days timed through both extraction paths")
    sub.add_parser("spark-marts", help="the marts built on a Spark cluster from the loaded raw data")
    for name in ("floor", "pandas"):
        p = sub.add_parser(name)
        p.add_argument("--raw", required=True, help="the lake's raw/shop folder")
        p.add_argument("--out", required=True, help="folder for the KPI Parquet files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    began = time.monotonic()
    steps = {
        "simulate": _simulate,
        "pipeline": _pipeline,
        "extraction": _extraction,
        "floor": _floor,
        "pandas": _pandas,
        "spark-marts": _spark_marts,
    }
    result = steps[args.step](args)
    result.setdefault("wall_s", time.monotonic() - began)
    result["self_peak_rss_mib"] = peak_rss_mib()
    write_json(Path(args.json), result)
    if "error" in result:
        print(f"error: {result['error']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

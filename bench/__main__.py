"""`python -m stackctl bench` (`make bench`): simulate, run the pipeline, run the baselines, compare, report.

Per scale, in `var/bench/<scale>/` (never the demo data): simulate a year of the shop; run the
real pipeline headless over the whole history (`pipelines.runner.run_range`, the functions the
DAGs call); run the floor and the pandas baseline over the same lake files and check both equal
the published marts; simulate one more day and run the pipeline for it (the daily increment),
then check the marts against the floor again. For the two-year scales (`--two-year-scales`, the
simulator with flat volume: the same orders every year), then run the rest of the second year in
batches of 30 days and one more day, "+1 day after two years", and check the floor again: how the
daily cost grows with history is the ratio of the two +1 day runs. Each step is its own process,
measured for wall time and peak RSS. Then Superset latency (if `superset/latency.py` and Superset are there) and,
with `--setup`, the cost of installing from a fresh clone. Writes `bench/results/<date>.{md,json,
svg,png}` and prints the summary table. `python -m bench` is the same command line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench import compare, report
from bench.measure import ProcessResult, machine, run_measured
from bench.scales import DEFAULT_DAYS, Scale, parse_scale
from core.cli_types import positive_float, positive_int
from core.command import prepare_command
from core.settings import REPO_ROOT, get_settings

PY = sys.executable
GIB = 1024.0  # MiB per GiB
SECOND_YEAR_BATCH_DAYS = 30
# the runs of a scale whose failure makes the exit status non-zero
PIPELINE_RUNS = ("full", "incremental", "second_year", "incremental_two_years")
# Data paths the bench overrides, so a user's .env never points a bench run at real data.
_DATA_VARIABLES = (
    "APP_DB_URL",
    "LAKE_DIR",
    "WAREHOUSE_DIR",
    "WAREHOUSE_PATH",
    "SERVING_PATH",
    "AIRFLOW_HOME",
    "SUPERSET_HOME",
    "DBT_DEV_PATH",
    "STACK_DATA_DIR",
    "STACK_VAR_DIR",
)


class StepFailed(RuntimeError):
    """A required step failed; `result` holds what it measured before failing."""

    def __init__(self, message: str, result: dict):
        super().__init__(message)
        self.result = result


def bench_env(data_dir: Path) -> dict[str, str]:
    """The environment of a scale's workers: every data path inside `data_dir`."""
    env = {k: v for k, v in os.environ.items() if k not in _DATA_VARIABLES}
    env.update(
        STACK_DATA_DIR=str(data_dir),
        STACK_VAR_DIR=str(data_dir / "var"),
        PII_HASH_KEY="bench-data-is-synthetic",
        # dbt's own target and logs per scale: runs of other checkouts or tests never invalidate
        # its partial parse (the +1 day run reuses the full run's parse, as a warm worker would)
        DBT_TARGET_PATH=str(data_dir / "dbt" / "target"),
        DBT_LOG_PATH=str(data_dir / "dbt" / "logs"),
        PYTHONUNBUFFERED="1",
        DBT_SEND_ANONYMOUS_USAGE_STATS="False",
        DO_NOT_TRACK="1",
    )
    return env


SIMULATION_KEY = "simulation-key.json"  # the simulate step's arguments, beside its result


def _reusable_simulation(data: Path, args: list[str]) -> dict | None:
    """The result of an earlier `simulate` step with these very arguments whose app DB is still
    there (`--reuse-simulation`), else None."""
    work = data / "bench"
    try:
        if json.loads((work / SIMULATION_KEY).read_text()) != args or not any((data / "appdb").iterdir()):
            return None
        return json.loads((work / "simulate.json").read_text())
    except (OSError, ValueError):
        return None


def _step(
    name: str, args: list[str], env: dict[str, str], work: Path, *, rss_cap_mib: float | None = None, required=True
) -> dict:
    """Run one `bench.worker` step; merge the worker's JSON with what the parent measured."""
    out = work / f"{name}.json"
    out.unlink(missing_ok=True)
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    measured: ProcessResult = run_measured(
        [PY, "-m", "bench.worker", "--json", str(out), *args], env=env, cwd=REPO_ROOT, rss_cap_mib=rss_cap_mib
    )
    # a failed pipeline worker still writes the stages it measured (and its error)
    result: dict = json.loads(out.read_text()) if out.exists() else {}
    # the sampler may miss a process's last moments; the worker's own high-water marks do not
    own = [result.get("self_peak_rss_mib") or 0.0] + [s["peak_rss_mib"] for s in result.get("stages", {}).values()]
    result.update(wall_s=measured.wall_s, peak_rss_mib=max(measured.peak_rss_mib, *own))
    if measured.returncode != 0 or "error" in result:
        if measured.killed_for_memory and rss_cap_mib:
            reason = f"killed at {rss_cap_mib / GIB:.1f} GiB RSS (the step's memory cap)"
        else:
            last = measured.stderr_tail.strip().splitlines()[-1:] or [""]
            reason = result.get("error") or f"exit {measured.returncode}: {last[0]}"
        result["error"] = reason
        print(f"[bench] {name} FAILED: {reason}", file=sys.stderr, flush=True)
        if required:
            raise StepFailed(f"{name}: {reason}", result)
    else:
        done = f"done in {measured.wall_s:.1f}s, peak RSS {measured.peak_rss_mib:.0f} MiB"
        print(f"[bench] {name} {done}", file=sys.stderr, flush=True)
    return result


def _combine(runs: list[dict]) -> dict:
    """Batches of one run as one: wall times summed, peaks the largest of any batch."""
    combined: dict = {"batches": len(runs), "wall_s": sum(r["wall_s"] for r in runs)}
    errors = [r["error"] for r in runs if "error" in r]
    if errors:
        combined["error"] = errors[-1]
    combined["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
    if any("batch_rows" in r for r in runs):
        combined["batch_rows"] = sum(r.get("batch_rows", 0) for r in runs)
    stages: dict[str, dict] = {}
    for run in runs:
        for name, stage in run.get("stages", {}).items():
            into = stages.setdefault(name, {**stage, "wall_s": 0.0})
            into["wall_s"] += stage["wall_s"]
            for key in ("peak_rss_mib", "self_peak_rss_mib", "child_peak_rss_mib", "start_rss_mib"):
                values = [v for v in (into.get(key), stage.get(key)) if v is not None]
                into[key] = max(values) if values else None
    if stages:
        combined["stages"] = stages
    nodes: dict[str, float] = {}
    for run in runs:
        for node, seconds in run.get("dbt_nodes", {}).items():
            nodes[node] = round(nodes.get(node, 0.0) + seconds, 3)
    if nodes:
        combined["dbt_nodes"] = nodes
    return combined


def _check(baseline_dir: Path, serving: Path) -> dict[str, object]:
    """Per KPI: 'equal', the list of differences, or why it could not be compared."""
    marts = compare.read_marts(serving)
    got = compare.read_baseline(baseline_dir)
    verdict: dict[str, object] = {}
    for name, mart in marts.items():
        if mart is None:
            verdict[name] = f"no mart {compare.KPIS[name].mart}"
            continue
        problems = compare.differences(name, mart, got[name])
        verdict[name] = "equal" if not problems else problems
    return verdict


def _dir_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _raw_counts(warehouse: Path) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        query = "select table_name from information_schema.tables where table_schema = 'raw'"
        tables = [t for (t,) in con.execute(query).fetchall()]
        counts = {t: con.execute(f'select count(*) from raw."{t}"').fetchone()[0] for t in sorted(tables)}
        if "orders" in tables:
            counts["distinct orders"] = con.execute("select count(distinct order_id) from raw.orders").fetchone()[0]
        return counts
    finally:
        con.close()


def run_scale(
    scale: Scale,
    root: Path,
    result: dict,
    *,
    pandas: bool,
    pandas_cap_mib: float,
    pipeline_cap_mib: float,
    batch_days: int | None,
    keep: bool,
    two_years: bool = False,
    reuse_simulation: bool = False,
    spark: bool = False,
) -> None:
    """Measure everything at one scale into `result`; raises StepFailed (keeping what was measured).

    `two_years`: after the +1 day, the rest of the second year and a +1 day after two years.
    `spark`: after the full run, the marts built on a Spark cluster from the same raw data."""
    data = root / scale.name
    work = data / "bench"
    sim = ["simulate", "--seed", str(scale.seed), "--scale", str(scale.simulator_scale)]
    sim += ["--browse-sample", str(scale.browse_sample), "--growth", str(scale.growth)]
    sim += ["--start", str(scale.start)]
    simulated = _reusable_simulation(data, [*sim, "--end", str(scale.end)]) if reuse_simulation else None
    if simulated is not None:
        # the app DB the same simulation wrote before: everything downstream of it starts afresh
        for entry in data.iterdir():
            if entry.name not in {"appdb", "bench"}:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        for entry in work.iterdir():
            if entry.name not in {"simulate.json", SIMULATION_KEY}:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()  # the baselines' KPI folders too
    else:
        shutil.rmtree(data, ignore_errors=True)
        work.mkdir(parents=True)
    env = bench_env(data)
    raw = data / "lake" / "raw" / "shop"
    serving = data / "warehouse" / "serving.duckdb"
    result.update({
        "name": scale.name,
        "orders_target": scale.orders,
        "days": scale.days,
        "start": str(scale.start),
        "end": str(scale.end),
        "simulator_scale": scale.simulator_scale,
        "browse_sample": scale.browse_sample,
        "growth": scale.growth,
        "seed": scale.seed,
        "history_batch_days": batch_days,
        "duckdb_memory_limit": os.environ.get("DUCKDB_MEMORY_LIMIT", "3GB"),
    })  # fmt: skip
    began = time.monotonic()
    try:
        if not batch_days:
            # the whole history at once: a backfill from the app DB as it is at the end of the period
            if simulated is not None:
                result["simulate"] = {**simulated, "reused": True}
                print("[bench] simulate: reusing the app DB of the same simulation", file=sys.stderr, flush=True)
            else:
                result["simulate"] = _step("simulate", [*sim, "--end", str(scale.end)], env, work)
                (work / SIMULATION_KEY).write_text(json.dumps([*sim, "--end", str(scale.end)]))
            full = ["pipeline", "--start", str(scale.start), "--end", str(scale.end), "--run-id", "bench-full"]
            try:
                result["full"] = _step("pipeline-full", full, env, work, rss_cap_mib=pipeline_cap_mib)
            except StepFailed as exc:
                result["full"] = exc.result
                raise
        else:
            # batches as production would meet them: each simulated just before it is extracted
            simulated, runs = [], []
            first = scale.start
            while first <= scale.end:
                last = min(first + dt.timedelta(days=batch_days - 1), scale.end)
                simulated.append(_step(f"simulate-{first}", [*sim, "--end", str(last)], env, work))
                batch = ["pipeline", "--start", str(first), "--end", str(last), "--run-id", f"bench-full-{first}"]
                try:
                    runs.append(_step(f"pipeline-{first}", batch, env, work, rss_cap_mib=pipeline_cap_mib))
                except StepFailed as exc:
                    result["simulate"], result["full"] = _combine(simulated), _combine([*runs, exc.result])
                    raise
                first = last + dt.timedelta(days=1)
            result["simulate"] = _combine(simulated)
            result["full"] = _combine(runs)
        result["data"] = {
            "raw_rows": _raw_counts(data / "warehouse" / "warehouse.duckdb"),
            "app_db_bytes": _dir_bytes(data / "appdb"),
            "lake_bytes": _dir_bytes(data / "lake"),
            "warehouse_bytes": _dir_bytes(data / "warehouse" / "warehouse.duckdb"),
            "serving_bytes": _dir_bytes(serving),
        }
        # the app DB as the full run read it: µs per row per table, ADBC against SQLAlchemy
        extraction = ["extraction", "--start", str(scale.start), "--end", str(scale.end)]
        result["extraction"] = _step("extraction", extraction, env, work, required=False)
        checks: dict[str, dict] = result.setdefault("checks", {})
        result["floor"] = _step("floor", ["floor", "--raw", str(raw), "--out", str(work / "floor")], env, work)
        checks["floor vs marts"] = _check(work / "floor", serving)
        if pandas:
            result["pandas"] = _step(
                "pandas", ["pandas", "--raw", str(raw), "--out", str(work / "pandas")], env, work,
                rss_cap_mib=pandas_cap_mib, required=False,
            )  # fmt: skip
            if "error" not in result["pandas"]:
                checks["pandas vs marts"] = _check(work / "pandas", serving)
        if spark:  # before the +1 day loads more: the same raw data the DuckDB build had
            result["spark"] = _step("spark-marts", ["spark-marts"], env, work, required=False)
        new_day = scale.end + dt.timedelta(days=1)
        result["simulate_new_day"] = _step("simulate-new-day", [*sim, "--end", str(new_day)], env, work)
        day = ["pipeline", "--start", str(new_day), "--end", str(new_day), "--run-id", "bench-day"]
        result["incremental"] = _step(
            "pipeline-incremental", day, env, work, rss_cap_mib=pipeline_cap_mib, required=False
        )
        if "error" in result["incremental"]:
            checks["floor vs marts after the increment"] = {
                "all": "not compared: the +1 day run failed (nothing published)"
            }
        else:
            result["floor_after_increment"] = _step(
                "floor-after-increment", ["floor", "--raw", str(raw), "--out", str(work / "floor-increment")], env, work
            )
            checks["floor vs marts after the increment"] = _check(work / "floor-increment", serving)
        if two_years:
            _second_year(scale, sim, new_day, env, work, raw, serving, result, pipeline_cap_mib)
        result["wall_s_total"] = time.monotonic() - began
    finally:
        if not keep:  # the app DB alone is ~24 GB at 10M orders
            for folder in ("appdb", "lake", "warehouse"):
                shutil.rmtree(data / folder, ignore_errors=True)


def _second_year(
    scale: Scale,
    sim: list[str],
    new_day: dt.date,
    env: dict[str, str],
    work: Path,
    raw: Path,
    serving: Path,
    result: dict,
    pipeline_cap_mib: float,
) -> None:
    """The rest of the second year in batches of 30 days (each simulated just before it is run),
    then one more day, "+1 day after two years", and the floor against the marts after it.

    The second +1 day is `scale.days` after the first (the same day of the year; at 365 days,
    730 days of history before it, 365 before the first): with the flat volume of the two-year
    scales both days expect the same orders, so the ratio of the two runs is the growth of the
    daily cost with history alone. Failures are recorded, never raised: what was measured before
    stays in the report."""
    day_two = new_day + dt.timedelta(days=scale.days)
    last_of_year = day_two - dt.timedelta(days=1)
    checks: dict[str, dict] = result.setdefault("checks", {})
    check = "floor vs marts after two years"
    result["two_years"] = {
        "second_year": f"{new_day + dt.timedelta(days=1)}..{last_of_year}",
        "day_one_year": str(new_day),
        "day_two_years": str(day_two),
        "history_days_before": {"one_year": (new_day - scale.start).days, "two_years": (day_two - scale.start).days},
        "expected_orders": {
            "one_year": round(scale.expected_orders(new_day), 1),
            "two_years": round(scale.expected_orders(day_two), 1),
        },
        "batch_days": SECOND_YEAR_BATCH_DAYS,
    }
    if "error" in result.get("incremental", {}):
        result["second_year"] = {"error": "not run: the +1 day run failed"}
        checks[check] = {"all": "not compared: the +1 day run failed"}
        return
    simulated, runs = [], []
    first = new_day + dt.timedelta(days=1)
    failed = None
    while first <= last_of_year:
        last = min(first + dt.timedelta(days=SECOND_YEAR_BATCH_DAYS - 1), last_of_year)
        try:
            simulated.append(_step(f"simulate-{first}", [*sim, "--end", str(last)], env, work))
        except StepFailed as exc:
            simulated.append(exc.result)
            failed = f"simulate {first}..{last}: {exc.result.get('error')}"
            break
        batch = ["pipeline", "--start", str(first), "--end", str(last), "--run-id", f"bench-year2-{first}"]
        runs.append(_step(f"pipeline-{first}", batch, env, work, rss_cap_mib=pipeline_cap_mib, required=False))
        if "error" in runs[-1]:
            failed = f"pipeline {first}..{last}: {runs[-1]['error']}"
            break
        first = last + dt.timedelta(days=1)
    result["simulate_second_year"] = _combine(simulated) if simulated else {}
    result["second_year"] = _combine(runs) if runs else {"batches": 0, "wall_s": 0.0}
    if failed:
        result["second_year"]["error"] = failed
        checks[check] = {"all": "not compared: the second year failed"}
        return
    try:
        result["simulate_two_years_day"] = _step("simulate-day-two-years", [*sim, "--end", str(day_two)], env, work)
    except StepFailed as exc:
        result["simulate_two_years_day"] = exc.result
        result["incremental_two_years"] = {"error": f"not run: simulating {day_two} failed"}
        checks[check] = {"all": "not compared: simulating the day failed"}
        return
    day = ["pipeline", "--start", str(day_two), "--end", str(day_two), "--run-id", "bench-day-two-years"]
    result["incremental_two_years"] = _step(
        "pipeline-incremental-two-years", day, env, work, rss_cap_mib=pipeline_cap_mib, required=False
    )
    if "error" in result["incremental_two_years"]:
        checks[check] = {"all": "not compared: the +1 day after two years failed (nothing published)"}
        return
    floor_args = ["floor", "--raw", str(raw), "--out", str(work / "floor-two-years")]
    result["floor_after_two_years"] = _step("floor-after-two-years", floor_args, env, work, required=False)
    if "error" in result["floor_after_two_years"]:
        checks[check] = {"all": f"not compared: the floor failed: {result['floor_after_two_years']['error']}"}
    else:
        checks[check] = _check(work / "floor-two-years", serving)


def _superset() -> dict:
    """Chart-data latency and dashboard render times of the running Superset (the demo stack's
    serving file: the dashboards read marts, whose size hardly depends on the history's)."""
    if not (REPO_ROOT / "superset" / "latency.py").exists():
        return {"skipped": "superset/latency.py does not exist"}
    port = get_settings().superset_port
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return {"skipped": f"Superset is not running on 127.0.0.1:{port} (`make up` starts it)"}
    print("[bench] superset latency ...", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(  # noqa: S603 - our own module
            [PY, "-m", "superset.latency"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800, check=False
        )
    except subprocess.TimeoutExpired:
        return {"skipped": "superset.latency did not finish within 30 minutes"}
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        return {"skipped": f"superset.latency exited {done.returncode}: {last[0]}"}
    return json.loads(done.stdout)


def _merge_with_earlier(results: dict, earlier_path: Path) -> dict:
    """Add the scales of an earlier run the same day (big scales can be run one at a time)."""
    if not earlier_path.exists():
        return results
    earlier = json.loads(earlier_path.read_text())
    names = {s["name"] for s in results["scales"]}
    kept = [s for s in earlier.get("scales", []) if s["name"] not in names]
    merged = {**results, "scales": sorted(kept + results["scales"], key=lambda s: s.get("orders_target", 0))}
    merged["notes"] = list(dict.fromkeys([*earlier.get("notes", []), *results.get("notes", [])]))
    for part in ("superset", "setup"):
        if (
            (not results.get(part) or "skipped" in results[part])
            and earlier.get(part)
            and "skipped" not in earlier[part]
        ):
            merged[part] = earlier[part]
    return merged


def _scale_list(text: str) -> list[str]:
    """An argparse `type=`: comma-separated scales such as `100k,1m` ('' is none), each checked now."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        try:
            parse_scale(name)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return names


def _share(text: str) -> float:
    """An argparse `type=`: a share above 0 and at most 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share above 0 and at most 1")
    return value


def main(argv: list[str] | None = None, prog: str = "python -m bench") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scales",
        type=_scale_list,
        default="1m,10m",
        help="orders over the period, comma-separated (default 1m,10m)",
    )
    parser.add_argument("--days", type=positive_int, default=DEFAULT_DAYS, help="simulated history (default 365)")
    parser.add_argument(
        "--browse-sample",
        type=_share,
        default=0.02,
        help="share of sessions without a purchase the simulator writes (default 0.02; 1 = all traffic)",
    )
    parser.add_argument("--no-pandas", action="store_true", help="skip the pandas baseline")
    parser.add_argument("--note", action="append", default=[], help="a remark for the report (repeatable)")
    parser.add_argument("--pandas-rss-cap-gib", type=positive_float, default=12.0, help="kill pandas above this RSS")
    parser.add_argument(
        "--pipeline-rss-cap-gib",
        type=positive_float,
        default=12.0,
        help="kill the pipeline above this RSS (protects the machine)",
    )
    parser.add_argument(
        "--history-batch-days",
        type=positive_int,
        help="run the full history as consecutive batches of this many days (a chunked backfill); default: one batch",
    )
    parser.add_argument(
        "--two-year-scales",
        type=_scale_list,
        default="1m",
        help="scales also run over a second year, then +1 day after two years (flat volume: simulator growth 0); "
        "comma-separated, '' for none (default 1m)",
    )
    parser.add_argument(
        "--spark-scales",
        type=_scale_list,
        default="",
        help="scales whose marts are also built on a local Spark cluster (Spark mode) from the same raw data, "
        "after the full DuckDB run; needs `make spark-env`; comma-separated (default none)",
    )
    parser.add_argument("--no-superset", action="store_true", help="skip the Superset latency measurement")
    parser.add_argument("--setup", action="store_true", help="also time `make install` from a fresh clone")
    parser.add_argument(
        "--fresh", action="store_true", help="replace today's results instead of adding these scales to them"
    )
    parser.add_argument("--keep-data", action="store_true", help="keep var/bench/<scale>/ data after the run")
    parser.add_argument(
        "--reuse-simulation",
        action="store_true",
        help="with --keep-data from an earlier run: reuse its simulated app DB when the simulation's "
        "arguments are the same (the pipeline still runs from scratch); the report says it was reused",
    )
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / "var" / "bench")
    parser.add_argument("--results-dir", type=Path, default=REPO_ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    # Superset's credentials and DuckDB limits, if the user has a .env (data paths are overridden).
    prepare_command()

    two_year = {parse_scale(s).name for s in args.two_year_scales}
    on_spark = {parse_scale(s).name for s in args.spark_scales}
    scales = [
        parse_scale(s, args.days, args.browse_sample, **({"growth": 0.0} if parse_scale(s).name in two_year else {}))
        for s in args.scales
    ]
    args.results_dir.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {
            "duckdb_memory_limit": os.environ.get("DUCKDB_MEMORY_LIMIT", "3GB"),
            "duckdb_threads": int(os.environ.get("DUCKDB_THREADS", "2")),
            "days": args.days,
            "browse_sample": args.browse_sample,
            "two_year_scales": sorted(two_year),
            "spark_scales": sorted(on_spark),
        },
        "scales": [],
        "notes": args.note,
    }
    failed = False
    for scale in scales:
        print(f"[bench] scale {scale.name}: {scale.orders:,} orders over {scale.days} days "
              f"(simulator scale {scale.simulator_scale}, growth {scale.growth:g}"
              f"{', then a second year' if scale.name in two_year else ''})", file=sys.stderr)  # fmt: skip
        measured: dict = {"name": scale.name, "orders_target": scale.orders}
        results["scales"].append(measured)
        try:
            run_scale(
                scale,
                args.data_dir,
                measured,
                pandas=not args.no_pandas,
                pandas_cap_mib=args.pandas_rss_cap_gib * GIB,
                pipeline_cap_mib=args.pipeline_rss_cap_gib * GIB,
                batch_days=args.history_batch_days,
                keep=args.keep_data,
                two_years=scale.name in two_year,
                reuse_simulation=args.reuse_simulation,
                spark=scale.name in on_spark,
            )
        except StepFailed as exc:
            failed = True
            measured["error"] = str(exc)
        failed = failed or any("error" in (measured.get(run) or {}) for run in PIPELINE_RUNS)
    results["superset"] = _superset() if not args.no_superset else {"skipped": "--no-superset"}
    if args.setup:
        from bench.setup_cost import measure_setup

        results["setup"] = measure_setup(REPO_ROOT)
    if not args.fresh:
        results = _merge_with_earlier(results, args.results_dir / f"{results['date']}.json")
    paths = report.write(results, args.results_dir)
    print(report.summary_table(results))
    print("\nwritten: " + ", ".join(str(p) for p in paths))
    mismatches = report.mismatches(results)
    for line in mismatches:
        print(f"MISMATCH {line}", file=sys.stderr)
    return 1 if failed or mismatches else 0


if __name__ == "__main__":
    sys.exit(main())

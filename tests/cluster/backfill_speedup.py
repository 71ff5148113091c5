"""Measure a backfill in cluster mode: serial (1 worker, 1 slot) vs parallel (2 workers x 2 slots).

    .venv/pipeline/bin/python -m tests.cluster.backfill_speedup --days 30 [--api-latency 1.0]

Both configurations backfill `shop_daily` and `marketing_api_daily` over the same days from the
same simulated source (own PostgreSQL database, Redis queue and temporary folder each), through
the scheduler and Celery workers. Then each builds its marts (dbt build, gate 2, publish) and the
script checks that both equal, table by table, the embedded pipeline run serially headless.
Prints the wall time of each backfill and the speed-up; the README quotes the result. Not a test:
it takes tens of minutes; `test_cluster_mode.py` checks the same properties on three days.

`--api-latency S` makes the marketing API stand-in answer every request after S seconds, like an
API across the internet: the wait that parallel workers overlap, where the CPU-bound steps of a
2-core machine cannot go faster with more processes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

from tests.cluster import harness
from tests.conftest import restored_environ

DAGS = ("shop_daily", "marketing_api_daily")


def _start_fake_api(settings) -> None:
    from stackctl import fake_api_service, procs

    os.environ["MARKETING_API_PORT"] = str(procs.free_port())
    os.environ.pop("MARKETING_API_URL", None)
    fake_api_service.up(settings, log=lambda msg: None)


def _stop_fake_api(settings) -> None:
    from stackctl import fake_api_service

    fake_api_service.down(settings)
    os.environ.pop("MARKETING_API_URL", None)


def reference(root: Path, app_db: Path, days: list[dt.date]) -> dict[str, str]:
    from core.dbt_cli import run_dbt
    from core.settings import get_settings
    from pipelines.runner import run_range

    harness.use_data_dir(root / "embedded", app_db)
    settings = get_settings()
    run_dbt(settings, "parse", "--quiet", quiet=True)
    _start_fake_api(settings)
    try:
        began = time.monotonic()
        run_range(settings, days[0], days[-1], "embedded-serial", sources=("shop", "marketing_api"))
        print(f"embedded headless (land all days, one load, one dbt build): {time.monotonic() - began:.0f}s")
    finally:
        _stop_fake_api(settings)
    return harness.marts_hashes(settings.serving_path)


def backfill(
    root: Path, app_db: Path, days: list[dt.date], workers: int, concurrency: int, runs: int, api_latency: float
):
    label = root.name
    with restored_environ():
        harness.use_data_dir(root, app_db)
        # read by the stand-in's server; the reference run (data only) does without the wait
        os.environ["MARKETING_API_LATENCY_SECONDS"] = str(api_latency)
        from core.settings import get_settings

        # Before Airflow starts: its workers pass MARKETING_API_URL on to the tasks.
        _start_fake_api(get_settings())
        with harness.ClusterStack(root, workers=workers, concurrency=concurrency) as stack:
            try:
                for dag_id in DAGS:
                    stack.api.wait_for_dag(dag_id)
                began = time.monotonic()
                for dag_id in DAGS:
                    stack.backfill(dag_id, days[0], days[-1], max_active_runs=runs)
                states = {}
                for dag_id in DAGS:
                    done = stack.wait_for_runs(dag_id, len(days), timeout=4 * 3600)
                    states[dag_id] = {r["state"] for r in done}
                seconds = time.monotonic() - began
                tis = [ti for dag_id in DAGS for ti in stack.task_instances(dag_id)]
                hosts = {ti["hostname"].split("@")[0] for ti in tis}
                # Time inside task bodies: the rest of the wall time is scheduling and start-up.
                print(f"  {label}: {sum(ti['duration'] or 0 for ti in tis):.0f}s inside {len(tis)} tasks", flush=True)
                harness.build_marts_headless(stack.settings, f"cluster-{workers}x{concurrency}")
                hashes = harness.marts_hashes(stack.settings.serving_path)
            finally:
                _stop_fake_api(stack.settings)
    return seconds, states, hosts, hashes


def compare(root: Path, labels: list[str]) -> str:
    """Rebuild the marts of each stack under `root` back to back; compare raw tables and marts."""
    from core.settings import get_settings

    raw, marts = {}, {}
    with restored_environ():
        for label in labels:
            os.environ.update({"STACK_DATA_DIR": str(root / label), "STACK_VAR_DIR": str(root / label / "var")})
            settings = get_settings()
            raw[label] = harness.raw_hashes(settings.warehouse_path)
            harness.build_marts_headless(settings, f"compare-{label}")
            marts[label] = harness.marts_hashes(settings.serving_path)
    first = labels[0]
    lines = []
    for label in labels[1:]:
        raw_diff = sorted(t for t in raw[first] if raw[first][t] != raw[label].get(t))
        marts_diff = sorted(t for t in marts[first] if marts[first][t] != marts[label].get(t))
        lines.append(
            f"{label} vs {first}: raw tables equal {not raw_diff and raw[first].keys() == raw[label].keys()} "
            f"({len(raw[first])} tables{', differ: ' + str(raw_diff) if raw_diff else ''}); "
            f"marts equal {not marts_diff and marts[first].keys() == marts[label].keys()} "
            f"({len(marts[first])} tables{', differ: ' + str(marts_diff) if marts_diff else ''})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--api-latency", type=float, default=0.0, help="seconds each marketing API answer waits")
    parser.add_argument("--compare-only", type=Path, help="a finished run's folder: rebuild and compare only")
    args = parser.parse_args(argv)
    if args.compare_only:
        os.environ.setdefault("PII_HASH_KEY", "speedup-key")
        print(compare(args.compare_only, ["embedded", "serial", "parallel"]))
        return 0
    reason = harness.unavailable_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    os.environ.setdefault("PII_HASH_KEY", "speedup-key")
    os.environ.setdefault("MARKETING_API_TOKEN", secrets.token_urlsafe(16))
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    days = [yesterday - dt.timedelta(days=n) for n in range(args.days - 1, -1, -1)]
    root = Path(tempfile.mkdtemp(prefix="backfill-speedup-"))
    app_db = root / "source" / "shop.sqlite"
    harness.simulate_source(app_db, days[0], days[-1])
    expected = reference(root, app_db, days)
    results = {}
    for label, workers, concurrency, runs in (("serial", 1, 1, 1), ("parallel", 2, 2, 10)):
        seconds, states, hosts, hashes = backfill(
            root / label, app_db, days, workers, concurrency, runs, args.api_latency
        )
        results[label] = seconds
        same = hashes == expected
        print(
            f"{label:8} {workers} worker(s) x {concurrency} slot(s), backfill max_active_runs={runs}: "
            f"{seconds:.0f}s for {len(days)} days x {len(DAGS)} DAGs; run states {states}; "
            f"workers used {sorted(hosts)}; marts equal to embedded: {same} ({len(hashes)} tables)",
            flush=True,
        )
        if not same:
            diff = sorted(t for t in set(expected) | set(hashes) if expected.get(t) != hashes.get(t))
            print(f"  differing marts: {diff}", flush=True)
    print(
        f"speed-up parallel vs serial: {results['serial'] / results['parallel']:.2f}x "
        f"(machine: {os.cpu_count()} cores; API latency {args.api_latency}s per request)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

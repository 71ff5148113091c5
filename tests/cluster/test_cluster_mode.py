"""Cluster mode for real: PostgreSQL metadata, CeleryExecutor on Redis, two workers, same DAGs.

A short backfill of `shop_daily` runs through the scheduler and two Celery workers; the test
checks that the workers (not the scheduler) ran every task, that tasks ran in parallel while the
DuckDB warehouse writers (pool `duckdb_warehouse`) never overlapped, and that the marts built from
what the cluster loaded are identical, table by table, to those of the embedded pipeline run
serially over the same days and the same source.

Skips only when PostgreSQL or Redis on 127.0.0.1 does not answer (the reason says which).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re

import pytest

from tests.cluster import harness
from tests.conftest import restored_environ

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# The window ends yesterday: unpausing the DAG makes the scheduler want a run for yesterday, and
# the backfill (created first) already owns that date, so no scheduled run competes.
YESTERDAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
DAYS = [YESTERDAY - dt.timedelta(days=n) for n in (2, 1, 0)]
POOL_TASKS = {"gate_landed", "load"}


@pytest.fixture(scope="module")
def source_and_reference(tmp_path_factory):
    """One simulated app DB, and the marts of the embedded pipeline run serially over DAYS."""
    reason = harness.unavailable_reason()
    if reason:
        pytest.skip(reason)
    from core.dbt_cli import run_dbt
    from core.settings import get_settings
    from pipelines.runner import run_range

    root = tmp_path_factory.mktemp("cluster")
    with restored_environ():
        os.environ["PII_HASH_KEY"] = "cluster-test-key"
        app_db = root / "source" / "shop.sqlite"
        harness.simulate_source(app_db, DAYS[0], DAYS[-1])
        harness.use_data_dir(root / "embedded", app_db)
        settings = get_settings()
        run_dbt(settings, "parse", "--quiet", quiet=True)  # the manifest elt_marts is rendered from
        run_range(settings, DAYS[0], DAYS[-1], "embedded-serial", progress=lambda msg: None)
        yield root, app_db, harness.marts_hashes(settings.serving_path)


@pytest.fixture(scope="module")
def cluster_backfill(source_and_reference):
    root, app_db, reference = source_and_reference
    with restored_environ():
        harness.use_data_dir(root / "cluster", app_db)
        with harness.ClusterStack(root / "cluster", workers=2, concurrency=1) as stack:
            stack.backfill("shop_daily", DAYS[0], DAYS[-1])
            runs = stack.wait_for_runs("shop_daily", len(DAYS), timeout=420)
            tis = stack.task_instances("shop_daily")
            worker_logs = stack.worker_logs()
            yield stack, runs, tis, worker_logs, reference


def test_backfill_succeeds_through_the_scheduler(cluster_backfill):
    _, runs, tis, _, _ = cluster_backfill
    assert {r["logical_date"][:10]: r["state"] for r in runs} == {str(d): "success" for d in DAYS}
    assert {r["run_type"] for r in runs} == {"backfill"}
    assert len(tis) == 3 * len(DAYS) and {ti["state"] for ti in tis} == {"success"}


def test_every_task_ran_on_a_celery_worker(cluster_backfill):
    stack, _, tis, worker_logs, _ = cluster_backfill
    hosts = {ti["hostname"].split("@")[0] for ti in tis}
    assert hosts <= {"worker-1", "worker-2"}, f"tasks ran outside the Celery workers: {hosts}"
    assert hosts == {"worker-1", "worker-2"}, f"both workers take work: {hosts}"
    assert {ti["queue"] for ti in tis} == {stack.queue}
    # Each worker's own log names the tasks it executed.
    executed = set(re.findall(r"task_id='(\w+)', dag_id='shop_daily'", worker_logs))
    assert executed == {"land", "gate_landed", "load"}, executed


def test_warehouse_writers_never_overlap_while_landing_runs_alongside(cluster_backfill):
    stack, _, tis, _, _ = cluster_backfill
    assert stack.api.get("/pools/duckdb_warehouse")["slots"] == 1, "init creates the one-writer pool"
    spans = sorted(
        (harness.parse_ts(ti["start_date"]), harness.parse_ts(ti["end_date"]), ti["task_id"], ti["pool"]) for ti in tis
    )
    writers = [s for s in spans if s[2] in POOL_TASKS]
    assert {s[3] for s in writers} == {"duckdb_warehouse"}
    for (_, end, *_), (start, *_) in itertools.pairwise(writers):
        assert start >= end, "two DuckDB writers ran at once"
    # Lands are chained (depends_on_past) and writers share one pool slot, so the only parallelism
    # is the next day's landing alongside the previous day's gate and load. Whether the two start
    # within the same second is up to the scheduler; that the next day lands without waiting for
    # the previous day's writers to finish is what the pool promises (a serial run would start it
    # after that load ended).
    by_day = {(ti["task_id"], ti["logical_date"][:10]): ti for ti in tis}
    for day, next_day in itertools.pairwise(DAYS):
        land_next = harness.parse_ts(by_day["land", str(next_day)]["start_date"])
        load_end = harness.parse_ts(by_day["load", str(day)]["end_date"])
        assert land_next < load_end, f"landing {next_day} waited for the load of {day}"


def test_marts_equal_the_embedded_serial_run(cluster_backfill):
    stack, _, _, _, reference = cluster_backfill
    harness.build_marts_headless(stack.settings, "cluster-backfill")
    cluster = harness.marts_hashes(stack.settings.serving_path)
    assert len(reference) >= 10, reference
    assert cluster == reference

"""A failed task alerts (alert file) and shows as a failed row in the data-health tables, without
ever failing the callback: a warehouse held by another writer leaves the alert file as the record."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import duckdb

from quality import task_failures


def _alerts(settings) -> list[dict]:
    path = settings.var_dir / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_task_failure_is_recorded_in_data_health_once_per_task_and_day(stack):
    for try_number in (1, 2):  # a retried task that fails again replaces its row
        record = task_failures.alert_task_failure(
            dag_id="shop_daily",
            task_id="load",
            run_id="scheduled__2026-03-02",
            ds="2026-03-02",
            reason=f"RuntimeError: raw.orders: loaded 3 rows, manifests say 4 (try {try_number})",
            try_number=try_number,
        )
        assert record["data_health"] == "recorded"
    with duckdb.connect(str(stack.warehouse_path), read_only=True) as con:
        runs = con.execute(
            "select gate, suite, table_name, ds::varchar, status, failed, reason from ops.gate_runs"
        ).fetchall()
        health = con.execute(
            "select gate, suite, expectation, success, severity, status, details from ops.data_health"
        ).fetchall()
    assert runs == [
        (
            "task",
            "shop_daily.load",
            "shop_daily",
            "2026-03-02",
            "failed",
            1,
            "shop_daily.load failed: RuntimeError: raw.orders: loaded 3 rows, manifests say 4 (try 2)",
        )
    ]
    assert [row[:6] for row in health] == [("task", "shop_daily.load", "task_succeeds", False, "critical", "failed")]
    assert json.loads(health[0][6])["try_number"] == 2
    assert [a["summary"] for a in _alerts(stack)] == [
        f"shop_daily.load failed for 2026-03-02: RuntimeError: raw.orders: loaded 3 rows, manifests say 4 (try {n})"
        for n in (1, 2)
    ]


def test_a_locked_warehouse_does_not_fail_the_callback(stack, monkeypatch):
    stack.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(  # another process writing the warehouse (a load in progress)
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(60)",
            str(stack.warehouse_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(task_failures, "WAREHOUSE_WAIT_SECONDS", 0.5)
        began = time.monotonic()
        record = task_failures.alert_task_failure(
            dag_id="shop_daily", task_id="land", run_id="r1", ds="2026-03-02", reason="AppDbError: gone"
        )
        assert time.monotonic() - began < 10
    finally:
        holder.kill()
        holder.wait()
    assert record["data_health"].startswith("not recorded")
    assert "lock" in record["data_health"].lower()
    assert _alerts(stack)[-1]["summary"] == "shop_daily.land failed for 2026-03-02: AppDbError: gone"

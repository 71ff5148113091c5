"""A load killed with SIGKILL mid-transaction leaves the warehouse as it was; the rerun completes.

The load runs in a child process whose loader pauses (and says so) after replacing the first
table of the day, inside the transaction; the test then kills it with SIGKILL, like an OOM kill
or a pulled plug, and compares the warehouse with a clean run.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from ingestion.app_db.batch import land_day, load_days
from ingestion.simulator.run import simulate
from tests.conftest import DAY0

DAY1 = DAY0 + dt.timedelta(days=1)
TABLES = ("customers", "products", "orders", "order_items", "returns", "web_events")

CHILD = textwrap.dedent(
    """
    import sys, time, datetime as dt
    from pathlib import Path
    import ingestion.warehouse as wh
    from ingestion.app_db.batch import load_days
    from core.settings import get_settings

    original = wh._replace_days
    def replace_then_hang(*args, **kwargs):
        result = original(*args, **kwargs)
        Path(sys.argv[1]).write_text("inside the transaction")
        time.sleep(600)
        return result
    wh._replace_days = replace_then_hang
    load_days(get_settings(), [dt.date.fromisoformat(sys.argv[2])], "doomed-run")
    """
)


def snapshot(path) -> dict[str, list]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            t: con.execute(f"select * exclude (_run_id, _loaded_at) from raw.{t} order by all").fetchall()
            for t in TABLES
        }


@pytest.fixture
def landed(stack):
    simulate(stack.app_db_url, DAY0, DAY1, progress=False)
    for ds in (DAY0, DAY1):
        land_day(stack, ds, f"land-{ds}")
    load_days(stack, [DAY0], "load-day0")
    return stack


def test_sigkill_mid_load_leaves_the_warehouse_unchanged_and_rerun_completes(landed, tmp_path):
    before = snapshot(landed.warehouse_path)
    signal_file = tmp_path / "inside"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(signal_file), str(DAY1)],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    deadline = time.monotonic() + 60
    while not signal_file.exists():
        assert child.poll() is None, "the loader exited before reaching the pause"
        assert time.monotonic() < deadline, "the loader never reached the pause"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    assert snapshot(landed.warehouse_path) == before, "a killed load must leave no trace"

    load_days(landed, [DAY1], "rerun")
    crashed_then_rerun = snapshot(landed.warehouse_path)
    clean = landed.warehouse_path.with_name("clean.duckdb")
    clean_settings = type(landed)(**{**landed.__dict__, "warehouse_path": clean})
    load_days(clean_settings, [DAY0, DAY1], "clean")
    assert crashed_then_rerun == snapshot(clean)


def test_the_run_ledger_counts_each_load_once(landed):
    load_days(landed, [DAY1], "load-day1")
    load_days(landed, [DAY1], "load-day1")  # a retry of the same run
    with duckdb.connect(str(landed.warehouse_path), read_only=True) as con:
        ledger = con.execute(
            "select table_name, step, rows, seconds from ops.run_ledger where run_id = 'load-day1' order by 1, 2"
        ).fetchall()
        raw_rows = {t: con.execute(f"select count(*) from raw.{t} where _ds = ?", [DAY1]).fetchone()[0] for t in TABLES}
    assert len(ledger) == 2 * len(TABLES)
    for table, step, rows, seconds in ledger:
        assert rows == raw_rows[table], (table, step)
        assert seconds is not None and seconds >= 0

"""Gate 1 holds bad landed batches in lake/quarantine with the reason, and lets them out only when fixed.

Real simulated shop days landed by the real extractor, the real gate (GX) and the real loader.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from core.settings import Settings
from ingestion.app_db.batch import land_day, load_days
from ingestion.lake import partition_dir, write_partition
from ingestion.simulator.run import simulate
from quality import GateFailed, quarantine
from quality.pipeline_gates import gate_landed_batches

REPO = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 3, 3)


def app_db(settings: Settings) -> str:
    return settings.app_db_url.removeprefix("sqlite:///")


@pytest.fixture
def shop(stack: Settings) -> Settings:
    """Two simulated days in the app DB; nothing landed yet."""
    simulate(stack.app_db_url, DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1), scale=0.1, progress=False)
    return stack


def negative_prices_at_source(settings: Settings, day: dt.date) -> int:
    """An upstream bug: the day's order lines are written with negative prices."""
    with sqlite3.connect(app_db(settings)) as con:
        return con.execute(
            "update order_items set unit_price_cents = -unit_price_cents where created_at >= ? and created_at < ?",
            [str(day), str(day + dt.timedelta(days=1))],
        ).rowcount


def fix_prices_at_source(settings: Settings, day: dt.date) -> None:
    with sqlite3.connect(app_db(settings)) as con:
        con.execute(
            "update order_items set unit_price_cents = abs(unit_price_cents) where created_at >= ? and created_at < ?",
            [str(day), str(day + dt.timedelta(days=1))],
        )


def health(settings: Settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_bad_batch_is_quarantined_with_its_reason_and_never_loaded(shop):
    assert negative_prices_at_source(shop, DAY) > 0
    landed = land_day(shop, DAY, "run-1")
    with pytest.raises(GateFailed) as failure:
        gate_landed_batches(shop, landed, "run-1")
    reason = str(failure.value)
    assert "\n" not in reason
    assert reason.startswith("gate1 raw.customers, raw.products, raw.orders, raw.order_items, raw.returns, ")
    assert "raw.order_items expect_column_values_to_be_between(unit_price_cents)" in reason
    ident = f"shop/order_items/ds={DAY}/run-1"
    assert reason.endswith(f"quarantined 1 batch(es) in {shop.quarantine_dir}: {ident}")

    # The batch moved out of lake/raw; the other tables' batches stay where they were.
    assert not partition_dir(shop.lake_raw_dir, "shop", "order_items", DAY).exists()
    assert (partition_dir(shop.lake_raw_dir, "shop", "orders", DAY) / "_manifest.json").exists()
    held = shop.quarantine_dir / ident
    files = sorted(p.name for p in held.iterdir())
    assert files == ["REPORT.md", "_manifest.json", "part-run-1.parquet", "reason.json"]
    record = json.loads((held / "reason.json").read_text())
    assert record["status"] == "held" and record["ds"] == str(DAY) and record["run_id"] == "run-1"
    assert [(f["expectation"], f["column_name"]) for f in record["failures"]] == [
        ("expect_column_values_to_be_between", "unit_price_cents")
    ]
    assert record["manifest"]["row_count"] == pq.read_table(held / "part-run-1.parquet").num_rows
    report = (held / "REPORT.md").read_text()
    assert "unit_price_cents" in report and f"quarantine release {ident}" in report

    # Nothing of the day can be loaded, and the data-health tables say why.
    with pytest.raises(FileNotFoundError, match="order_items ds=2026-03-03"):
        load_days(shop, [DAY], "run-1")
    assert health(shop, "select quarantine_id, status, failed_expectations from ops.quarantine") == [
        (ident, "held", "expect_column_values_to_be_between(unit_price_cents)")
    ]
    assert health(shop, "select suite, status from ops.gate_runs where status != 'passed'") == [
        ("raw.order_items", "failed")
    ]


def _rewrite_landed(settings: Settings, table: str, change) -> None:
    """A buggy extractor: the landed file (and its manifest) carry what `change` makes of the rows."""
    from ingestion.app_db.contract import CONTRACTS

    folder = partition_dir(settings.lake_raw_dir, "shop", table, DAY)
    original = pq.read_table(next(folder.glob("part-*.parquet")))
    rows = change(original)
    write_partition(settings.lake_raw_dir, "shop", table, DAY, rows.to_batches(), CONTRACTS[table].schema, "run-1")


def _null_first_key(t: pa.Table) -> pa.Table:
    keys = t.column("order_id").to_pylist()
    return t.set_column(0, "order_id", pa.array([None, *keys[1:]], pa.int64()))


BROKEN_BATCHES = {
    "nulls in keys": ("orders", _null_first_key, "expect_column_values_to_not_be_null(order_id)"),
    "duplicate rows": ("orders", lambda t: pa.concat_tables([t, t.slice(0, 2)]), "expect_column_values_to_be_unique"),
    "negative prices": (
        "order_items",
        lambda t: t.set_column(4, "unit_price_cents", pc.negate(t.column("unit_price_cents"))),
        "expect_column_values_to_be_between(unit_price_cents)",
    ),
}


@pytest.mark.parametrize("case", BROKEN_BATCHES)
def test_each_kind_of_bad_batch_is_held_at_gate_1(shop, case):
    table, change, expectation = BROKEN_BATCHES[case]
    landed = land_day(shop, DAY, "run-1")
    _rewrite_landed(shop, table, change)
    with pytest.raises(GateFailed, match=re.escape(f"raw.{table} {expectation}")) as failure:
        gate_landed_batches(shop, landed, "run-1")
    assert f"shop/{table}/ds={DAY}/run-1" in str(failure.value)
    assert [e.table for e in quarantine.list_entries(shop, quarantine.HELD)] == [table]


def test_release_refuses_a_batch_that_still_fails_and_lets_a_patched_one_go(shop):
    negative_prices_at_source(shop, DAY)
    landed = land_day(shop, DAY, "run-1")
    with pytest.raises(GateFailed):
        gate_landed_batches(shop, landed, "run-1")
    ident = f"shop/order_items/ds={DAY}/run-1"

    with pytest.raises(GateFailed, match="unit_price_cents"):
        quarantine.release(shop, ident)
    entry = quarantine.find(shop, ident)
    assert entry.status == "held" and entry.history[-1]["action"] == "release refused"

    # The fix drops one bad line and repairs the rest: the row count changes too.
    quarantine.patch(shop, ident, "delete from batch where order_item_id = (select min(order_item_id) from batch)")
    quarantine.patch(shop, ident, "update batch set unit_price_cents = abs(unit_price_cents)")
    result = quarantine.release(shop, ident)
    assert result.success and result.run_id == "release__run-1"
    assert quarantine.find(shop, ident).status == "released"
    # Back in lake/raw under the original run's file name: clearing gate_landed picks it up.
    assert gate_landed_batches(shop, landed, "run-1").success
    load_days(shop, [DAY], "run-1")
    assert health(shop, "select min(unit_price_cents) > 0, count(*) > 0 from raw.order_items") == [(True, True)]
    assert health(shop, "select status, resolution like 'gate 1 passed on release%' from ops.quarantine") == [
        ("released", True)
    ]
    history = [h["action"] for h in quarantine.find(shop, ident).history]
    assert history == ["quarantined", "release refused", "patched", "patched", "released"]


def test_a_relanded_fixed_day_supersedes_the_held_batch(shop):
    negative_prices_at_source(shop, DAY)
    with pytest.raises(GateFailed):
        gate_landed_batches(shop, land_day(shop, DAY, "run-1"), "run-1")
    fix_prices_at_source(shop, DAY)
    assert gate_landed_batches(shop, land_day(shop, DAY, "run-2"), "run-2").success
    (entry,) = quarantine.list_entries(shop)
    assert entry.status == "superseded" and "run-2" in entry.resolution
    assert quarantine.list_entries(shop, quarantine.HELD) == []
    assert health(shop, "select status from ops.quarantine") == [("superseded",)]


def test_clearing_the_gate_without_a_release_says_the_batch_is_held(shop):
    negative_prices_at_source(shop, DAY)
    landed = land_day(shop, DAY, "run-1")
    with pytest.raises(GateFailed):
        gate_landed_batches(shop, landed, "run-1")
    with pytest.raises(GateFailed, match=rf"held in quarantine: shop/order_items/ds={DAY}/run-1; release"):
        gate_landed_batches(shop, landed, "run-1")


def test_a_bulk_run_quarantines_only_its_bad_day(shop):
    days = [DAY - dt.timedelta(days=1), DAY, DAY + dt.timedelta(days=1)]
    negative_prices_at_source(shop, DAY)
    landed: dict[str, list[dict]] = {}
    for day in days:
        for table, manifest in land_day(shop, day, "history").items():
            landed.setdefault(table, []).append(manifest)
    with pytest.raises(GateFailed) as failure:
        gate_landed_batches(shop, landed, "history")
    assert f"ds={DAY}" in str(failure.value)
    assert [(e.table, e.ds) for e in quarantine.list_entries(shop, quarantine.HELD)] == [("order_items", str(DAY))]
    assert all(partition_dir(shop.lake_raw_dir, "shop", "order_items", d).exists() for d in (days[0], days[2]))
    # The bulk validation and the per-day ones that located the bad day are all recorded.
    assert health(shop, "select ds, status from ops.gate_runs where suite = 'raw.order_items' order by ds") == [
        (days[0], "passed"),
        (DAY, "failed"),
        (days[2], "passed"),
        (None, "failed"),
    ]


def test_cli_lists_shows_and_releases(shop, tmp_path):
    negative_prices_at_source(shop, DAY)
    with pytest.raises(GateFailed):
        gate_landed_batches(shop, land_day(shop, DAY, "run-1"), "run-1")
    env = {**os.environ, "GX_DOCS_DIR": str(tmp_path / "cli-docs")}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "quality", "quarantine", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    listed = cli("list")
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    assert line.startswith(f"held       shop/order_items/ds={DAY}/run-1 ") and "unit_price_cents" in line
    shown = cli("show", "shop/order_items")
    assert shown.returncode == 0 and shown.stdout.startswith(f"# Quarantined: shop.order_items ds={DAY}")
    refused = cli("release", "shop/order_items")
    assert refused.returncode == 1 and refused.stdout.startswith("still failing, kept in quarantine: gate1 raw.")
    assert cli("show", "nothing/like/this").returncode == 2
    assert cli("patch", "shop/order_items", "--sql", "update batch set unit_price_cents = 1").returncode == 0
    released = cli("release", "shop/order_items")
    assert released.returncode == 0, released.stdout + released.stderr
    assert released.stdout.startswith(f"released shop/order_items/ds={DAY}/run-1 to lake/raw")
    assert cli("list").stdout.strip() == "nothing held in quarantine"

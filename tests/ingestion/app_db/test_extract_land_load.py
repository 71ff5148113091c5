"""Extract -> land -> load for the internal source: counts match, reruns replace, failures roll back."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import duckdb
import pytest

from ingestion.app_db.batch import land_day, load_days
from ingestion.app_db.connection import AppDbError, connect, require_tables
from ingestion.lake import partition_dir
from ingestion.simulator.run import simulate
from tests.conftest import DAY0

DAY1 = DAY0 + dt.timedelta(days=1)
DAY2 = DAY0 + dt.timedelta(days=2)


@pytest.fixture
def shop(stack):
    simulate(stack.app_db_url, DAY0, DAY2, progress=False)
    return stack


def app_db_path(settings):
    return settings.app_db_url.removeprefix("sqlite:///")


def test_landed_partition_matches_the_source_day(shop):
    manifests = land_day(shop, DAY1, "run-1")
    with sqlite3.connect(app_db_path(shop)) as con:
        orders = con.execute(
            "select count(*) from orders where updated_at >= ? and updated_at < ?", [str(DAY1), str(DAY2)]
        ).fetchone()[0]
    assert manifests["orders"]["row_count"] == orders > 0
    folder = partition_dir(shop.lake_raw_dir, "shop", "orders", DAY1)
    assert folder.name == "ds=2026-03-03"
    assert sorted(p.name for p in folder.iterdir()) == ["_manifest.json", "part-run-1.parquet"]
    on_disk = duckdb.connect().execute(f"select count(*), max(updated_at) from '{folder}/*.parquet'").fetchone()
    assert on_disk[0] == orders
    assert json.loads((folder / "_manifest.json").read_text())["watermark"].startswith(str(DAY1))


def test_rerunning_a_day_replaces_its_partition(shop):
    land_day(shop, DAY1, "run-1")
    land_day(shop, DAY1, "run-2")
    folder = partition_dir(shop.lake_raw_dir, "shop", "order_items", DAY1)
    assert sorted(p.name for p in folder.iterdir()) == ["_manifest.json", "part-run-2.parquet"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")], "no temp folders left behind"


def test_loading_twice_keeps_one_copy_per_day(shop):
    for ds in (DAY0, DAY1):
        land_day(shop, ds, f"run-{ds}")
    load_days(shop, [DAY0, DAY1], "load-1")
    load_days(shop, [DAY1], "load-2")
    with duckdb.connect(str(shop.warehouse_path), read_only=True) as con:
        per_day = dict(con.execute("select _ds, count(*) from raw.orders group by 1").fetchall())
        dupes = con.execute("select count(*) - count(distinct (order_id, _ds)) from raw.orders").fetchone()[0]
        run_ids = dict(con.execute("select _ds, any_value(_run_id) from raw.orders group by 1").fetchall())
    landed = {
        ds: json.loads((partition_dir(shop.lake_raw_dir, "shop", "orders", ds) / "_manifest.json").read_text())[
            "row_count"
        ]
        for ds in (DAY0, DAY1)
    }
    assert per_day == landed
    assert dupes == 0
    assert run_ids == {DAY0: "load-1", DAY1: "load-2"}


def test_a_failed_load_leaves_the_warehouse_as_it_was(shop):
    land_day(shop, DAY0, "run-0")
    load_days(shop, [DAY0], "load-0")
    with duckdb.connect(str(shop.warehouse_path), read_only=True) as con:
        before = {t: con.execute(f"select count(*) from raw.{t}").fetchone()[0] for t in ("orders", "web_events")}
    land_day(shop, DAY1, "run-1")
    # Corrupt one table's file of the new day: the whole day's load must roll back, all tables.
    broken = partition_dir(shop.lake_raw_dir, "shop", "web_events", DAY1) / "part-run-1.parquet"
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(duckdb.Error):
        load_days(shop, [DAY1], "load-1")
    with duckdb.connect(str(shop.warehouse_path), read_only=True) as con:
        after = {t: con.execute(f"select count(*) from raw.{t}").fetchone()[0] for t in ("orders", "web_events")}
    assert after == before


def test_loading_a_day_that_was_never_landed_says_so(shop):
    with pytest.raises(FileNotFoundError, match="run the extract first"):
        load_days(shop, [DAY2], "load-x")


def test_unreachable_and_empty_app_db_get_clear_errors(stack, tmp_path):
    with pytest.raises(AppDbError, match="make simulate"):
        connect(f"sqlite:///{tmp_path}/missing.sqlite")
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()
    with pytest.raises(AppDbError, match="is it empty"):
        require_tables(connect(f"sqlite:///{empty}"), ["orders"])
    with pytest.raises(AppDbError, match="cannot reach the app database"):
        connect("postgresql+psycopg://nobody@127.0.0.1:1/none")

"""Extraction modes: late-arriving inserts are caught by the key watermark; snapshots report hard deletes."""

from __future__ import annotations

import datetime as dt
import sqlite3

import duckdb

from ingestion.lake import partition_dir, read_manifest
from ingestion.shop_batch import land_day
from ingestion.simulator.run import simulate
from tests.conftest import DAY0

DAY1, DAY2 = DAY0 + dt.timedelta(days=1), DAY0 + dt.timedelta(days=2)


def landed_ids(settings, table, ds, key):
    folder = partition_dir(settings.lake_raw_dir, "shop", table, ds)
    return {r[0] for r in duckdb.connect().execute(f"select {key} from '{folder}/*.parquet'").fetchall()}


def test_a_late_event_with_an_old_timestamp_lands_with_the_next_run_exactly_once(stack):
    simulate(stack.app_db_url, DAY0, DAY1, progress=False)
    land_day(stack, DAY0, "r0")
    land_day(stack, DAY1, "r1")
    db = stack.app_db_url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as con:
        # A mobile client syncs an event from day 0 after day 1 was extracted.
        late_id = con.execute("select max(event_id) + 1 from web_events").fetchone()[0]
        con.execute(
            "insert into web_events select ?, session_id, visitor_id, customer_id, 'page_view', experiment_key, "
            "experiment_variant, null, occurred_at, created_at from web_events where created_at < ? limit 1",
            [late_id, str(DAY1)],
        )
    simulate(stack.app_db_url, DAY0, DAY2, progress=False)
    land_day(stack, DAY2, "r2")
    assert late_id in landed_ids(stack, "web_events", DAY2, "event_id")
    assert read_manifest(stack.lake_raw_dir, "shop", "web_events", DAY2).max_key >= late_id
    all_days = [landed_ids(stack, "web_events", d, "event_id") for d in (DAY0, DAY1, DAY2)]
    assert sum(late_id in ids for ids in all_days) == 1
    assert not (all_days[0] & all_days[1]) and not (all_days[1] & all_days[2]), "no event lands twice"


def test_a_snapshot_table_reports_rows_deleted_in_the_source(stack):
    simulate(stack.app_db_url, DAY0, DAY1, progress=False)
    land_day(stack, DAY0, "r0", tables=["products"])
    with sqlite3.connect(stack.app_db_url.removeprefix("sqlite:///")) as con:
        con.execute("delete from products where product_id in (7, 11)")
    land_day(stack, DAY1, "r1", tables=["products"])
    manifest = read_manifest(stack.lake_raw_dir, "shop", "products", DAY1)
    assert manifest.deleted_keys == [7, 11]
    ids = landed_ids(stack, "products", DAY1, "product_id")
    assert len(ids) == manifest.row_count and not ({7, 11} & ids)
    assert read_manifest(stack.lake_raw_dir, "shop", "products", DAY0).deleted_keys is None  # nothing to compare

"""Extraction modes: insert-only tables by key window (late inserts land once, nothing is skipped,
reruns repeat themselves, backfills read bounded index ranges); snapshots report hard deletes."""

from __future__ import annotations

import datetime as dt
import sqlite3

import duckdb
from sqlalchemy import create_engine

from ingestion.app_db.batch import land_day
from ingestion.app_db.contract import CONTRACTS
from ingestion.app_db.extract import KeyWindow, count_queries, day_queries
from ingestion.lake import partition_dir, read_manifest
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


def _copy_event(con: sqlite3.Connection, event_id: int, created_at: str) -> None:
    """Insert a copy of some event with a new id and creation stamp (what a client would sync)."""
    con.execute(
        "insert into web_events select ?, session_id, visitor_id, customer_id, 'page_view', experiment_key, "
        "experiment_variant, null, ?, ? from web_events limit 1",
        [event_id, created_at, created_at],
    )


def source_events(settings) -> dict[int, str]:
    """Every event id in the app DB with the day it is stamped with."""
    with sqlite3.connect(settings.app_db_url.removeprefix("sqlite:///")) as con:
        return dict(con.execute("select event_id, substr(created_at, 1, 10) from web_events").fetchall())


def test_an_event_of_tomorrow_inserted_before_a_late_event_of_today_is_not_skipped(stack):
    # The source holds day 0 and day 1; then, before day 1 is extracted, an event stamped day 2
    # is inserted, followed by a late event stamped day 1. Both exist when day 1 is extracted.
    simulate(stack.app_db_url, DAY0, DAY1, progress=False)
    land_day(stack, DAY0, "r0")
    db = stack.app_db_url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as con:
        top = con.execute("select max(event_id) from web_events").fetchone()[0]
        _copy_event(con, top + 1, f"{DAY2} 00:00:05")  # tomorrow's, committed first
        _copy_event(con, top + 2, f"{DAY1} 23:59:58")  # today's, committed late
    land_day(stack, DAY1, "r1")
    simulate(stack.app_db_url, DAY0, DAY2, progress=False)
    land_day(stack, DAY2, "r2")
    assert top + 2 in landed_ids(stack, "web_events", DAY1, "event_id")
    assert top + 1 in landed_ids(stack, "web_events", DAY2, "event_id"), "the day-2 event was skipped"
    landed = [landed_ids(stack, "web_events", d, "event_id") for d in (DAY0, DAY1, DAY2)]
    assert sum(len(ids) for ids in landed) == len(set().union(*landed)) == len(source_events(stack))


def test_a_backfill_from_a_source_holding_every_day_lands_each_event_on_its_day_once(stack):
    days = [DAY0 + dt.timedelta(days=n) for n in range(4)]
    simulate(stack.app_db_url, days[0], days[-1], progress=False)
    for n, day in enumerate(days):
        land_day(stack, day, f"r{n}", tables=["web_events"])
    expected = source_events(stack)
    for day in days:
        ids = landed_ids(stack, "web_events", day, "event_id")
        assert ids == {i for i, stamped in expected.items() if stamped == str(day)}, day
    # the first day recorded the source's top key; the later days start from it and read their
    # own day through the time index, not the rest of the table through the key index
    ceilings = {read_manifest(stack.lake_raw_dir, "shop", "web_events", d).key_ceiling for d in days}
    assert ceilings == {max(expected)}


def test_a_rerun_of_a_landed_day_reads_the_same_rows_even_after_late_inserts(stack):
    simulate(stack.app_db_url, DAY0, DAY2, progress=False)
    for n, day in enumerate((DAY0, DAY1, DAY2)):
        land_day(stack, day, f"r{n}", tables=["web_events"])
    before = landed_ids(stack, "web_events", DAY1, "event_id")
    with sqlite3.connect(stack.app_db_url.removeprefix("sqlite:///")) as con:
        top = con.execute("select max(event_id) from web_events").fetchone()[0]
        _copy_event(con, top + 1, f"{DAY1} 12:00:00")  # late for day 1, after day 2 was landed
    land_day(stack, DAY1, "r1-again", tables=["web_events"])
    assert landed_ids(stack, "web_events", DAY1, "event_id") == before, "a rerun changed the day"
    land_day(stack, DAY2 + dt.timedelta(days=1), "r3", tables=["web_events"])
    assert top + 1 in landed_ids(stack, "web_events", DAY2 + dt.timedelta(days=1), "event_id")


def test_each_part_of_a_key_window_is_a_bounded_index_range_in_sqlite(stack):
    """A backfill's cost is linear only if no query walks to the end of the table (or from its start)."""
    simulate(stack.app_db_url, DAY0, DAY1, progress=False)
    engine = create_engine(stack.app_db_url)
    events, window = CONTRACTS["web_events"], KeyWindow(seen=100, ceiling=200)
    plans = []
    with engine.connect() as conn:
        for query in [*day_queries(events, DAY1, window), *count_queries(events, DAY1, window)]:
            compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
            plans.append(" ".join(row[-1] for row in conn.exec_driver_sql(f"explain query plan {compiled}")))
    engine.dispose()
    assert len(plans) == 4
    for plan in plans[0::2]:  # the day's own rows at or below the previous ceiling: the time index
        assert "ix_web_events_created_at (created_at>? AND created_at<?)" in plan, plan
    for plan in plans[1::2]:  # the rows inserted since: the key index, between two ceilings
        assert "(event_id>? AND event_id<?)" in plan, plan


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

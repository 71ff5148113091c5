"""Hard deletes in a table extracted by change day (customers): reported once, by a key-set diff."""

from __future__ import annotations

import datetime as dt
import sqlite3

from ingestion.app_db.batch import land_day, land_days
from ingestion.app_db.contract import CONTRACTS
from ingestion.lake import read_manifest
from ingestion.simulator.run import simulate
from tests.conftest import DAY0

DAYS = [DAY0 + dt.timedelta(days=n) for n in range(4)]


def test_deleted_customer_accounts_are_reported_once_in_the_next_manifest(stack):
    simulate(stack.app_db_url, DAYS[0], DAYS[2], scale=0.2, progress=False)
    for ds in DAYS[:2]:
        land_day(stack, ds, f"r-{ds}", tables=["customers"])
    with sqlite3.connect(stack.app_db_url.removeprefix("sqlite:///")) as con:
        gone = [r[0] for r in con.execute("select customer_id from customers order by customer_id limit 2")]
        con.execute("delete from customers where customer_id in (?, ?)", gone)  # accounts deleted on request

    land_day(stack, DAYS[2], "r-2", tables=["customers"])
    assert read_manifest(stack.lake_raw_dir, "shop", "customers", DAYS[2]).deleted_keys == sorted(gone)
    land_day(stack, DAYS[2], "r-2-again", tables=["customers"])  # a rerun of the day reports them again
    assert read_manifest(stack.lake_raw_dir, "shop", "customers", DAYS[2]).deleted_keys == sorted(gone)

    simulate(stack.app_db_url, DAYS[0], DAYS[3], scale=0.2, progress=False)
    land_day(stack, DAYS[3], "r-3", tables=["customers"])
    assert read_manifest(stack.lake_raw_dir, "shop", "customers", DAYS[3]).deleted_keys == []  # not twice
    assert read_manifest(stack.lake_raw_dir, "shop", "customers", DAYS[0]).deleted_keys == []  # nothing before


def test_a_run_over_several_days_diffs_deletes_on_its_first_day_and_reports_them_once(stack):
    simulate(stack.app_db_url, DAYS[0], DAYS[3], scale=0.2, progress=False)
    land_days(stack, DAYS[:2], "history")
    with sqlite3.connect(stack.app_db_url.removeprefix("sqlite:///")) as con:
        gone = [r[0] for r in con.execute("select customer_id from customers order by customer_id limit 2")]
        con.execute("delete from customers where customer_id in (?, ?)", gone)

    land_days(stack, DAYS[2:], "backfill")
    reported = {ds: read_manifest(stack.lake_raw_dir, "shop", "customers", ds).deleted_keys for ds in DAYS[2:]}
    assert reported == {DAYS[2]: sorted(gone), DAYS[3]: None}  # None: not diffed (vs [] found none)


def test_only_tables_that_can_lose_rows_are_diffed():
    assert {name for name, c in CONTRACTS.items() if c.hard_deletes} == {"customers"}
    assert CONTRACTS["products"].mode == "snapshot"  # snapshots report deletes by themselves

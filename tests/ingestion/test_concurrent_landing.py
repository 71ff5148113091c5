"""A day's tables are landed several at once (`EXTRACT_WORKERS`), and a range's tables side by side
without waiting for each other at the end of each day: the same partitions as one after another,
and a table that fails is reported while what was landed is whole."""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb
import pytest

import ingestion.app_db.batch as app_db_batch
from ingestion.app_db.batch import land_day, land_days
from ingestion.app_db.contract import CONTRACTS
from ingestion.lake import partition_dir
from ingestion.simulator.run import simulate
from tests.conftest import DAY0

DAY1 = DAY0 + dt.timedelta(days=1)
DAY2 = DAY0 + dt.timedelta(days=2)


def _rows(settings, table: str, ds: dt.date) -> list[tuple]:
    folder = partition_dir(settings.lake_raw_dir, "shop", table, ds)
    return duckdb.connect().execute(f"select * from '{folder}/*.parquet'").fetchall()


def test_concurrent_landing_writes_what_serial_landing_writes(stack, tmp_path):
    simulate(stack.app_db_url, DAY0, DAY1, progress=False)
    serial = dataclasses.replace(stack, lake_dir=tmp_path / "serial-lake", extract_workers=1)
    concurrent = dataclasses.replace(stack, lake_dir=tmp_path / "concurrent-lake", extract_workers=3)
    for ds in (DAY0, DAY1):  # day 1's key windows start at day 0's recorded ceilings
        one_by_one = land_day(serial, ds, f"serial-{ds}")
        at_once = land_day(concurrent, ds, f"concurrent-{ds}")
        assert list(at_once) == list(one_by_one) == list(CONTRACTS)
        for table in CONTRACTS:
            assert at_once[table]["row_count"] == one_by_one[table]["row_count"]
            assert at_once[table]["key_ceiling"] == one_by_one[table]["key_ceiling"]
            assert _rows(concurrent, table, ds) == _rows(serial, table, ds), (table, ds)
    assert sum(m["row_count"] for m in at_once.values()) > 1000  # a real day, not empty partitions


def test_a_failing_table_fails_the_landing_and_the_others_still_land(stack, monkeypatch):
    simulate(stack.app_db_url, DAY0, DAY0, progress=False)
    real_extract = app_db_batch.extract_day

    def source_drops_mid_read(engine, contract, ds, window=None):
        if contract.name == "orders":
            raise ConnectionError("the app DB went away while orders were read")
        return real_extract(engine, contract, ds, window)

    monkeypatch.setattr(app_db_batch, "extract_day", source_drops_mid_read)
    settings = dataclasses.replace(stack, extract_workers=2)
    with pytest.raises(ConnectionError, match="orders were read"):
        land_day(settings, DAY0, "run-1")
    assert not partition_dir(settings.lake_raw_dir, "shop", "orders", DAY0).exists()
    for table in set(CONTRACTS) - {"orders"}:
        assert (partition_dir(settings.lake_raw_dir, "shop", table, DAY0) / "_manifest.json").exists(), table


def test_a_range_landed_table_by_table_side_by_side_writes_what_day_by_day_landing_writes(stack, tmp_path):
    simulate(stack.app_db_url, DAY0, DAY2, progress=False)
    days = [DAY0, DAY1, DAY2]
    serial = dataclasses.replace(stack, lake_dir=tmp_path / "serial-lake", extract_workers=1)
    side_by_side = dataclasses.replace(stack, lake_dir=tmp_path / "side-by-side-lake", extract_workers=2)
    one_by_one = land_days(serial, days, "serial")
    at_once = land_days(side_by_side, days, "side-by-side")
    assert list(at_once) == list(one_by_one) == list(CONTRACTS)
    for table in CONTRACTS:
        assert [m["ds"] for m in at_once[table]] == [m["ds"] for m in one_by_one[table]] == [str(d) for d in days]
        for n, ds in enumerate(days):
            assert at_once[table][n]["row_count"] == one_by_one[table][n]["row_count"], (table, ds)
            assert at_once[table][n]["key_ceiling"] == one_by_one[table][n]["key_ceiling"], (table, ds)
            assert _rows(side_by_side, table, ds) == _rows(serial, table, ds), (table, ds)


def test_a_failing_table_day_stops_a_range_and_leaves_no_partial_partition(stack, monkeypatch):
    simulate(stack.app_db_url, DAY0, DAY2, progress=False)
    real_extract = app_db_batch.extract_day

    def source_drops_mid_read(engine, contract, ds, window=None):
        if contract.name == "orders" and ds == DAY1:
            raise ConnectionError("the app DB went away while orders were read")
        return real_extract(engine, contract, ds, window)

    monkeypatch.setattr(app_db_batch, "extract_day", source_drops_mid_read)
    settings = dataclasses.replace(stack, extract_workers=2)
    with pytest.raises(ConnectionError, match="orders were read"):
        land_days(settings, [DAY0, DAY1, DAY2], "run-1")
    assert (partition_dir(settings.lake_raw_dir, "shop", "orders", DAY0) / "_manifest.json").exists()
    for ds in (DAY1, DAY2):  # the failed day and the days after it in that table
        assert not partition_dir(settings.lake_raw_dir, "shop", "orders", ds).exists(), ds
    # what the other tables landed (they may be ahead of the failed one) is whole: a manifest per partition
    for table in CONTRACTS:
        for ds in (DAY0, DAY1, DAY2):
            folder = partition_dir(settings.lake_raw_dir, "shop", table, ds)
            assert not folder.exists() or (folder / "_manifest.json").exists(), (table, ds)

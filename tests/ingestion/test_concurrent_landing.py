"""A day's tables are landed several at once (`EXTRACT_WORKERS`): the same partitions as one after
another, and a table that fails is reported while the others are still landed whole."""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb
import pytest

import ingestion.app_db.batch as app_db_batch
from ingestion.app_db.batch import land_day
from ingestion.app_db.contract import CONTRACTS
from ingestion.lake import partition_dir
from ingestion.simulator.run import simulate
from tests.conftest import DAY0

DAY1 = DAY0 + dt.timedelta(days=1)


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

"""The same simulator and extractor on a real PostgreSQL (127.0.0.1:5432), not only SQLite."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, text

from ingestion.app_db.contract import CONTRACTS
from ingestion.app_db.deletes import _source_keys
from ingestion.app_db.extract import KeyWindow, day_bounds, extract_day, key_ceiling, source_count
from ingestion.simulator.run import simulate
from tests.conftest import DAY0


@pytest.mark.postgres
def test_postgres_and_sqlite_hold_the_same_shop_and_extract_the_same_batches(pg_url, tmp_path):
    sqlite_url = f"sqlite:///{tmp_path}/shop.sqlite"
    end = DAY0 + dt.timedelta(days=5)
    written_pg = simulate(pg_url, DAY0, end, seed=3, progress=False)
    assert written_pg == simulate(sqlite_url, DAY0, end, seed=3, progress=False)
    pg, lite = create_engine(pg_url), create_engine(sqlite_url)
    try:
        for name, contract in CONTRACTS.items():
            landed = 0
            for day in (end - dt.timedelta(days=2), end - dt.timedelta(days=1)):
                from_pg = [b.to_pylist() for b in extract_day(pg, contract, day)]
                from_lite = [b.to_pylist() for b in extract_day(lite, contract, day)]
                assert from_pg == from_lite, (name, day)
                landed += sum(len(b) for b in from_pg)
            # returns start once the first deliveries are a few days old
            assert landed > 0 or name in ("products", "returns"), name

        # the insert-only table by key window: a previous ceiling inside the last day's keys
        # (both parts of the window non-empty) reads the last day's rows, once
        events = CONTRACTS["web_events"]
        start, _ = day_bounds(end)
        middle = "select min(event_id) + count(*) / 2 from web_events where created_at >= :start"
        counts = []
        for engine in (pg, lite):
            with engine.connect() as conn:
                seen = conn.execute(text(middle), {"start": start}).scalar_one()
                expected = conn.execute(
                    text("select count(*) from web_events where created_at >= :start"), {"start": start}
                ).scalar_one()
            window = KeyWindow(seen=seen, ceiling=key_ceiling(engine, events))
            counts.append(source_count(engine, events, end, window))
            assert counts[-1] == expected > 0
            ids = [i for b in extract_day(engine, events, end, window) for i in b.column("event_id").to_pylist()]
            assert len(ids) == counts[-1] and ids == sorted(set(ids)), "each row once, in key order"
        assert counts[0] == counts[1]
        # the key-set diff of hard deletes reads the same keys through either driver's cursor
        keys = [_source_keys(engine, CONTRACTS["customers"]).column("k").to_pylist() for engine in (pg, lite)]
        assert sorted(keys[0]) == sorted(keys[1]) and keys[0]
    finally:
        pg.dispose()
        lite.dispose()

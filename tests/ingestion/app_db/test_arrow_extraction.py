"""The Arrow-native extraction (ADBC) lands exactly what the SQLAlchemy path lands, on SQLite and a
real PostgreSQL (127.0.0.1:5432): same schema, same values, same order, bounded batches."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pyarrow as pa
import pytest
from sqlalchemy import create_engine, text

from ingestion.app_db import arrow_fetch
from ingestion.app_db.contract import CONTRACTS
from ingestion.app_db.extract import KeyWindow, day_queries, extract_day, key_ceiling, sqlalchemy_batches
from ingestion.simulator.run import simulate
from tests.conftest import DAY0

END = DAY0 + dt.timedelta(days=5)
DAYS = [DAY0 + dt.timedelta(days=n) for n in range(7)]  # the last one is after the history: empty


def both_paths(engine, contract, ds, window=None) -> tuple[pa.Table, pa.Table]:
    new = pa.Table.from_batches(list(extract_day(engine, contract, ds, window)), schema=contract.schema)
    queries = day_queries(contract, ds, window)
    old = pa.Table.from_batches(list(sqlalchemy_batches(engine, queries, contract.schema)), schema=contract.schema)
    return new, old


def assert_same_extracts(url: str) -> None:
    engine = create_engine(url)
    try:
        assert arrow_fetch.supports(engine.url)
        rows = 0
        for name, contract in CONTRACTS.items():
            for ds in DAYS:
                new, old = both_paths(engine, contract, ds)
                assert new.schema.equals(contract.schema, check_metadata=True), (name, new.schema)
                assert new.equals(old, check_metadata=True), (name, ds)
                rows += new.num_rows
        # the insert-only table by key window, both parts non-empty (a previous ceiling mid-day)
        events = CONTRACTS["web_events"]
        with engine.connect() as conn:
            seen = conn.execute(
                text("select min(event_id) + count(*) / 2 from web_events where created_at >= :s"),
                {"s": dt.datetime.combine(END, dt.time())},
            ).scalar_one()
        new, old = both_paths(engine, events, END, KeyWindow(seen=seen, ceiling=key_ceiling(engine, events)))
        assert new.equals(old, check_metadata=True) and new.num_rows > 0
        assert rows > 30_000
    finally:
        engine.dispose()


def test_adbc_and_sqlalchemy_extract_identical_tables_from_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path}/shop.sqlite"
    simulate(url, DAY0, END, seed=3, progress=False)
    assert_same_extracts(url)


@pytest.mark.postgres
def test_adbc_and_sqlalchemy_extract_identical_tables_from_postgres(pg_url):
    simulate(pg_url, DAY0, END, seed=3, progress=False)
    assert_same_extracts(pg_url)


@pytest.mark.postgres
def test_batches_stay_bounded_and_in_key_order_on_both_drivers(tmp_path, pg_url):
    events = CONTRACTS["web_events"]
    for url in (f"sqlite:///{tmp_path}/shop.sqlite", pg_url):
        simulate(url, DAY0, DAY0 + dt.timedelta(days=1), seed=3, progress=False)
        engine = create_engine(url)
        try:
            queries = day_queries(events, DAY0)
            batches = list(arrow_fetch.fetch(engine, queries, events.schema, events.key, 500, lambda q: iter(())))
            assert len(batches) > 2 and max(b.num_rows for b in batches) <= 500
            ids = pa.Table.from_batches(batches).column("event_id").to_pylist()
            assert ids == sorted(set(ids))
        finally:
            engine.dispose()


def test_a_sqlite_column_null_throughout_the_first_batch_is_still_typed_right(tmp_path):
    """SQLite's driver guesses a column's type from the first batch: a text column NULL there is
    taken for integers and its first text value fails; the rest of the query is then read through
    SQLAlchemy. Timestamps written by another client without fractions parse the same way too."""
    url = f"sqlite:///{tmp_path}/shop.sqlite"
    simulate(url, DAY0, DAY0 + dt.timedelta(days=1), seed=3, progress=False)
    customers = CONTRACTS["customers"]
    with sqlite3.connect(tmp_path / "shop.sqlite") as con:
        con.execute("update customers set phone = null, birth_date = null, city = null where customer_id <= 10")
        con.execute("update customers set created_at = substr(created_at, 1, 19) where customer_id % 3 = 0")
        con.execute("update customers set marketing_opt_in = 1 - marketing_opt_in where customer_id % 2 = 0")
    engine = create_engine(url)
    try:
        queries = day_queries(customers, DAY0)
        old = pa.Table.from_batches(list(sqlalchemy_batches(engine, queries, customers.schema)))

        resumed = []

        def rest(query):
            resumed.append(batch_rows)
            return sqlalchemy_batches(engine, [query], customers.schema)

        for batch_rows in (4, 7, 1000):  # the mismatch after a few batches, in the second, and none
            new = arrow_fetch.fetch(engine, queries, customers.schema, customers.key, batch_rows, rest)
            assert pa.Table.from_batches(list(new)).equals(old, check_metadata=True), batch_rows
        assert resumed == [4, 7], "the driver met the text after the NULLs and the rest was read by SQLAlchemy"
        assert old.column("phone").null_count >= 10 and old.num_rows > 10
    finally:
        engine.dispose()


def test_only_integers_and_times_are_inlined_into_postgres_copy():
    from sqlalchemy import select

    from ingestion.app_db.schema import TABLES

    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # never connected
    orders = TABLES["orders"]
    ok = select(orders.c.order_id).where(orders.c.updated_at >= dt.datetime(2026, 3, 2), orders.c.order_id > 5)
    assert "'2026-03-02 00:00:00'" in arrow_fetch.inline_values(ok, engine)
    with pytest.raises(TypeError, match="only integers"):
        arrow_fetch.inline_values(select(orders.c.order_id).where(orders.c.channel == "x' or '1'='1"), engine)

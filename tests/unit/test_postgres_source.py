"""The same simulator and extractor on a real PostgreSQL (127.0.0.1:5432), not only SQLite."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import create_engine, text

from ingestion.app_db.contract import CONTRACTS
from ingestion.app_db.extract import extract_day
from ingestion.simulator.run import simulate
from tests.conftest import DAY0

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_url():
    try:
        admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        pytest.skip(f"no PostgreSQL server answers at 127.0.0.1:5432 ({type(exc).__name__})")
    name = f"shop_test_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'create database "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'drop database "{name}" with (force)'))
        admin.dispose()


@pytest.mark.postgres
def test_postgres_and_sqlite_hold_the_same_shop_and_extract_the_same_batches(pg_url, tmp_path):
    sqlite_url = f"sqlite:///{tmp_path}/shop.sqlite"
    end = DAY0 + dt.timedelta(days=5)
    written_pg = simulate(pg_url, DAY0, end, seed=3, progress=False)
    assert written_pg == simulate(sqlite_url, DAY0, end, seed=3, progress=False)
    pg, lite = create_engine(pg_url), create_engine(sqlite_url)
    try:
        for name, contract in CONTRACTS.items():
            day = end - dt.timedelta(days=1)
            from_pg = [b.to_pylist() for b in extract_day(pg, contract, day)]
            from_lite = [b.to_pylist() for b in extract_day(lite, contract, day)]
            assert from_pg == from_lite, name
            assert sum(len(b) for b in from_pg) > 0 or name == "products", name
    finally:
        pg.dispose()
        lite.dispose()

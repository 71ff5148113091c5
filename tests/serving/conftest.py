"""Fixtures for the serving tests: the gate tests' private GX project copy and a revenue warehouse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from ingestion import run_ledger
from tests.quality.conftest import docs, gx_project  # noqa: F401 - fixtures shared with tests/quality

DAYS = [dt.date(2026, 4, 1) + dt.timedelta(days=i) for i in range(20)]


def revenue_warehouse(path: Path, version: int = 1, days: list[dt.date] = DAYS) -> Path:
    """A warehouse whose mart's numbers depend on `version`, plus raw PII and a run ledger.

    Every day of version v has net revenue 1000 + v (so each publication is recognisable),
    raw.customers holds an e-mail address that must never reach serving.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        con.execute(
            "create or replace table marts.fct_daily_revenue (revenue_date date, gross_revenue_eur decimal(18, 2), "
            "returns_eur decimal(18, 2), net_revenue_eur decimal(18, 2), orders bigint, "
            "average_order_value_eur decimal(18, 2))"
        )
        net = 1000 + version
        con.executemany(
            "insert into marts.fct_daily_revenue values (?, ?, 10, ?, 10, ?)",
            [(day, net + 10, net, (net + 10) / 10) for day in days],
        )
        con.execute("create schema if not exists raw")
        con.execute("create or replace table raw.customers as select 1 as customer_id, 'ana@example.com' as email")
        con.execute(run_ledger.DDL)
        con.execute("delete from ops.run_ledger")
        con.executemany(
            "insert into ops.run_ledger values ('ledger', ?, 'shop', ?, 'load', 1, null, 0.1, now()::timestamp)",
            [(day, table) for day in days for table in ("orders", "order_items", "returns")],
        )
    return path

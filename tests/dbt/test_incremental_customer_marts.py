"""The customer marts aggregated by day or month stay equal to a full refresh through the loads their
incremental logic must handle and the session's second build does not bring: a first order cancelled
(the customer changes cohort), the first and last order days losing all their orders (the calendar
shrinks), an order far after the last day (empty days and a month without orders join the calendar,
the last month becomes complete), a month losing all its orders, and the last order day moving back.

Each step writes order lines into a copy of the session's warehouse the way fct_order_lines would hold
them after a load (changed rows get a newer `loaded_at`), runs the marts incrementally, and compares
them with a full refresh of the same tables on another copy (fct_order_lines itself is not rebuilt).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.dbt.fixture_warehouse import run_dbt

pytestmark = pytest.mark.slow  # real dbt processes on a copy of the session's fixture warehouse

MARTS = (
    "fct_daily_customer_activity",
    "fct_daily_active_customers_by_segment",
    "fct_monthly_customer_activity",
    "fct_cohort_retention",
)
# dim_customers first: the marts read its cohorts, and it follows the changed lines incrementally too
SELECTION = ("dim_customers", *MARTS)
LATE_ORDER_ID_OFFSET = 10_000_000  # ids of the orders written here, beyond the simulated ones


def _copy_late_order(con: duckdb.DuckDBPyConnection, days_after_last: int, loaded_at: dt.datetime) -> int:
    """Write a one-line order `days_after_last` days after the last order day, a copy of an existing
    non-cancelled line of that day; returns its order_id."""
    order_id = con.execute(
        """
        insert into marts.fct_order_lines
        select * replace (
            order_item_id + $offset + $days as order_item_id,
            order_id + $offset + $days as order_id,
            ordered_at + to_days(cast($days as integer)) as ordered_at,
            ordered_date + cast($days as integer) as ordered_date,
            cast($loaded_at as timestamp) as loaded_at
        )
        from marts.fct_order_lines
        where order_item_id = (
            select min(order_item_id) from marts.fct_order_lines
            where not is_cancelled and order_id < $offset
              and ordered_date = (
                  select max(ordered_date) from marts.fct_order_lines where not is_cancelled and order_id < $offset
              )
        )
        returning order_id
        """,
        {"offset": LATE_ORDER_ID_OFFSET, "days": days_after_last, "loaded_at": loaded_at},
    ).fetchone()[0]
    return order_id


def _cancel(con: duckdb.DuckDBPyConnection, condition: str, loaded_at: dt.datetime) -> int:
    """Cancel the non-cancelled lines matching `condition` (a newer version of their orders)."""
    cancelled = con.execute(
        f"update marts.fct_order_lines set order_status = 'cancelled', is_cancelled = true, loaded_at = ? "
        f"where not is_cancelled and ({condition}) returning order_item_id",
        [loaded_at],
    ).fetchall()
    return len(cancelled)


def _assert_equals_full_refresh(built, warehouse: Path, tmp_path: Path, step: str) -> None:
    copy = tmp_path / f"full-refresh-{step}.duckdb"
    shutil.copyfile(warehouse, copy)
    env = {**built.env, "WAREHOUSE_PATH": str(copy), "DBT_TARGET_PATH": str(tmp_path / f"target-full-{step}")}
    run_dbt(env, "run", "--full-refresh", "--select", *SELECTION)
    with duckdb.connect() as con:
        con.execute(f"attach '{warehouse}' as incremental (read_only)")
        con.execute(f"attach '{copy}' as full_refresh (read_only)")
        for model in SELECTION:
            for a, b in (("incremental", "full_refresh"), ("full_refresh", "incremental")):
                extra = con.execute(
                    f"select count(*) from (select * from {a}.marts.{model} except all select * from {b}.marts.{model})"
                ).fetchone()[0]
                assert extra == 0, f"after {step}: {model} has {extra} rows in {a} that {b} does not have"


def _run_incremental(built, warehouse: Path, tmp_path: Path, step: str) -> None:
    target = tmp_path / f"target-{step}"
    env = {**built.env, "WAREHOUSE_PATH": str(warehouse), "DBT_TARGET_PATH": str(target)}
    run_dbt(env, "run", "--select", *SELECTION)
    for model in MARTS:  # the run replaced rows of the existing table (not a rebuild)
        executed = next(target.glob(f"run/**/{model}.sql")).read_text()
        assert f'delete from "warehouse"."marts"."{model}"' in executed, (step, model)


def test_customer_marts_follow_cancellations_and_calendar_changes(built, tmp_path):
    warehouse = tmp_path / "incremental" / "warehouse.duckdb"  # the catalog dbt names is "warehouse"
    warehouse.parent.mkdir()
    shutil.copyfile(built.warehouse_path, warehouse)
    load_time = dt.datetime.now().replace(microsecond=0) + dt.timedelta(hours=1)  # after every fixture load

    def query(sql: str) -> list[tuple]:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            return con.execute(sql).fetchall()

    first_day, last_day = query(
        "select min(ordered_date), max(ordered_date) from marts.fct_order_lines where not is_cancelled"
    )[0]
    last_month = last_day.replace(day=1)

    # 1. An order 45 days after the last day: the days between join the calendar with no order at all,
    #    a month in between has none, and the old last month becomes complete.
    with duckdb.connect(str(warehouse)) as con:
        far_order = _copy_late_order(con, 45, load_time)
    _run_incremental(built, warehouse, tmp_path, "far-order")
    _assert_equals_full_refresh(built, warehouse, tmp_path, "far-order")
    assert query(
        f"select is_complete_month from marts.fct_monthly_customer_activity where activity_month = '{last_month}'"
    ) == [(True,)]
    new_days = query(f"select count(*) from marts.fct_daily_customer_activity where activity_date > '{last_day}'")
    assert new_days == [(45,)]

    # 2. Cancellations: every order of the first day (the calendar starts later, its customers are new
    #    later or never), the first orders of a customer who came back in a later month (a later cohort),
    #    every order of the last simulated day (a day with orders, none counted); and the far order is
    #    replaced by one 80 days after the last simulated day (its month is left without orders).
    load_time += dt.timedelta(hours=1)
    with duckdb.connect(str(warehouse)) as con:
        _copy_late_order(con, 80, load_time)
        assert _cancel(con, f"order_id = {far_order}", load_time) == 1
        assert _cancel(con, f"ordered_date = '{first_day}'", load_time) > 0
        mover = con.execute(
            "select customer_id from marts.dim_customers "
            "where cohort_month = ? and first_order_date > ? and customer_id in ("
            "  select customer_id from marts.fct_order_lines "
            "  where not is_cancelled and ordered_date >= ? and ordered_date < ?) "
            "order by customer_id limit 1",
            [first_day.replace(day=1), first_day, last_month, last_day],
        ).fetchone()
        assert mover is not None, "the fixture has a customer who came back the next month"
        assert _cancel(con, f"customer_id = {mover[0]} and ordered_date < '{last_month}'", load_time) > 0
        assert _cancel(con, f"ordered_date = '{last_day}'", load_time) > 0
    _run_incremental(built, warehouse, tmp_path, "cancellations")
    _assert_equals_full_refresh(built, warehouse, tmp_path, "cancellations")
    assert query(f"select cohort_month from marts.dim_customers where customer_id = {mover[0]}") == [(last_month,)]
    assert query("select min(activity_date) from marts.fct_daily_customer_activity")[0][0] > first_day
    assert query("select count(*) from marts.fct_monthly_customer_activity")[0][0] == 3  # a month vanished

    # 3. The far order is cancelled too: the last order day moves back (the calendar and the cohorts'
    #    months shrink, the last simulated month is incomplete again).
    load_time += dt.timedelta(hours=1)
    with duckdb.connect(str(warehouse)) as con:
        assert _cancel(con, f"order_id > {LATE_ORDER_ID_OFFSET}", load_time) == 1
    _run_incremental(built, warehouse, tmp_path, "far-order-cancelled")
    _assert_equals_full_refresh(built, warehouse, tmp_path, "far-order-cancelled")
    assert query("select max(activity_date) from marts.fct_daily_active_customers_by_segment")[0][0] < last_day
    assert query("select max(activity_month) from marts.fct_cohort_retention") == [(last_month,)]

"""The bench's Spark comparison: the marts built on Spark against the ones DuckDB served, by key,
money within half a cent; a missing or different row is counted (the Spark build itself is
exercised by tests/spark)."""

from __future__ import annotations

import datetime as dt

import duckdb

from bench.spark_marts import COMPARED, _differences


def _marts(path, revenue_rows):
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.fct_daily_revenue (revenue_date date, net_revenue_eur decimal(18, 2), orders bigint)"
        )
        con.executemany("insert into marts.fct_daily_revenue values (?, ?, ?)", revenue_rows)
        con.execute(
            "create table marts.fct_cohort_retention "
            "(cohort_month date, months_since_first_order int, retention_rate double)"
        )
        con.execute("insert into marts.fct_cohort_retention values ('2026-01-01', 0, 1.0)")
        con.execute(
            "create table marts.fct_experiment_results "
            "(experiment_key varchar, experiment_variant varchar, p_value double)"
        )
        con.execute("insert into marts.fct_experiment_results values ('checkout', 'treatment', 0.0312)")


def test_equal_marts_compare_equal_and_a_changed_or_missing_day_is_counted(tmp_path):
    day = dt.date(2026, 1, 1)
    rows = [(day, 100.10, 3), (day + dt.timedelta(days=1), 50.00, 1)]
    _marts(tmp_path / "duck.duckdb", rows)
    _marts(tmp_path / "same.duckdb", [(day, 100.10, 3), (day + dt.timedelta(days=1), 50.004, 1)])
    _marts(tmp_path / "other.duckdb", [(day, 100.12, 3)])

    assert _differences(tmp_path / "same.duckdb", tmp_path / "duck.duckdb") == dict.fromkeys(COMPARED, "equal")
    differing = _differences(tmp_path / "other.duckdb", tmp_path / "duck.duckdb")
    assert differing["fct_daily_revenue"] == "2 rows differ"  # a cent off, and a day missing
    assert differing["fct_cohort_retention"] == "equal"

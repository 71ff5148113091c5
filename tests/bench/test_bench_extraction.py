"""The benchmark's extraction cost: both paths read the same rows of the same sampled days, the
manifests give the landed cost, and the report shows µs per row per table. No timings asserted."""

from __future__ import annotations

import datetime as dt

from bench import report
from bench.extraction import extraction_cost, sample_days
from ingestion.app_db.batch import land_days
from ingestion.app_db.contract import CONTRACTS
from ingestion.simulator.run import simulate
from tests.conftest import DAY0

END = DAY0 + dt.timedelta(days=3)


def test_sampled_days_are_spread_over_the_period_and_include_both_ends():
    days = sample_days(dt.date(2026, 1, 1), dt.date(2026, 12, 31), 12)
    assert len(days) == 12 == len(set(days))
    assert days[0] == dt.date(2026, 1, 1) and days[-1] == dt.date(2026, 12, 31) and days == sorted(days)
    assert sample_days(DAY0, END, 12) == [DAY0 + dt.timedelta(days=n) for n in range(4)]


def test_extraction_cost_per_table_reaches_the_report(stack):
    simulate(stack.app_db_url, DAY0, END, seed=3, progress=False)
    landed = land_days(stack, [DAY0 + dt.timedelta(days=n) for n in range(4)], "bench-test")
    cost = extraction_cost(stack, DAY0, END, days=3)
    assert cost["app_db"] == "sqlite" and len(cost["days"]) == 3
    assert set(cost["tables"]) == set(CONTRACTS)
    for table, measured in cost["tables"].items():
        assert measured["landed_rows"] == sum(m["row_count"] for m in landed[table]), table
        assert measured["adbc_s"] > 0 and measured["sqlalchemy_s"] > 0
    assert cost["tables"]["web_events"]["rows"] > 1000

    results = {"scales": [{"name": "small", "extraction": cost}]}
    rows = report._extraction_rows(results)
    assert [row[1] for row in rows] == list(CONTRACTS)
    assert all(row[3] != "-" and row[4] != "-" and row[5].endswith("x") for row in rows if row[1] != "returns")

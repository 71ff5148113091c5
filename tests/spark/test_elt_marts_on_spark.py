"""Spark mode under Airflow's own scheduler: `elt_marts` builds the marts on the Spark cluster, hands
them to DuckDB, and gate 2 and publish serve them as in the embedded mode.

The shop's second build on Spark is a run of elt_marts by a real Airflow in that mode
(tests/spark/spark_shop.py): Cosmos' producer runs one `dbt build` against the Thrift server (the
DuckDB-only models left out), `copy_spark_marts` copies the served marts into the warehouse, gate 2
audits them and publish swaps in the serving file. The served net revenue is checked to the cent
against the app DB.
"""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from tests.revenue_truth import expected_daily_revenue
from tests.spark.spark_shop import DAYS

pytestmark = pytest.mark.slow  # Airflow and a dbt build on Spark


def test_elt_marts_builds_on_spark_and_publishes(spark_shop):
    tasks = spark_shop.tasks
    assert spark_shop.run_state == "success", {task: s for task, s in tasks.items() if s != "success"}
    assert tasks["copy_spark_marts"] == tasks["gate_marts"] == tasks["publish"] == "success"
    assert not [task for task in tasks if "churn_features" in task]  # the DuckDB-only models are not in the graph
    with duckdb.connect(str(spark_shop.settings.serving_path), read_only=True) as con:
        assert con.execute("select run_id from meta.publication").fetchone()[0] == spark_shop.run_id


def test_the_served_revenue_built_on_spark_equals_the_app_db(spark_shop, spark_cluster):
    settings = spark_shop.settings
    expected = expected_daily_revenue(settings.app_db_url.removeprefix("sqlite:///"))
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        rows = con.execute(
            "select revenue_date, gross_revenue_eur, returns_eur, orders from marts.fct_daily_revenue order by 1"
        ).fetchall()
    served = {day: values for day, *values in rows}
    assert sorted(served) == DAYS
    for day in DAYS:  # the app DB may already hold an order of the next day, not landed yet
        (gross, returns, orders), (s_gross, s_returns, s_orders) = expected[day], served[day]
        assert s_orders == orders, day
        assert abs(Decimal(s_gross) - gross) <= Decimal("0.01"), (day, s_gross, gross)
        assert abs(Decimal(s_returns) - returns) <= Decimal("0.01"), (day, s_returns, returns)
    # built on the cluster: Spark holds the same days
    assert len(spark_cluster.rows("select revenue_date from marts.fct_daily_revenue")) == len(DAYS)

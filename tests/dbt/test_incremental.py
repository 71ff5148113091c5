"""Incremental facts: after loads that change earlier rows, an incremental run equals a full refresh."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from tests.dbt.fixture_warehouse import run_dbt

pytestmark = pytest.mark.slow  # builds the dbt project on a simulated shop (real dbt processes)

# model -> schema: the incremental facts and the incremental staging tables (versioned sources)
INCREMENTAL = {
    "fct_order_lines": "marts",
    "fct_sessions": "marts",
    "fct_daily_revenue": "marts",
    "fct_daily_revenue_by_segment": "marts",
    "int_experiment_visitors": "marts",
    "dim_customers": "marts",
    "fct_daily_customer_activity": "marts",
    "fct_daily_active_customers_by_segment": "marts",
    "fct_monthly_customer_activity": "marts",
    "fct_cohort_retention": "marts",
    "stg_shop__web_events": "staging",
    "stg_shop__orders": "staging",
    "stg_shop__order_items": "staging",
    "stg_shop__returns": "staging",
    "stg_shop__customers": "staging",
    "int_customer_order_days": "ml",
}


def test_second_build_took_the_incremental_path(built):
    for model, schema in INCREMENTAL.items():
        # the model selected only rows loaded after the table's watermark ...
        compiled = next(built.target_path.glob(f"compiled/**/{model}.sql")).read_text()
        assert "loaded_at > (" in compiled, model
        # ... and dbt-duckdb's delete+insert replaced the changed keys in place
        executed = next(built.target_path.glob(f"run/**/{model}.sql")).read_text()
        assert f'delete from "warehouse"."{schema}"."{model}"' in executed, model
    results = json.loads((built.target_path / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"].split(".")[-1]: r["status"] for r in results}
    assert all(statuses[m] == "success" for m in INCREMENTAL)


def test_incremental_equals_full_refresh(built, tmp_path):
    copy = tmp_path / "full-refresh.duckdb"
    shutil.copyfile(built.warehouse_path, copy)
    env = {**built.env, "WAREHOUSE_PATH": str(copy), "DBT_TARGET_PATH": str(tmp_path / "target")}
    run_dbt(env, "run", "--full-refresh", "--select", *INCREMENTAL)

    with duckdb.connect() as con:
        con.execute(f"attach '{built.warehouse_path}' as incremental (read_only)")
        con.execute(f"attach '{copy}' as full_refresh (read_only)")
        for model, schema in INCREMENTAL.items():
            counts = con.execute(
                f"select (select count(*) from incremental.{schema}.{model}), "
                f"(select count(*) from full_refresh.{schema}.{model})"
            ).fetchone()
            assert counts[0] == counts[1] > 0, (model, counts)
            for a, b in (("incremental", "full_refresh"), ("full_refresh", "incremental")):
                extra = con.execute(
                    f"select count(*) from (select * from {a}.{schema}.{model} "
                    f"except all select * from {b}.{schema}.{model})"
                ).fetchone()[0]
                assert extra == 0, f"{model}: {extra} rows in {a} that {b} does not have"


def test_later_loads_changed_rows_the_first_build_had_written(built):
    """The comparison above is only meaningful if the second load updated old rows, not just appended."""
    changed = built.query(
        "select count(*) from marts.fct_order_lines "
        "where ordered_date < (select min(_ds) from raw.orders where _run_id like 'daily%') "
        "and order_status in ('shipped', 'delivered') "
        "and loaded_at >= (select min(_loaded_at) from raw.orders where _run_id like 'daily%')"
    )[0][0]
    assert changed > 0

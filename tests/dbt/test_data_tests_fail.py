"""The project's own dbt tests can fail: tampered marts trip the reconciliation tests; a missing
marketing source builds empty (with a warning) unless the project says the source is required."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from tests.dbt.fixture_warehouse import run_dbt

pytestmark = pytest.mark.slow  # builds the dbt project on a simulated shop (real dbt processes)


def test_singular_tests_catch_tampered_marts(built, tmp_path):
    copy = tmp_path / "tampered.duckdb"
    shutil.copyfile(built.warehouse_path, copy)
    with duckdb.connect(str(copy)) as con:
        # each change breaks what one singular test guards
        # an order (with its lines) that staging takes in and the revenue marts never see: an incremental gap
        (copied,) = con.execute("select max(order_id) from marts.fct_order_lines where not is_cancelled").fetchone()
        con.execute(
            "insert into raw.orders by name "
            # placed now: after every churn snapshot, so only the revenue reconciliation is concerned
            "select * replace (order_id + 100000000 as order_id, cast(now() as timestamp) as ordered_at, "
            "cast(now() as timestamp) as _loaded_at) "
            "from raw.orders where order_id = ? qualify row_number() over (order by _loaded_at desc) = 1",
            [copied],
        )
        con.execute(
            "insert into raw.order_items by name "
            "select * replace (order_item_id + 100000000 as order_item_id, order_id + 100000000 as order_id, "
            "cast(now() as timestamp) as _loaded_at) "
            "from raw.order_items where order_id = ? "
            "qualify row_number() over (partition by order_item_id order by _loaded_at desc) = 1",
            [copied],
        )
        con.execute(
            "delete from marts.fct_monthly_revenue_by_segment "
            "where revenue_month = (select max(revenue_month) from marts.fct_monthly_revenue_by_segment) "
            "and country_code = 'DE' and channel = 'web'"
        )
        con.execute("update marts.fct_daily_funnel set sessions = sessions + 1 where experiment_variant = 'control'")
        con.execute(
            "update marts.fct_daily_marketing_spend set spend_eur = spend_eur * 2 "
            "where spend_date = (select max(spend_date) from marts.fct_daily_marketing_spend)"
        )
        # a returning visitor whose later event carries the other variant (broken assignment), loaded now
        con.execute(
            "insert into raw.web_events by name "
            "select * replace (event_id + 100000000 as event_id, "
            "case experiment_variant when 'control' then 'treatment' else 'control' end as experiment_variant, "
            "cast(now() as timestamp) as _loaded_at) "
            "from raw.web_events where event_id = (select min(event_id) from raw.web_events)"
        )
    env = {**built.env, "WAREHOUSE_PATH": str(copy), "DBT_TARGET_PATH": str(tmp_path / "target")}
    # the staging tables take the new loads in
    run_dbt(env, "run", "--select", "stg_shop__web_events", "stg_shop__orders", "stg_shop__order_items")
    result = run_dbt(env, "test", "--select", "test_type:singular", check=False)
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    status = {r["unique_id"].split(".")[2]: r["status"] for r in results}
    assert {name for name, s in status.items() if s == "fail"} == {
        "assert_revenue_reconciles_with_staging",
        "assert_monthly_revenue_is_the_sum_of_its_days",
        "assert_funnel_counts_every_session",
        "assert_marketing_spend_reconciles_with_staging",
        "assert_visitors_see_one_variant",
    }, result.stdout[-3000:]
    assert status["assert_erfc_matches_reference_values"] == "pass"


def test_revenue_reconciliation_checks_new_days_daily_and_the_history_weekly(built, tmp_path):
    """A daily build compares the days its unaudited staging rows can change; an old day's mart
    row is compared by the whole-history run (`data_tests_scope: all`, the weekly DAG)."""
    copy = tmp_path / "old-day.duckdb"
    shutil.copyfile(built.warehouse_path, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute(
            "update marts.fct_daily_revenue set gross_revenue_eur = gross_revenue_eur + 100 "
            "where revenue_date = (select min(revenue_date) from marts.fct_daily_revenue)"
        )
    env = {**built.env, "WAREHOUSE_PATH": str(copy), "DBT_TARGET_PATH": str(tmp_path / "target")}
    test = ("test", "--select", "assert_revenue_reconciles_with_staging")
    daily = run_dbt(env, *test, check=False)
    assert daily.returncode == 0, daily.stdout[-3000:]
    weekly = run_dbt(env, *test, "--vars", "{data_tests_scope: all}", check=False)
    assert weekly.returncode != 0 and "assert_revenue_reconciles_with_staging" in weekly.stdout, weekly.stdout[-3000:]


def test_marketing_staging_builds_empty_until_the_api_delivers(built):
    """The first fixture build ran before raw.marketing_* existed: it passed, and said why spend was empty."""
    for table in ("marketing_spend", "exchange_rates"):
        assert f"marketing_api.{table}" in built.first_build_stdout
    assert "is not loaded yet" in built.first_build_stdout
    assert "is not loaded yet" not in built.second_build_stdout
    assert built.query("select count(*) > 0 from marts.fct_daily_marketing_spend") == [(True,)]


def test_missing_marketing_tables_fail_when_required(built, tmp_path):
    empty = tmp_path / "no-marketing.duckdb"
    duckdb.connect(str(empty)).close()
    env = {**built.env, "WAREHOUSE_PATH": str(empty), "DBT_TARGET_PATH": str(tmp_path / "target")}
    strict = run_dbt(
        env,
        "run",
        "--select",
        "stg_marketing_api__campaign_spends",
        "--vars",
        "{marketing_api_required: true}",
        check=False,
    )
    assert strict.returncode != 0
    assert "marketing_spend" in strict.stdout and "is not loaded yet" not in strict.stdout

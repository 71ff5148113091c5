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
        con.execute(
            "update marts.fct_daily_revenue set gross_revenue_eur = gross_revenue_eur + 1 "
            "where revenue_date = (select min(revenue_date) from marts.fct_daily_revenue)"
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
    run_dbt(env, "run", "--select", "stg_shop__web_events")  # the staging table takes the new load in
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

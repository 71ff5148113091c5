"""The KPI dictionary: every metric defined once in the semantic layer, validated by `dbt parse`,
published complete in marts.kpi_dictionary; and the normal-distribution macros behind the A/B p-values."""

from __future__ import annotations

import json
import shutil

import duckdb
import numpy as np
import pytest
from scipy import special

from tests.dbt.fixture_warehouse import DBT_PROJECT, run_dbt

pytestmark = pytest.mark.slow  # builds the dbt project on a simulated shop (real dbt processes)

DICTIONARY_FIELDS = ("owner", "formula", "unit", "grain", "indicator_type", "business_question")
HEADLINE_KPIS = {
    "net_revenue_eur",
    "average_order_value_eur",
    "active_customers_30d",
    "new_customers",
    "cohort_retention_rate",
    "experiment_conversion_rate",
    "experiment_p_value",
    "session_conversion_rate",
    "customer_acquisition_cost_eur",
    "return_on_ad_spend",
}


def manifest(built) -> dict:
    return json.loads((built.target_path / "manifest.json").read_text())


def test_semantic_manifest_holds_every_metric_with_its_definition(built):
    metrics = manifest(built)["metrics"].values()
    semantic = json.loads((built.target_path / "semantic_manifest.json").read_text())
    assert {m["name"] for m in semantic["metrics"]} == {m["name"] for m in metrics}
    assert HEADLINE_KPIS <= {m["name"] for m in metrics}
    assert semantic["project_configuration"]["time_spines"], "dim_dates is the time spine"
    for metric in metrics:
        meta = metric["config"]["meta"]
        assert metric["description"].strip() and metric["label"], metric["name"]
        assert {"owner", "formula", "unit", "grain", "indicator_type", "question"} <= set(meta), metric["name"]
        assert meta["indicator_type"] in ("leading", "lagging"), metric["name"]


def test_dbt_parse_rejects_a_broken_metric(built, tmp_path):
    """`dbt parse` validates the semantic layer: a ratio over a metric that does not exist fails it."""
    project = tmp_path / "project"
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    yml = project / "models" / "marts" / "finance" / "_finance__models.yml"
    yml.write_text(yml.read_text().replace("denominator: orders", "denominator: order_count"))
    env = {**built.env, "DBT_TARGET_PATH": str(tmp_path / "target")}
    result = run_dbt(env, "parse", project_dir=project, check=False)
    assert result.returncode != 0
    assert "order_count" in result.stdout and "average_order_value_eur" in result.stdout, result.stdout[-2000:]


def test_kpi_dictionary_publishes_every_metric_completely(built):
    metrics = {m["name"]: m for m in manifest(built)["metrics"].values()}
    rows = built.frame("select * from marts.kpi_dictionary").set_index("metric_name")
    assert set(rows.index) == set(metrics), "one row per metric, none missing, none extra"
    tables = {f"{s}.{t}" for s, t in built.query("select table_schema, table_name from information_schema.tables")}
    for name, row in rows.iterrows():
        meta = metrics[name]["config"]["meta"]
        for field in DICTIONARY_FIELDS:
            assert isinstance(row[field], str) and row[field].strip(), (name, field)
        assert row["business_question"] == meta["question"]
        assert row["formula"] == meta["formula"]
        assert row["description"] == metrics[name]["description"].strip()
        assert row["metric_type"] == metrics[name]["type"]
        assert row["source_tables"] and set(row["source_tables"].split(", ")) <= tables, name
        assert (DBT_PROJECT / row["defined_in"]).is_file()
    assert rows.loc["return_on_ad_spend", "source_tables"] == (
        "marts.fct_daily_marketing_spend, marts.fct_daily_revenue_by_segment"
    )


def test_normal_distribution_macros_match_scipy(built):
    """erfc, the two-sided p-value and the chi-square(1) tail, over a grid, against scipy."""
    sql = run_dbt(
        built.env,
        "compile",
        "--quiet",
        "--inline",
        "select x, {{ erfc('x') }} as erfc_x, {{ normal_cdf('x') }} as cdf_x, "
        "{{ two_sided_p_value('x') }} as p_x, {{ chi_square_1df_p_value('x * x') }} as chi_x from grid",
    ).stdout
    grid = np.concatenate([np.linspace(-6, 6, 1201), np.linspace(6, 26, 201)])
    with duckdb.connect() as con:
        con.execute("create table grid as select unnest(?::double[]) as x", [grid.tolist()])
        x, erfc_x, cdf_x, p_x, chi_x = map(np.array, zip(*con.execute(sql).fetchall(), strict=True))
    assert len(x) == len(grid)
    assert np.max(np.abs(erfc_x / special.erfc(x) - 1)) < 1.2e-7
    assert np.max(np.abs(cdf_x - special.ndtr(x))) < 1.2e-7
    expected_p = special.erfc(np.abs(x) / np.sqrt(2))
    assert np.max(np.abs(p_x / expected_p - 1)) < 1.2e-7
    assert np.all(p_x <= 1.0)
    assert np.max(np.abs(chi_x / expected_p - 1)) < 1.2e-7  # P(chi2_1 >= z^2) == P(|Z| >= |z|)

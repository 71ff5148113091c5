"""The benchmark's baselines compute the same KPIs as the marts (else the comparison is unfair).

A small shop (three weeks across a month boundary, so cohorts have a month 1) runs through the
real headless pipeline; the floor (DuckDB SQL over the lake) and the pandas baseline must equal
the published daily revenue, cohort retention and A/B results, also after a one-day increment.
No timings are asserted.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from bench import compare, report
from bench.dbt_nodes import node_seconds, run_results_path, seconds_by_kind, slowest
from bench.floor import run_floor
from bench.pandas_baseline import run_pandas
from core.settings import Settings, get_settings
from ingestion.simulator.run import simulate
from pipelines.runner import run_range

START = dt.date(2026, 1, 19)
END = dt.date(2026, 2, 8)
NEW_DAY = END + dt.timedelta(days=1)
SIM = {"seed": 5, "scale": 0.6, "browse_sample": 0.3}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The pipeline run over the history: settings of an isolated stack in a temporary folder."""
    root = tmp_path_factory.mktemp("bench-shop")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STACK_DATA_DIR", str(root))
        env.setenv("STACK_VAR_DIR", str(root / "var"))
        for name in ("APP_DB_URL", "LAKE_DIR", "WAREHOUSE_DIR", "WAREHOUSE_PATH", "SERVING_PATH", "AIRFLOW_HOME"):
            env.delenv(name, raising=False)
        env.setenv("PII_HASH_KEY", "test-key-" + os.urandom(4).hex())
        settings = get_settings()
        simulate(settings.app_db_url, START, END, progress=False, **SIM)
        run_range(settings, START, END, "bench-test-full", progress=lambda _: None)
        yield settings


def _raw(settings: Settings) -> Path:
    return settings.lake_raw_dir / "shop"


def _assert_equal_to_marts(out_dir: Path, settings: Settings) -> None:
    marts = compare.read_marts(settings.serving_path)
    got = compare.read_baseline(out_dir)
    for name, mart in marts.items():
        assert mart is not None, f"{compare.KPIS[name].mart} is not published"
        assert len(mart) > 0, name
        assert compare.differences(name, mart, got[name]) == [], name


def test_floor_and_pandas_equal_the_marts(shop: Settings, tmp_path: Path) -> None:
    run_floor(_raw(shop), tmp_path / "floor", get_settings())
    run_pandas(_raw(shop), tmp_path / "pandas")
    _assert_equal_to_marts(tmp_path / "floor", shop)
    _assert_equal_to_marts(tmp_path / "pandas", shop)
    cohorts = pd.read_parquet(tmp_path / "floor" / "cohort_retention.parquet")
    assert cohorts["months_since_first_order"].max() >= 1, "the history should give a cohort a month 1"
    assert (cohorts["active_customers"] > 0).sum() > cohorts["cohort_month"].nunique(), "someone came back"


def test_a_wrong_number_is_reported(shop: Settings, tmp_path: Path) -> None:
    run_floor(_raw(shop), tmp_path, get_settings())
    marts = compare.read_marts(shop.serving_path)
    revenue = pd.read_parquet(tmp_path / "daily_revenue.parquet")
    revenue.loc[3, "net_revenue_eur"] = float(revenue.loc[3, "net_revenue_eur"]) + 0.02
    assert any("net_revenue_eur" in p for p in compare.differences("daily_revenue", marts["daily_revenue"], revenue))
    ab = pd.read_parquet(tmp_path / "experiment_results.parquet")
    ab.loc[0, "converted_visitors"] += 1
    assert any(
        "converted_visitors" in p for p in compare.differences("experiment_results", marts["experiment_results"], ab)
    )
    cohorts = pd.read_parquet(tmp_path / "cohort_retention.parquet").iloc[1:]
    assert any("missing row" in p for p in compare.differences("cohort_retention", marts["cohort_retention"], cohorts))


def test_marts_still_equal_the_floor_after_a_one_day_increment(shop: Settings, tmp_path: Path) -> None:
    before = compare.read_marts(shop.serving_path)["daily_revenue"]
    simulate(shop.app_db_url, START, NEW_DAY, progress=False, **SIM)
    run_range(shop, NEW_DAY, NEW_DAY, "bench-test-day", progress=lambda _: None)
    run_floor(_raw(shop), tmp_path / "floor", get_settings())
    _assert_equal_to_marts(tmp_path / "floor", shop)
    after = compare.read_marts(shop.serving_path)["daily_revenue"]
    assert pd.to_datetime(after["revenue_date"]).max() > pd.to_datetime(before["revenue_date"]).max()


def test_the_report_says_which_dbt_nodes_took_the_build_time(shop: Settings) -> None:
    nodes = node_seconds(run_results_path(shop))  # the pipeline's last dbt build
    assert {"model stg_shop__web_events", "model fct_daily_revenue", "model fct_sessions"} <= set(nodes)
    assert any(node.startswith("test unique_fct_daily_revenue") for node in nodes)
    kinds = seconds_by_kind(nodes)
    assert kinds["model"] > 0 and kinds["test"] > 0
    results = {"scales": [{"name": "small", "full": {"dbt_nodes": nodes}}]}
    [row] = report._dbt_node_rows(results, top=3)
    assert row[:2] == ["small", "full history"]
    assert all(node in row[3] for node, _ in slowest(nodes, 3))

"""The dbt project builds on the Spark cluster (the `spark` target) from the lake registered as
Spark tables, and publishes the same KPIs as the DuckDB build of the same raw data.

The shop (tests/spark/spark_shop.py) is built on both engines twice: first by `dbt run`, then
incrementally (more days, an old day re-run) - on Spark by elt_marts' `dbt build` under Airflow,
with every data and unit test. Then every mart of the DuckDB build is compared with Spark's row by
row: money to the cent, floats to a relative 1e-9, everything else exactly; and pseudonymised keys
hash identically.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.spark_marts import SparkMartsError, copy_spark_marts
from serving.publish import published_marts
from tests.spark.spark_shop import DAYS, PII_KEY

pytestmark = pytest.mark.slow  # two builds of the project on each engine

KEY_MARTS = ("fct_daily_revenue", "fct_daily_revenue_by_segment", "fct_cohort_retention", "fct_experiment_results")


def _same(duck, spark) -> bool:
    if isinstance(spark, str) and isinstance(duck, dt.date):  # Thrift answers dates as text
        spark = dt.date.fromisoformat(spark)
    if duck is None or spark is None:
        return duck is None and spark is None
    if isinstance(duck, float) or isinstance(spark, float):
        return float(spark) == pytest.approx(float(duck), rel=1e-9, abs=1e-300)
    if isinstance(duck, Decimal) or isinstance(spark, Decimal):
        return abs(Decimal(duck) - Decimal(spark)) <= Decimal("0.01")
    return duck == spark


def _duckdb(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("set variable pii_hash_key = ?", [PII_KEY])  # the staging views read it
        return con.execute(sql, params or []).fetchall()


def assert_same_table(duckdb_build: Path, spark_cluster, table: str) -> int:
    columns = [
        name
        for (name,) in _duckdb(
            duckdb_build,
            "select column_name from information_schema.columns where table_schema || '.' || table_name = ? "
            "and column_name != 'loaded_at' order by ordinal_position",
            [table],
        )
    ]
    order = ", ".join(str(n) for n in range(1, len(columns) + 1))
    duck_rows = _duckdb(duckdb_build, f"select {', '.join(columns)} from {table} order by {order} nulls first")
    spark_rows = spark_cluster.rows(f"select {', '.join(columns)} from {table} order by {order}", PII_KEY)
    assert len(spark_rows) == len(duck_rows), f"{table}: {len(spark_rows)} rows on Spark, {len(duck_rows)} on DuckDB"
    for duck_row, spark_row in zip(duck_rows, spark_rows, strict=True):
        for column, duck, spark in zip(columns, duck_row, spark_row, strict=True):
            assert _same(duck, spark), f"{table}.{column} at {duck_row[:3]}: DuckDB {duck!r}, Spark {spark!r}"
    return len(duck_rows)


def _summary(dbt_output: str) -> re.Match:
    summary = re.search(r"PASS=(\d+) WARN=\d+ ERROR=(\d+) SKIP=(\d+)", dbt_output)
    assert summary, dbt_output[-2000:]
    return summary


def test_the_project_builds_and_tests_on_spark_first_and_incrementally(spark_shop):
    assert spark_shop.run_state == "success", {t: s for t, s in spark_shop.tasks.items() if s != "success"}
    # the incremental models and their inputs; then every model, data and unit test
    for output, least in ((spark_shop.first_spark_run, 15), (spark_shop.producer_log, 150)):
        summary = _summary(output)
        assert int(summary[1]) > least and summary[2] == "0" and summary[3] == "0", summary[0]
    # the second build took the incremental path on Spark (delete+insert through a rewrite)
    assert "incremental model staging.stg_shop__orders" in spark_shop.producer_log


def test_every_mart_equals_the_duckdb_build(spark_shop, spark_cluster):
    build = spark_shop.duckdb_build
    marts = [
        f"marts.{name}"
        for (name,) in _duckdb(
            build, "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
        )
    ]
    compared = {table: assert_same_table(build, spark_cluster, table) for table in marts}
    assert all(compared[f"marts.{name}"] > 0 for name in KEY_MARTS), compared
    assert compared["marts.fct_daily_revenue"] == len(DAYS)


def test_pseudonymised_keys_hash_identically(spark_shop, spark_cluster):
    build = spark_shop.duckdb_build
    assert assert_same_table(build, spark_cluster, "staging.stg_shop__customers") > 10
    query = "select visitor_hash from staging.stg_shop__web_events order by event_id limit 50"
    assert [r[0] for r in spark_cluster.rows(query, PII_KEY)] == [r[0] for r in _duckdb(build, query)]


def _columns(path, table: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema || '.' || table_name = ? order by ordinal_position",
            [table],
        ).fetchall()


def _kind(data_type: str) -> str:
    """The type as a dashboard reads it: a number, text, a date, a time or a flag. The engines size
    numbers their own way (DuckDB sums BIGINTs into a HUGEINT, Spark into a BIGINT; Spark keeps a
    decimal where DuckDB divides into a DOUBLE); the values are compared to the cent below."""
    if re.fullmatch(r"(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|FLOAT|DOUBLE|DECIMAL\(\d+,\d+\))", data_type):
        return "number"
    return {"VARCHAR": "text", "DATE": "date", "TIMESTAMP": "time", "BOOLEAN": "flag"}.get(data_type, data_type)


def _kinds(path, table: str) -> list[tuple]:
    return [(name, _kind(data_type)) for name, data_type in _columns(path, table)]


def test_the_marts_elt_marts_copied_from_spark_equal_the_duckdb_build(spark_shop):
    """Spark mode's hand-over: the served marts elt_marts copied from Spark's files into the DuckDB
    warehouse equal the DuckDB build's (values, and columns of the same kinds); gate 2 passed on
    them and publish served them (tests/spark/test_elt_marts_on_spark.py)."""
    warehouse, build = spark_shop.settings.warehouse_path, spark_shop.duckdb_build
    assert spark_shop.tasks["copy_spark_marts"] == "success", spark_shop.tasks
    served = published_marts(spark_shop.manifest)
    assert "fct_daily_revenue" in served and "fct_order_lines" not in served  # row-level marts stay out
    for table in (f"marts.{name}" for name in served):
        assert set(_kinds(warehouse, table)) == set(_kinds(build, table)), table
        columns = ", ".join(name for name, _ in _columns(build, table) if name != "loaded_at")
        query = f"select {columns} from {table} order by all nulls first"
        duck_rows, spark_rows = _duckdb(build, query), _duckdb(warehouse, query)
        assert len(spark_rows) == len(duck_rows) > 0, table
        for duck_row, spark_row in zip(duck_rows, spark_rows, strict=True):
            assert all(_same(d, s) for d, s in zip(duck_row, spark_row, strict=True)), (table, duck_row, spark_row)


def test_a_mart_spark_lacks_fails_the_hand_over_naming_it(spark_shop, spark_cluster, tmp_path, monkeypatch):
    for name, value in spark_cluster.env.items():
        monkeypatch.setenv(name, value)
    renamed = tmp_path / "manifest.json"
    nodes = json.loads(spark_shop.manifest.read_text())
    nodes["nodes"]["model.shop_analytics.fct_daily_funnel"]["alias"] = "fct_never_built"
    renamed.write_text(json.dumps(nodes))
    spark_side = dataclasses.replace(spark_shop.settings, warehouse_path=tmp_path / "warehouse.duckdb")
    with pytest.raises(SparkMartsError, match=r"Spark has no marts\.fct_never_built"):
        copy_spark_marts(spark_side, renamed)
    assert not spark_side.warehouse_path.exists()  # nothing was written

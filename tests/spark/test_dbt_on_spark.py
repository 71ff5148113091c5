"""The dbt project builds on the Spark cluster (the `spark` target) from the lake registered as
Spark tables, and publishes the same KPIs as the DuckDB build of the same raw data.

A shop is simulated, landed day by day and loaded into DuckDB (the real ingestion code), and the
marketing API's extracts are landed and loaded the same way; the loaded days are registered on
Spark. Both engines run the models (first build), more days arrive with an old day re-run, they are loaded
and registered, and both build again (the incremental path: delete+insert rewrites on Spark; on
Spark with every data and unit test). Then
every mart of the DuckDB build is compared with Spark's row by row: money to the cent, floats to a
relative 1e-9, everything else exactly; and pseudonymised keys hash identically.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest

from core.settings import get_settings
from ingestion.app_db.batch import land_day
from ingestion.lake import write_partition
from ingestion.marketing_api.contract import FX, SPEND
from ingestion.marketing_api.contract import SOURCE_NAME as MARKETING
from ingestion.spark_tables import loaded_manifests, register_partitions
from ingestion.warehouse import load_source_days
from pipelines.spark_marts import SparkMartsError, copy_spark_marts
from quality.pipeline_gates import gate_marts
from serving.publish import publish, published_marts
from tests.conftest import DAY0, stack_environment
from tests.dbt.fixture_warehouse import days_between, dbt_env, load_shop, marketing_rows, run_dbt, simulate_and_land

pytestmark = pytest.mark.slow  # two builds of the project on each engine

FIRST_DAYS, LATER_DAYS, SCALE = 14, 6, 0.3
DAYS = days_between(DAY0, DAY0 + dt.timedelta(days=FIRST_DAYS + LATER_DAYS - 1))
RERUN_DAY = DAYS[FIRST_DAYS - 3]
PII_KEY = "spark-dbt-key-41c7"
KEY_MARTS = ("fct_daily_revenue", "fct_daily_revenue_by_segment", "fct_cohort_retention", "fct_experiment_results")


def land_and_load_marketing(settings, days: list[dt.date], run_id: str) -> None:
    """The marketing API's extracts of `days` into the lake and `raw`, as its DAG lands and loads them."""
    for ds in days:
        spend, rates = marketing_rows(ds, DAY0)
        for contract, rows in ((SPEND, spend), (FX, rates)):
            schema = contract.schema
            columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
            table = pa.table([pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)], schema)
            write_partition(settings.lake_raw_dir, MARKETING, contract.table, ds, table.to_batches(), schema, run_id)
    load_source_days(settings, MARKETING, [SPEND.table, FX.table], days, run_id)


def register(settings, days: list[dt.date], run_id: str) -> None:
    """Register on Spark the loaded partitions of `days` (what the load of a run moved)."""
    wanted = {str(d) for d in days}
    manifests = {
        table: [m for m in found if str(m.ds) in wanted] for table, found in loaded_manifests(settings).items()
    }
    register_partitions(settings, manifests, run_id)


@pytest.fixture(scope="module")
def builds(spark_cluster, tmp_path_factory: pytest.TempPathFactory):
    spark_cluster.reset()
    root = tmp_path_factory.mktemp("spark_dbt")
    with stack_environment(root, PII_KEY, **spark_cluster.env):
        settings = get_settings()
        duck_env = dbt_env(settings.warehouse_path, root / "target-duckdb", PII_KEY)
        spark_env = {
            **duck_env,
            **spark_cluster.env,
            "DBT_TARGET": "spark",
            "DBT_TARGET_PATH": str(root / "target-spark"),
            "DBT_LOG_PATH": str(root / "target-spark" / "logs"),
        }
        spark_models = ("--exclude", "tag:duckdb_only")

        first, later = DAYS[:FIRST_DAYS], DAYS[FIRST_DAYS:]
        simulate_and_land(settings, DAY0, first, "history", scale=SCALE)
        load_shop(settings, first, "history")
        land_and_load_marketing(settings, first, "history")
        register(settings, first, "history")
        # the first builds only run the models (the tests/dbt suite tests DuckDB's; Spark's data and
        # unit tests run on the second, incremental build, over everything both builds made)
        run_dbt(duck_env, "run")
        spark_first = run_dbt(spark_env, "run", *spark_models)

        simulate_and_land(settings, DAY0, later, "daily", scale=SCALE)
        land_day(settings, RERUN_DAY, "rerun")
        load_shop(settings, [RERUN_DAY, *later], "daily")
        land_and_load_marketing(settings, later, "daily")
        register(settings, [RERUN_DAY, *later], "daily")
        run_dbt(duck_env, "run")
        spark_second = run_dbt(spark_env, "build", *spark_models)
        yield settings, spark_first.stdout, spark_second.stdout, root / "target-duckdb" / "manifest.json"


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


def _duckdb(settings, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        con.execute("set variable pii_hash_key = ?", [PII_KEY])  # the staging views read it
        return con.execute(sql, params or []).fetchall()


def assert_same_table(settings, spark_cluster, table: str) -> int:
    columns = [
        name
        for (name,) in _duckdb(
            settings,
            "select column_name from information_schema.columns where table_schema || '.' || table_name = ? "
            "and column_name != 'loaded_at' order by ordinal_position",
            [table],
        )
    ]
    order = ", ".join(str(n) for n in range(1, len(columns) + 1))
    duck_rows = _duckdb(settings, f"select {', '.join(columns)} from {table} order by {order} nulls first")
    spark_rows = spark_cluster.rows(f"select {', '.join(columns)} from {table} order by {order}", PII_KEY)
    assert len(spark_rows) == len(duck_rows), f"{table}: {len(spark_rows)} rows on Spark, {len(duck_rows)} on DuckDB"
    for duck_row, spark_row in zip(duck_rows, spark_rows, strict=True):
        for column, duck, spark in zip(columns, duck_row, spark_row, strict=True):
            assert _same(duck, spark), f"{table}.{column} at {duck_row[:3]}: DuckDB {duck!r}, Spark {spark!r}"
    return len(duck_rows)


def test_the_project_builds_and_tests_on_spark_first_and_incrementally(builds):
    for stdout, least in ((builds[1], 25), (builds[2], 150)):  # the models; then models, data and unit tests
        summary = re.search(r"PASS=(\d+) WARN=\d+ ERROR=(\d+) SKIP=(\d+)", stdout)
        assert summary, stdout[-2000:]
        assert int(summary[1]) > least and summary[2] == "0" and summary[3] == "0", summary[0]
    # the second build took the incremental path on Spark (delete+insert through a rewrite)
    assert "incremental model staging.stg_shop__orders" in builds[2]


def test_every_mart_equals_the_duckdb_build(builds, spark_cluster):
    settings = builds[0]
    marts = [
        f"marts.{name}"
        for (name,) in _duckdb(
            settings, "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
        )
    ]
    compared = {table: assert_same_table(settings, spark_cluster, table) for table in marts}
    assert all(compared[f"marts.{name}"] > 0 for name in KEY_MARTS), compared
    assert compared["marts.fct_daily_revenue"] == len(DAYS)


def test_pseudonymised_keys_hash_identically(builds, spark_cluster):
    settings = builds[0]
    assert assert_same_table(settings, spark_cluster, "staging.stg_shop__customers") > 10
    query = "select visitor_hash from staging.stg_shop__web_events order by event_id limit 50"
    assert [r[0] for r in spark_cluster.rows(query, PII_KEY)] == [r[0] for r in _duckdb(settings, query)]


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


def test_spark_marts_handed_to_duckdb_pass_gate_2_and_are_published(builds, spark_cluster, tmp_path, monkeypatch):
    """Spark mode's hand-over: the served marts copied from Spark's files into the DuckDB warehouse
    equal the DuckDB build's (values, and columns of the same kinds), gate 2 passes on them and publish
    serves them."""
    settings, manifest = builds[0], builds[3]
    for name, value in spark_cluster.env.items():
        monkeypatch.setenv(name, value)
    spark_side = dataclasses.replace(
        settings, warehouse_path=tmp_path / "warehouse.duckdb", serving_path=tmp_path / "serving.duckdb"
    )
    shutil.copy(settings.warehouse_path, spark_side.warehouse_path)
    served = published_marts(manifest)
    assert "fct_daily_revenue" in served and "fct_order_lines" not in served  # row-level marts stay out
    with duckdb.connect(str(spark_side.warehouse_path)) as con:  # only what the copy brings is left
        for table in served:
            con.execute(f'drop table marts."{table}"')

    copied = copy_spark_marts(spark_side, manifest)

    assert set(copied) == {f"marts.{table}" for table in served}
    differences = {
        table: set(_kinds(spark_side.warehouse_path, table)) ^ set(_kinds(settings.warehouse_path, table))
        for table in copied
    }
    assert not any(differences.values()), {table: diff for table, diff in differences.items() if diff}
    for table in copied:
        columns = ", ".join(name for name, _ in _columns(settings.warehouse_path, table) if name != "loaded_at")
        query = f"select {columns} from {table} order by all nulls first"
        duck_rows, spark_rows = _duckdb(settings, query), _duckdb(spark_side, query)
        assert len(spark_rows) == len(duck_rows) == copied[table], table
        for duck_row, spark_row in zip(duck_rows, spark_rows, strict=True):
            assert all(_same(d, s) for d, s in zip(duck_row, spark_row, strict=True)), (table, duck_row, spark_row)
    gate_marts(spark_side, "spark-handover")
    published = publish(
        spark_side.warehouse_path,
        spark_side.serving_path,
        "spark-handover",
        settings=spark_side,
        manifest_path=manifest,
    )
    assert published.tables["marts.fct_daily_revenue"] == len(DAYS)


def test_a_mart_spark_lacks_fails_the_hand_over_naming_it(builds, spark_cluster, tmp_path, monkeypatch):
    settings, manifest = builds[0], builds[3]
    for name, value in spark_cluster.env.items():
        monkeypatch.setenv(name, value)
    renamed = tmp_path / "manifest.json"
    nodes = json.loads(manifest.read_text())
    nodes["nodes"]["model.shop_analytics.fct_daily_funnel"]["alias"] = "fct_never_built"
    renamed.write_text(json.dumps(nodes))
    spark_side = dataclasses.replace(settings, warehouse_path=tmp_path / "warehouse.duckdb")
    with pytest.raises(SparkMartsError, match=r"Spark has no marts\.fct_never_built"):
        copy_spark_marts(spark_side, renamed)
    assert not spark_side.warehouse_path.exists()  # nothing was written

"""The dbt project is portable: the same models, built on PostgreSQL with the `postgres` target from
the same raw layer, publish the same KPIs as the DuckDB build.

The session's fixture warehouse (conftest.py) is built on DuckDB as usual; its `raw` schema is copied
into a fresh PostgreSQL database (stackctl.dbt_portable), `dbt build --target postgres` runs every
model, unit test and data test except tag:duckdb_only, and the KPI marts of both engines are compared
row by row: money to the cent, rates and p-values to a relative 1e-9, counts and dates exactly.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import duckdb
import psycopg
import pytest
from psycopg import sql

from core.dbt_cli import postgres_key_options
from stackctl.dbt_portable import copy_raw_to_postgres, pg_conninfo
from tests.dbt.fixture_warehouse import run_dbt

pytestmark = pytest.mark.slow  # a second dbt build of the project, on PostgreSQL


def _postgres_or_skip() -> None:
    try:
        with psycopg.connect(pg_conninfo("postgres"), connect_timeout=3) as con:
            con.execute("select 1")
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL does not answer at DBT_PG_HOST/DBT_PG_PORT (default 127.0.0.1:5432): {error}")


@pytest.fixture(scope="module")
def postgres_build(built, tmp_path_factory: pytest.TempPathFactory):
    """A fresh database with the fixture's raw layer and the project built on it; dropped afterwards."""
    _postgres_or_skip()
    dbname = f"dbt_portable_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_conninfo("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    try:
        copied = copy_raw_to_postgres(built.warehouse_path, pg_conninfo(dbname))
        target = tmp_path_factory.mktemp("dbt-target-postgres")
        env = {
            **built.env,
            "DBT_TARGET": "postgres",
            "DBT_PG_DBNAME": dbname,
            "DBT_PG_THREADS": "2",
            "DBT_TARGET_PATH": str(target),
            "DBT_LOG_PATH": str(target / "logs"),
            # The key as a session setting, as `python -m stackctl dbt` passes it to the postgres target.
            "PGOPTIONS": postgres_key_options(built.env["PII_HASH_KEY"]),
        }
        result = run_dbt(env, "build", "--exclude", "tag:duckdb_only")
        yield dbname, copied, result.stdout
    finally:
        with psycopg.connect(pg_conninfo("postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname)))


def _pg_rows(dbname: str, query: str) -> list[tuple]:
    with psycopg.connect(pg_conninfo(dbname)) as con:
        return con.execute(query).fetchall()


def _same_value(duck, pg) -> bool:
    if duck is None or pg is None:
        return duck is None and pg is None
    if isinstance(duck, float) or isinstance(pg, float):  # rates, p-values, exchange rates
        return float(pg) == pytest.approx(float(duck), rel=1e-9, abs=1e-300)
    if isinstance(duck, Decimal) or isinstance(pg, Decimal):  # money rounded to cents (or a numeric count)
        return abs(Decimal(duck) - Decimal(pg)) <= Decimal("0.01")
    return duck == pg  # dates, integers, text, booleans


def assert_same_table(built, dbname: str, table: str, columns: list[str], key: list[str]) -> int:
    query = f"select {', '.join(columns)} from {table} order by {', '.join(key)}"
    duck_rows, pg_rows = built.query(query), _pg_rows(dbname, query)
    assert len(pg_rows) == len(duck_rows), f"{table}: {len(pg_rows)} rows on PostgreSQL, {len(duck_rows)} on DuckDB"
    for duck_row, pg_row in zip(duck_rows, pg_rows, strict=True):
        for column, duck, pg in zip(columns, duck_row, pg_row, strict=True):
            assert _same_value(duck, pg), f"{table}.{column} at {duck_row[: len(key)]}: DuckDB {duck!r}, PG {pg!r}"
    return len(duck_rows)


def test_the_whole_project_builds_on_postgres(postgres_build):
    dbname, copied, stdout = postgres_build
    assert {"orders", "order_items", "customers", "web_events", "marketing_spend"} <= set(copied)
    assert all(rows > 0 for table, rows in copied.items() if table in {"orders", "order_items", "web_events"})
    # dbt build ran models, unit tests and data tests: none failed (run_dbt raises) and none was skipped
    summary = re.search(r"PASS=(\d+) WARN=\d+ ERROR=(\d+) SKIP=(\d+)", stdout)
    assert summary, stdout[-2000:]
    assert int(summary[1]) > 100 and summary[2] == "0" and summary[3] == "0", summary[0]
    built_relations = {
        row[0]
        for row in _pg_rows(
            dbname,
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema in ('staging', 'intermediate', 'marts', 'ml')",
        )
    }
    assert {"marts.fct_daily_revenue", "marts.fct_cohort_retention", "marts.fct_experiment_results"} <= built_relations
    assert not any(name.startswith("ml.") for name in built_relations), "tag:duckdb_only models are excluded"


def test_daily_revenue_equals_duckdb(built, postgres_build):
    dbname = postgres_build[0]
    columns = [
        "revenue_date", "gross_revenue_eur", "returns_eur", "net_revenue_eur", "orders", "average_order_value_eur",
    ]  # fmt: skip
    assert assert_same_table(built, dbname, "marts.fct_daily_revenue", columns, ["revenue_date"]) > 30
    segment_columns = [
        "revenue_date", "country_code", "channel", "currency", "gross_revenue_eur", "returns_eur", "orders",
        "net_revenue_local", "reference_eur_exchange_rate", "net_revenue_eur_at_reference_rate",
    ]  # fmt: skip
    assert assert_same_table(built, dbname, "marts.fct_daily_revenue_by_segment", segment_columns, segment_columns[:4])


def test_cohort_retention_equals_duckdb(built, postgres_build):
    columns = [
        "cohort_month", "months_since_first_order", "activity_month", "cohort_customers", "active_customers",
        "retention_rate", "is_complete_month",
    ]  # fmt: skip
    rows = assert_same_table(built, postgres_build[0], "marts.fct_cohort_retention", columns, columns[:2])
    assert rows > 1


def test_experiment_results_equal_duckdb(built, postgres_build):
    columns = [
        "experiment_key", "experiment_variant", "exposed_visitors", "sessions", "converted_visitors",
        "conversion_rate", "absolute_lift", "lift_ci_lower_95", "lift_ci_upper_95", "z_score", "p_value",
        "is_significant", "srm_chi_square", "srm_p_value", "has_sample_ratio_mismatch",
    ]  # fmt: skip
    assert assert_same_table(built, postgres_build[0], "marts.fct_experiment_results", columns, columns[:2]) >= 2


def test_pseudonymised_keys_are_the_same_on_both_engines(built, postgres_build):
    """The keyed hash is adapter-dispatched: a visitor or e-mail hashes to the same digest everywhere."""
    query = "select customer_id, email_hash from staging.stg_shop__customers order by customer_id"
    # The staging views read the key from the session (never from their SQL), as dbt's connections do.
    key = built.env["PII_HASH_KEY"]
    with psycopg.connect(pg_conninfo(postgres_build[0]), options=postgres_key_options(key)) as con:
        pg_rows = con.execute(query).fetchall()
    with duckdb.connect(str(built.warehouse_path), read_only=True) as con:
        con.execute("set variable pii_hash_key = ?", [key])
        duck_rows = con.execute(query).fetchall()
    assert pg_rows == duck_rows and len(duck_rows) > 10

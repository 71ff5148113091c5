"""The role matrix: what each Superset role may and may not reach, as tables the tests iterate.

`test_superset_assets.py` runs every (role, probe) pair against its real Superset: the REST API
probes (`API_PROBES`) and the SQL Lab statement forms (`SQL_PROBES`). Admins run each statement
on `serving` (everything published), analysts on `marts` (their SQL Lab database) and on
`serving` (refused: readable only in part), executives and country managers get no SQL Lab.

`LEAK_MARKERS` are values that exist only in rows of ops/ml/meta tables of the fixture serving
file (never in a probe's own text): a response to a non-admin's SQL that contains one leaked data.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("admin", "analyst", "executive", "country_manager")

# Data only ops.gate_runs / ops.access_log / ops.data_health rows hold (tests/superset/serving_fixture.py).
LEAK_MARKERS = ("gate1", "gate2", "dpo@shop.example", "airflow_admin", "expect_column_values_to_be_unique")

# Outcomes of a SQL probe.
OK = "ok"  # 200 (and rows, for the analyst's SELECTs)
REFUSED = "refused"  # refused by the SQL Lab guard, with a sentence saying why
DB_ERROR = "db error"  # DuckDB (or Superset's own checks) refuse it: read-only, locked, no external access
FORBIDDEN = "forbidden"  # the role has no SQL Lab at all (HTTP 403)


@dataclass(frozen=True)
class SqlProbe:
    name: str
    sql: str
    analyst: str  # outcome on the analyst's `marts` database
    admin: str  # outcome on `serving` for the admin
    refusal: str = ""  # a piece of the refusal message the analyst must see
    # The admin's answer holds ops rows: proof that the statement form reads what the analyst's may not.
    shows_ops: bool = False


SQL_PROBES = (
    SqlProbe("select marts", "select count(*) as n from marts.fct_daily_revenue", OK, OK),
    SqlProbe("from-first marts", "from marts.fct_daily_revenue select count(*) as n", OK, OK),
    SqlProbe("cte over marts", "with t as (select * from marts.fct_daily_revenue) select count(*) as n from t", OK, OK),
    SqlProbe(
        "pivot inside a select over marts",
        "select * from (pivot marts.fct_daily_revenue_by_segment on country_code using sum(orders))",
        OK,
        OK,
    ),
    SqlProbe("range", "select count(*) as n from range(3)", OK, OK),
    SqlProbe("pivot ops", "PIVOT ops.gate_runs ON gate USING count(*)", REFUSED, OK, "only SELECT", shows_ops=True),
    SqlProbe(
        "pivot ops in a select",
        "select * from (PIVOT ops.gate_runs ON gate USING count(*))",
        REFUSED,
        OK,
        "ops.gate_runs",
        shows_ops=True,
    ),
    SqlProbe("unpivot", "UNPIVOT marts.fct_daily_revenue ON orders INTO NAME k VALUE v", REFUSED, OK, "only SELECT"),
    SqlProbe("summarize", "SUMMARIZE ops.access_log", REFUSED, OK, "only SELECT", shows_ops=True),
    SqlProbe("show tables", "SHOW TABLES", REFUSED, OK, "only SELECT"),
    SqlProbe("show all tables", "SHOW ALL TABLES", REFUSED, OK, "only SELECT"),
    SqlProbe("describe", "DESCRIBE ops.gate_runs", REFUSED, OK, "only SELECT"),
    SqlProbe("explain", "EXPLAIN select * from ops.gate_runs", REFUSED, OK, "only SELECT"),
    SqlProbe("explain analyze", "EXPLAIN ANALYZE select * from ops.gate_runs", REFUSED, OK, "only SELECT"),
    SqlProbe("pragma", "PRAGMA database_list", REFUSED, OK, "only SELECT"),
    SqlProbe("set", "SET memory_limit = '64MB'", REFUSED, DB_ERROR, "only SELECT"),
    SqlProbe("set lock_configuration", "SET lock_configuration = false", REFUSED, DB_ERROR, "only SELECT"),
    SqlProbe("reset", "RESET memory_limit", REFUSED, DB_ERROR, "only SELECT"),
    SqlProbe("checkpoint", "CHECKPOINT", REFUSED, OK, "only SELECT"),
    SqlProbe("attach", "ATTACH '/tmp/probe.duckdb' AS probe", REFUSED, DB_ERROR, "only SELECT"),
    SqlProbe("copy", "COPY (select 1) TO '/tmp/probe.csv'", REFUSED, DB_ERROR, "only SELECT"),
    SqlProbe("install", "INSTALL httpfs", REFUSED, DB_ERROR, "only SELECT"),
    SqlProbe("load", "LOAD httpfs", REFUSED, DB_ERROR, "only SELECT"),
    SqlProbe("call", "CALL pragma_version()", REFUSED, OK, "only SELECT"),
    SqlProbe("use", "USE ops", REFUSED, OK, "only SELECT"),
    SqlProbe("read_csv", "select * from read_csv('/etc/hostname')", REFUSED, DB_ERROR, "table functions"),
    SqlProbe("read_parquet", "select * from read_parquet('/tmp/x.parquet')", REFUSED, DB_ERROR, "table functions"),
    SqlProbe(
        "query_table", "select * from query_table('ops.access_log')", REFUSED, OK, "table functions", shows_ops=True
    ),
    SqlProbe("duckdb_tables()", "select * from duckdb_tables()", REFUSED, OK, "table functions"),
    SqlProbe("current_setting", "select current_setting('memory_limit') as v", REFUSED, DB_ERROR, "current_setting"),
    SqlProbe("information_schema", "select * from information_schema.tables", REFUSED, OK, "information_schema"),
    SqlProbe("select ops", "select * from ops.gate_runs", REFUSED, OK, "ops.gate_runs", shows_ops=True),
    SqlProbe("select meta", "select * from meta.publication", REFUSED, OK, "meta.publication"),
    SqlProbe("select ml", "select * from ml.model_versions", REFUSED, OK, "ml.model_versions"),
    SqlProbe("from-first ops", "FROM ops.access_log", REFUSED, OK, "ops.access_log", shows_ops=True),
    SqlProbe(
        "cte naming ops",
        "with t as (select * from ops.gate_runs) select * from t",
        REFUSED,
        OK,
        "ops.gate_runs",
        shows_ops=True,
    ),
    SqlProbe(
        "subquery naming ops",
        "select * from marts.fct_daily_revenue where exists (select 1 from ops.access_log)",
        REFUSED,
        OK,
        "ops.access_log",
    ),
    SqlProbe("scalar from-first subquery", "select (FROM ops.gate_runs SELECT count(*)) as n", REFUSED, OK, "ops"),
    SqlProbe("quoted names", 'select * from "ops"."gate_runs"', REFUSED, OK, "ops.gate_runs", shows_ops=True),
    SqlProbe(
        "upper-case quoted names", 'select * from "OPS"."GATE_RUNS"', REFUSED, OK, "ops.gate_runs", shows_ops=True
    ),
    SqlProbe(
        "comment hides the schema",
        "select * from /* marts. */ ops.gate_runs -- from marts.fct_daily_revenue",
        REFUSED,
        OK,
        "ops.gate_runs",
        shows_ops=True,
    ),
    SqlProbe(
        "catalog-qualified name", "select * from serving_marts.marts.fct_daily_revenue", REFUSED, DB_ERROR, "database"
    ),
    SqlProbe("unqualified name", "select * from fct_daily_revenue", REFUSED, DB_ERROR, "name the schema"),
    SqlProbe(
        "union with ops",
        "select 'x' as a union all select gate from ops.gate_runs",
        REFUSED,
        OK,
        "ops.gate_runs",
        shows_ops=True,
    ),
    SqlProbe(
        "multiple statements",
        "select count(*) as n from marts.fct_daily_revenue; select count(*) as n from ops.gate_runs",
        REFUSED,
        OK,
        "ops.gate_runs",
    ),
    SqlProbe("create temp table", "create temp table probe as select 1 as x", REFUSED, DB_ERROR, "only SELECT"),
)


@dataclass(frozen=True)
class ApiProbe:
    name: str
    expected: dict[str, int]  # role -> HTTP status
    granted_by_dashboard: bool = False  # the role sees ops rows here on purpose (Governance, Data health)


def _all(admin: int, analyst: int, executive: int, country_manager: int) -> dict[str, int]:
    return dict(zip(ROLES, (admin, analyst, executive, country_manager), strict=True))


API_PROBES = (
    ApiProbe("dashboards list", _all(200, 200, 200, 200)),
    ApiProbe("governance chart data through its dashboard", _all(200, 200, 403, 403), granted_by_dashboard=True),
    ApiProbe("access log chart data without a dashboard", _all(200, 403, 403, 403)),
    ApiProbe("datasets list", _all(200, 200, 403, 403)),
    ApiProbe("access log column values", _all(200, 403, 403, 403)),
    ApiProbe("access log dataset", _all(200, 404, 403, 403)),
    ApiProbe("databases list", _all(200, 200, 403, 403)),
    ApiProbe("sql lab on marts", _all(200, 200, 403, 403)),
    # Superset answers a SQL Lab query refused by an access check with 500 (it re-wraps its 403).
    ApiProbe("sql lab on serving", _all(200, 500, 403, 403)),
    ApiProbe("chart data on a refused sql lab query", _all(200, 403, 403, 403)),
    # Explore's custom SQL on a marts dataset, with DuckDB's FROM-first subquery naming ops: Superset
    # refuses subqueries in custom SQL (ALLOW_ADHOC_SUBQUERY is off), for admins too.
    ApiProbe("explore custom sql subquery over ops", _all(400, 400, 403, 403)),
    ApiProbe("saved queries", _all(200, 200, 403, 403)),
    ApiProbe("logs", _all(200, 403, 403, 403)),
    ApiProbe("users", _all(200, 403, 403, 403)),
    ApiProbe("roles", _all(200, 403, 403, 403)),
    ApiProbe("assets export", _all(200, 403, 403, 403)),
    ApiProbe("database export", _all(200, 403, 403, 403)),
)

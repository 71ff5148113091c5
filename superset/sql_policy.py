"""Serve layer: which SQL statements a non-admin may run in SQL Lab (an allow-list, parsed).

Loaded by path from `superset_config.py` inside Superset's venv (it uses the `sqlglot` Superset
ships; nothing from this repository), and called by `sqllab_guard.py` before a query runs.

Allowed: SELECT (FROM-first included), WITH, UNION/INTERSECT/EXCEPT and PIVOT/UNPIVOT *inside* a
SELECT, over tables named `<schema>.<table>` with a schema in `allowed_schemas`, or CTEs of the
statement; `range`/`generate_series`/`unnest`. Everything else is refused with a sentence that
says what to write instead: other statement types (SHOW, DESCRIBE, SUMMARIZE, EXPLAIN, PRAGMA,
SET, RESET, CHECKPOINT, ATTACH, COPY, INSTALL, LOAD, CALL, USE, bare PIVOT/UNPIVOT, DDL, DML),
other schemas (ops, ml, meta, information_schema, pg_catalog...), catalog-qualified names,
table functions (read_csv, query_table, duckdb_tables(), glob...), metadata and settings functions,
and anything the parser cannot read.

This is the second line, for a clear error: the first is the database itself (the analyst's
SQL Lab file holds the marts only, opened read-only without external access and with its
configuration locked; see `serving/publish.py` and `superset_config.py`). The parser may read a
statement differently from DuckDB; the file cannot contain what it does not hold.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlglot
from sqlglot import exp

# Table functions that only generate rows: harmless, and useful for date spines.
_ROW_GENERATORS = (exp.GenerateSeries, exp.Unnest)
# Scalar functions that reveal settings, variables, the environment or the catalog.
_REFUSED_FUNCTION_PREFIXES = ("duckdb_", "pragma_", "read_", "parquet_", "sqlite_", "postgres_", "mysql_")
_REFUSED_FUNCTIONS = {
    "current_setting",
    "getenv",
    "getvariable",
    "query",
    "query_table",
    "glob",
    "sniff_csv",
    "json_execute_serialized_sql",
    "json_serialize_sql",
    "enum_range",
}


class StatementRefused(ValueError):
    """The SQL is not a read-only SELECT over the allowed schemas; the message says why."""


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return str(node.sql_name()).lower()


def _cte_names(tree: exp.Expression) -> set[str]:
    return {str(cte.alias_or_name).lower() for cte in tree.find_all(exp.CTE)}


def _check_table(table: exp.Table, ctes: set[str], allowed: set[str]) -> None:
    if not isinstance(table.this, exp.Identifier):
        if isinstance(table.this, _ROW_GENERATORS):
            return
        raise StatementRefused(
            f"table functions such as {table.this.sql(dialect='duckdb')[:60]} are not allowed in SQL Lab: "
            f"query the tables of {', '.join(sorted(allowed))} instead"
        )
    schema, catalog, name = table.db.lower(), table.catalog.lower(), table.name.lower()
    if catalog:
        raise StatementRefused(f"name tables as <schema>.<table>, without a database: {table.sql(dialect='duckdb')}")
    if not schema:
        if name in ctes:
            return
        raise StatementRefused(
            f"name the schema of {table.sql(dialect='duckdb')}: SQL Lab reads "
            f"{', '.join(f'{s}.<table>' for s in sorted(allowed))} only"
        )
    if schema not in allowed:
        raise StatementRefused(
            f"{schema}.{name} is not available in SQL Lab: only the {', '.join(sorted(allowed))} schema "
            "is (operations, model and publication tables are for admins)"
        )


def _check_statement(tree: exp.Expression, allowed: set[str]) -> None:
    root = tree
    while isinstance(root, (exp.Subquery, exp.Paren)):
        root = root.this
    if not isinstance(root, (exp.Select, exp.SetOperation)):
        # The statement's first word (CHECKPOINT, for one, parses as a bare column).
        kind = (str(tree.this) if isinstance(tree, exp.Command) else tree.sql(dialect="duckdb")).split()[0].upper()
        raise StatementRefused(
            f"only SELECT (or WITH ... SELECT) statements run in SQL Lab, not {kind}: "
            "write PIVOT/UNPIVOT inside a SELECT, and use the schema browser for table lists"
        )
    if tree.find(exp.Into, exp.Command):
        raise StatementRefused("SELECT ... INTO and embedded commands are not allowed in SQL Lab")
    ctes = _cte_names(tree)
    for table in tree.find_all(exp.Table):
        _check_table(table, ctes, allowed)
    for function in tree.find_all(exp.Func):
        name = _function_name(function)
        if name in _REFUSED_FUNCTIONS or name.startswith(_REFUSED_FUNCTION_PREFIXES):
            raise StatementRefused(f"the function {name}() is not allowed in SQL Lab")


def check(sql: str, allowed_schemas: Iterable[str]) -> None:
    """Raise StatementRefused unless every statement of `sql` is an allowed SELECT."""
    allowed = {schema.lower() for schema in allowed_schemas}
    try:
        trees = [tree for tree in sqlglot.parse(sql, read="duckdb") if tree is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise StatementRefused(f"SQL Lab could not parse this statement, so it does not run it: {exc}") from exc
    if not trees:
        raise StatementRefused("no statement to run")
    for tree in trees:
        _check_statement(tree, allowed)

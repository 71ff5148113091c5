"""Serve layer: where and what a non-admin's own SQL may run (SQL Lab and charts built on its queries).

Loaded by path from `superset_config.py` inside Superset's venv; `security_manager_class()`
returns the `CUSTOM_SECURITY_MANAGER`. Its `raise_for_access` runs before Superset's own for every
piece of free-form SQL: a SQL Lab query (`/api/v1/sqllab/execute/`, its results and CSV export)
and a chart whose datasource is a SQL Lab query. Users who may read every database (admins) are
not limited. Everyone else:

1. may run SQL only on a database they may read *in full* (`database_access`, granted by
   `databases:` in `superset/roles.yaml`): the analyst's `marts` database, a DuckDB file that holds
   the published marts and nothing else. Superset's own check only looks for tables in plain
   SELECTs, so on a database that is readable in part (`serving`: the dashboards' marts *and*
   ops/ml/meta) `PIVOT ops.gate_runs ...`, `SUMMARIZE`, `SHOW ALL TABLES`, `EXPLAIN ANALYZE` or
   `query_table('ops.access_log')` would read what the role may not; here they cannot, because
   the file does not hold it;
2. gets a clear refusal for anything but a SELECT over the allowed schemas (`sql_policy.py`),
   before DuckDB sees it.

Dashboards and Explore are untouched: their SQL is generated from datasets, checked by Superset.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

CheckSql = Callable[[str, Iterable[str]], None]


def security_manager_class(base: type, check_sql: CheckSql, allowed_schemas: Iterable[str]) -> type:
    """A subclass of Superset's security manager `base` that contains free-form SQL as described above."""
    from superset.errors import ErrorLevel, SupersetError, SupersetErrorType
    from superset.exceptions import SupersetSecurityException

    schemas = tuple(allowed_schemas)
    signature = inspect.signature(base.raise_for_access)

    def refuse(error_type: SupersetErrorType, message: str) -> SupersetSecurityException:
        return SupersetSecurityException(SupersetError(error_type=error_type, message=message, level=ErrorLevel.ERROR))

    class SqlLabContainedSecurityManager(base):  # type: ignore[misc, valid-type]
        def raise_for_access(self, *args: Any, **kwargs: Any) -> None:
            bound = signature.bind(self, *args, **kwargs).arguments
            self.contain_free_form_sql(bound.get("query"), bound.get("database"), bound.get("sql"))
            super().raise_for_access(*args, **kwargs)

        def contain_free_form_sql(self, query: Any, database: Any, sql: str | None) -> None:
            # A SQL Lab query, or a chart's Query datasource: both carry their SQL and database.
            if query is not None and hasattr(query, "sql") and hasattr(query, "database"):
                sql, database = query.sql, query.database
            if not sql or database is None:
                return
            if self.can_access_all_databases() or self.can_access_all_datasources():
                return
            if not self.can_access("database_access", database.perm or ""):
                raise refuse(
                    SupersetErrorType.DATABASE_SECURITY_ACCESS_ERROR,
                    f"SQL Lab runs your SQL only on a database you may read in full, and "
                    f"{database.database_name!r} is not one: choose the 'marts' database",
                )
            try:
                check_sql(sql, schemas)
            except ValueError as exc:
                raise refuse(SupersetErrorType.QUERY_SECURITY_ACCESS_ERROR, f"Refused: {exc}") from exc

    return SqlLabContainedSecurityManager

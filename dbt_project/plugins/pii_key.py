"""dbt-duckdb plugin: hands the pseudonymisation key to DuckDB without writing it into SQL.

The staging models hash personal identifiers with `PII_HASH_KEY` (macros/pseudonymise.sql). Were
the key rendered into the SQL by Jinja, it would be stored in clear wherever dbt keeps SQL: the
manifest, `target/compiled` and `target/run`, dbt.log, Airflow's rendered task fields and logs,
and the view definitions inside the warehouse. Instead this plugin sets it as a DuckDB variable
on every connection and cursor dbt opens, and the SQL reads `getvariable('pii_hash_key')`: the
key lives only in the process environment and in memory.
"""

from __future__ import annotations

import os

from dbt.adapters.duckdb.plugins import BasePlugin

VARIABLE = "pii_hash_key"


def _key() -> str:
    key = os.environ.get("PII_HASH_KEY", "")
    if not key:
        raise RuntimeError("PII_HASH_KEY is not set: the staging models cannot pseudonymise without it (make env)")
    return key


class Plugin(BasePlugin):
    def configure_connection(self, conn) -> None:
        conn.execute(f"set variable {VARIABLE} = ?", [_key()])

    def configure_cursor(self, cursor) -> None:
        # A DuckDB cursor is a connection of its own: variables are not shared with its parent.
        cursor.execute(f"set variable {VARIABLE} = ?", [_key()])
        return cursor

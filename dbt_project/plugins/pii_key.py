"""dbt-duckdb plugin: hands the pseudonymisation key to DuckDB without writing it into SQL.

The staging models hash personal identifiers with `PII_HASH_KEY` (macros/pseudonymise.sql). Were
the key rendered into the SQL by Jinja, it would be stored in clear wherever dbt keeps SQL: the
manifest, `target/compiled` and `target/run`, dbt.log, Airflow's rendered task fields and logs,
and the view definitions inside the warehouse. Instead this plugin sets it as a DuckDB variable
on every connection and cursor dbt opens, and the SQL reads `getvariable('pii_hash_key')`: the
key lives only in the process environment and in memory.

Without PII_HASH_KEY the variable is simply not set: commands that never hash (`mf query` and
`dbt show` on the marts, `dbt docs generate`) then work from a plain shell, and a staging model
still cannot hash with a missing key, because `pseudonymise()` stops with
`PII_HASH_KEY is not set on this connection` when the variable is NULL.
"""

from __future__ import annotations

import os

from dbt.adapters.duckdb.plugins import BasePlugin

VARIABLE = "pii_hash_key"


def _set_key(connection) -> None:
    key = os.environ.get("PII_HASH_KEY", "")
    if key:
        connection.execute(f"set variable {VARIABLE} = ?", [key])


class Plugin(BasePlugin):
    def configure_connection(self, conn) -> None:
        _set_key(conn)

    def configure_cursor(self, cursor) -> None:
        # A DuckDB cursor is a connection of its own: variables are not shared with its parent.
        _set_key(cursor)
        return cursor

"""Fingerprints of the marts: what gate 2 audited is exactly what publish may publish.

Gate 2 records the fingerprint of the base tables in the warehouse's `marts` schema that publish
serves (all but the models dbt marks `meta.publish: false`, core.dbt_manifest) as it audited them
(`ops.gate_runs.fingerprint`); `serving.publish` computes the same fingerprint before it copies
them and refuses to publish when they differ (a dbt run slipped in between the audit and the
publish, the served set changed, or nothing was audited). The unserved marts are the row-level
ones (order lines, sessions, customers): hashing them on every run cost more than the rest of
gate 2 and publish at ten million orders, and grew with the history. The serving file carries it too
(`meta.publication.marts_fingerprint`), so a reader can check in one query that the tables it
reads belong to the publication it names.

A table's part is its row count and the XOR of DuckDB's `hash()` of every row: independent of
row order, computed inside DuckDB in one pass, sensitive to any changed value, column or type.
"""

from __future__ import annotations

import hashlib

import duckdb


def table_fingerprint(con: duckdb.DuckDBPyConnection, qualified_table: str) -> tuple[int, int]:
    """(rows, XOR of row hashes) of one table; `qualified_table` is a quoted catalog.schema.table."""
    rows, digest = con.execute(f"select count(*), coalesce(bit_xor(hash(t)), 0) from {qualified_table} t").fetchall()[0]
    return int(rows), int(digest)


def schema_tables(con: duckdb.DuckDBPyConnection, catalog: str, schema: str) -> list[str]:
    return [
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_catalog = ? and table_schema = ? "
            "and table_type = 'BASE TABLE' order by 1",
            [catalog, schema],
        ).fetchall()
    ]


def schema_fingerprint(
    con: duckdb.DuckDBPyConnection, catalog: str, schema: str = "marts", exclude: frozenset[str] = frozenset()
) -> str:
    """One hex string for the base tables of `catalog.schema` but `exclude` (names, row counts, row hashes)."""
    parts = []
    for table in schema_tables(con, catalog, schema):
        if table in exclude:
            continue
        rows, digest = table_fingerprint(con, f'"{catalog}"."{schema}"."{table}"')
        parts.append(f"{schema}.{table}:{rows}:{digest}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]

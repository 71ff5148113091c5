"""dbt's DuckDB connection runs with the stack's limits: memory and a capped spill folder."""

from __future__ import annotations

from tests.dbt.fixture_warehouse import run_dbt


def test_dbt_connections_cap_memory_and_spill(built):
    env = {**built.env, "DUCKDB_MAX_TEMP_SIZE": "2GB", "DUCKDB_MEMORY_LIMIT": "1GB"}
    out = run_dbt(
        env,
        "show",
        "--inline",
        "select current_setting('max_temp_directory_size') as spill, current_setting('memory_limit') as memory",
    ).stdout
    assert "1.8 GiB" in out and "953.6 MiB" in out, out[-2000:]

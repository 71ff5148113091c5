"""Record gate results in the warehouse table `ops.data_health`, one row per expectation.

The caller decides when to write (DuckDB has one writer per file). Recording is idempotent per
run and partition: rows of the same run id, gate, suite and ds are replaced, so a retried task
does not count twice. The table feeds the data-health dashboard.
"""

from __future__ import annotations

import json
from pathlib import Path

from quality.results import GateResult

DDL = """
create schema if not exists ops;
create table if not exists ops.data_health (
    run_id varchar not null,
    checked_at timestamp not null,
    gate varchar not null,
    suite varchar not null,
    table_name varchar not null,
    expectation varchar not null,
    column_name varchar,
    success boolean not null,
    observed_value varchar,
    details varchar,
    ds date
);
"""


def record_results(warehouse_path: Path, result: GateResult, *, memory_limit: str = "3GB", threads: int = 2) -> int:
    """Replace this run's rows for the result's suites (and ds) in `ops.data_health`."""
    from ingestion.warehouse import connect_warehouse

    rows = [
        (
            result.run_id,
            result.checked_at,
            result.gate,
            o.suite,
            o.table_name,
            o.expectation,
            o.column_name,
            o.success,
            o.observed_value,
            json.dumps(o.details, sort_keys=True, allow_nan=False),
            result.ds,
        )
        for o in result.outcomes
    ]
    con = connect_warehouse(Path(warehouse_path), memory_limit=memory_limit, threads=threads)
    try:
        con.execute(DDL)
        con.execute("begin transaction")
        try:
            con.execute(
                "delete from ops.data_health where run_id = ? and gate = ? "
                "and suite in (select unnest(?::varchar[])) and ds is not distinct from ?::date",
                [result.run_id, result.gate, list(result.suites), result.ds],
            )
            if rows:
                con.executemany("insert into ops.data_health values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        con.close()
    return len(rows)

"""The data-health tables in the warehouse's `ops` schema, and writing gate results to them.

| table | one row per | written by |
| --- | --- | --- |
| `ops.data_health` | expectation per gate run (passed, warned and failed alike) | `record_results` |
| `ops.gate_runs` | suite per gate run: status, counts, the one-line reason, gate 2's fingerprint | `record_results` |
| `ops.quarantine` | batch or partner file ever held in `lake/quarantine/` | `quality.quarantine_records` |
| `ops.source_freshness` | dbt source: its worst table's freshness, age, SLA, status (current) | `quality.freshness` |

`serving.publish` copies these four into the serving file for the Data health dashboard (no
PII in them). The caller decides when to write (DuckDB has one writer per file: the DAG tasks
that call this hold the `duckdb_warehouse` pool). Recording is idempotent per run and partition:
rows of the same run id, gate, suite and ds are replaced, so a retried task does not count twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from quality.results import GateResult, make_reason

if TYPE_CHECKING:
    import duckdb

    from core.settings import Settings

OPS_TABLES = ("data_health", "gate_runs", "quarantine", "source_freshness")

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
-- Added after the first release: older warehouses get them here (existing rows: critical).
alter table ops.data_health add column if not exists severity varchar;
alter table ops.data_health add column if not exists status varchar;
update ops.data_health set severity = 'critical', status = case when success then 'passed' else 'failed' end
where severity is null;
create table if not exists ops.gate_runs (
    run_id varchar not null,
    checked_at timestamp not null,
    gate varchar not null,
    suite varchar not null,
    table_name varchar not null,
    ds date,
    status varchar not null,          -- passed | warned | failed
    expectations integer not null,
    failed integer not null,          -- failed critical expectations (they block)
    warned integer not null,          -- failed warning expectations (reported only)
    rows_checked bigint,
    reason varchar not null,
    fingerprint varchar               -- gate 2: the marts as audited (serving.publish checks it)
);
create table if not exists ops.quarantine (
    -- both kinds of quarantine (quality.quarantine_records): gate-1 batches and partner files
    quarantine_id varchar not null,   -- relative to lake/quarantine: <source>/<table>/ds=<ds>/<run>, or
                                      -- partner_files/<partner>/<day held>/<file>-<sha12> for a partner file
    source varchar not null,          -- partner_files for a partner file
    table_name varchar not null,      -- the partner, for a partner file
    ds date not null,                 -- a partner file's business date, else the day it was held
    run_id varchar not null,
    status varchar not null,          -- held | released | superseded | dismissed (partner files only)
    quarantined_at timestamp not null,
    resolved_at timestamp,
    row_count bigint,                 -- a partner file: the rows held
    failed_expectations varchar,      -- a partner file: its error code, or code(column) of its bad rows
    reason varchar not null,
    resolution varchar
);
create table if not exists ops.source_freshness (
    source varchar not null,
    tables integer not null,          -- tables dbt found rows in
    last_landed_ds date,              -- the newest day (_ds) every such table holds
    data_complete_at timestamp,       -- the stalest table's newest _loaded_at (dbt's max_loaded_at)
    last_landed_at timestamp,         -- no longer written (landing times: ops.run_ledger)
    last_loaded_ds date,
    last_loaded_at timestamp,
    age_hours double,                 -- checked_at - data_complete_at
    sla_hours double not null,        -- the dbt source's error_after, in hours
    status varchar not null,          -- ok | warn | late | missing | error
    lagging_tables varchar,
    checked_at timestamp not null
);
"""


def ensure_ops_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create (or migrate) the data-health tables on an open read-write connection."""
    con.execute(DDL)


def _health_rows(result: GateResult) -> list[tuple]:
    return [
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
            o.severity,
            o.status,
        )
        for o in result.outcomes
    ]


def _gate_run_rows(result: GateResult) -> list[tuple]:
    rows = []
    for suite in result.suites:
        outcomes = [o for o in result.outcomes if o.suite == suite]
        tables = list(dict.fromkeys(o.table_name for o in outcomes))
        counts = {t: n for t, n in result.row_counts.items() if t in tables}
        failed = sum(o.status == "failed" for o in outcomes)
        warned = sum(o.status == "warned" for o in outcomes)
        status = "failed" if failed else ("warned" if warned else "passed")
        rows.append(
            (
                result.run_id,
                result.checked_at,
                result.gate,
                suite,
                ", ".join(tables),
                result.ds,
                status,
                len(outcomes),
                failed,
                warned,
                sum(counts.values()) if counts else None,
                make_reason(result.gate, suite, outcomes, counts, result.ds),
                result.fingerprint,
            )
        )
    return rows


_HEALTH_COLUMNS = (
    "run_id, checked_at, gate, suite, table_name, expectation, column_name, success, observed_value, details, ds, "
    "severity, status"
)
_GATE_RUN_COLUMNS = (
    "run_id, checked_at, gate, suite, table_name, ds, status, expectations, failed, warned, rows_checked, reason, "
    "fingerprint"
)


def write_results(con: duckdb.DuckDBPyConnection, results: Iterable[GateResult]) -> int:
    """Replace each result's rows (same run, gate, suite, ds) in one transaction; rows written."""
    ensure_ops_tables(con)
    written = 0
    con.execute("begin transaction")
    try:
        for result in results:
            for table in ("data_health", "gate_runs"):
                con.execute(
                    f"delete from ops.{table} where run_id = ? and gate = ? "
                    "and suite in (select unnest(?::varchar[])) and ds is not distinct from ?::date",
                    [result.run_id, result.gate, list(result.suites), result.ds],
                )
            health = _health_rows(result)
            if health:
                con.executemany(
                    f"insert into ops.data_health ({_HEALTH_COLUMNS}) values ({', '.join(['?'] * 13)})", health
                )
            runs = _gate_run_rows(result)
            if runs:
                con.executemany(
                    f"insert into ops.gate_runs ({_GATE_RUN_COLUMNS}) values ({', '.join(['?'] * 13)})", runs
                )
            written += len(health)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return written


def record_results(
    warehouse_path: Path,
    result: GateResult | Iterable[GateResult],
    *,
    settings: Settings,
    wait_seconds: float = 0.0,
) -> int:
    """Record one or more gate results in `ops.data_health` and `ops.gate_runs`; rows written.

    `settings` gives the DuckDB limits; `warehouse_path` is the file written (a copy in tests).
    """
    # here, not at module level: like the rest of this module, importing it does not load DuckDB
    from core.duckdb_connect import connect_file

    results = [result] if isinstance(result, GateResult) else list(result)
    con = connect_file(settings, Path(warehouse_path), wait_seconds=wait_seconds)
    try:
        return write_results(con, results)
    finally:
        con.close()

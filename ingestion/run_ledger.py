"""The run ledger: what every landing and load moved, how much and how fast (`ops.run_ledger`).

One row per (run, source, table, day, step). Rows are written by the loader inside the load's
own transaction, so the ledger never claims a load that was rolled back; landing metrics come
from the partition manifests (landing runs outside the warehouse's single-writer pool).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb

from ingestion.lake import PartitionManifest

DDL = """
create schema if not exists ops;
create table if not exists ops.run_ledger (
    run_id varchar not null,
    ds date not null,
    source varchar not null,
    table_name varchar not null,
    step varchar not null,          -- land | load
    rows bigint not null,
    bytes bigint,
    seconds double,
    recorded_at timestamp not null
);
"""


def record(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    manifests: Sequence[PartitionManifest],
    loaded_rows_by_day: dict[str, int],
    load_seconds: float,
) -> None:
    """Replace this run's ledger rows for these partitions (a retried load is not counted twice)."""
    con.execute(DDL)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    days = len(manifests) or 1
    rows = []
    for m in manifests:
        rows.append((run_id, m.ds, m.source, m.table, "land", m.row_count, m.bytes, m.seconds, now))
        rows.append(
            (run_id, m.ds, m.source, m.table, "load", loaded_rows_by_day.get(m.ds, 0), None, load_seconds / days, now)
        )
    con.execute(
        "delete from ops.run_ledger where run_id = ? and source = ? and table_name = ? "
        "and ds in (select unnest(?::date[]))",
        [run_id, manifests[0].source, manifests[0].table, [m.ds for m in manifests]],
    )
    con.executemany("insert into ops.run_ledger values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

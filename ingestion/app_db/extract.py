"""Extract one day of changes from the operational database as a stream of Arrow batches.

A row belongs to day `ds` when its watermark column (`updated_at`, or `created_at` for
insert-only tables) falls in [ds, ds + 1 day). Rows are read with a server-side cursor in
batches, so memory stays bounded whatever the table's size.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pyarrow as pa
from sqlalchemy import Engine, and_, func, select

from ingestion.app_db.contract import TableContract
from ingestion.app_db.schema import TABLES

BATCH_ROWS = 50_000


def day_bounds(ds: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(ds, dt.time())
    return start, start + dt.timedelta(days=1)


def extract_day(engine: Engine, contract: TableContract, ds: dt.date) -> Iterator[pa.RecordBatch]:
    """Yield the day's changed rows of one table as Arrow batches in the contract's schema."""
    table = TABLES[contract.name]
    changed = table.c[contract.changed_at]
    lo, hi = day_bounds(ds)
    query = (
        select(*[table.c[name] for name in contract.columns])
        .where(and_(changed >= lo, changed < hi))
        .order_by(table.c[contract.key])
    )
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH_ROWS).execute(query)
        for rows in result.partitions():
            columns = list(zip(*rows, strict=True)) if rows else [[] for _ in contract.columns]
            yield pa.RecordBatch.from_arrays(
                [pa.array(col, type=field.type) for col, field in zip(columns, contract.schema, strict=True)],
                schema=contract.schema,
            )


def source_count(engine: Engine, contract: TableContract, ds: dt.date) -> int:
    """How many rows the source holds for the day (what the landed batch must match)."""
    table = TABLES[contract.name]
    changed = table.c[contract.changed_at]
    lo, hi = day_bounds(ds)
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(and_(changed >= lo, changed < hi))).scalar_one())

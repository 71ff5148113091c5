"""Turn what a gate audits into a pandas DataFrame with dtypes the GX checks can rely on.

Gate 1 reads the landed Parquet files of one batch and the row count its `_manifest.json`
promised; gate 2's per-day frames are computed in DuckDB by `quality.mart_frames`. Both go
through Arrow and the same dtype mapping (see `to_frame`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

MANIFEST = "_manifest.json"  # written by ingestion.lake beside every landed partition

# Added by the gate to a snapshot table's rows, not read from the files: the end of the day each
# row's partition is a snapshot of. A snapshot repeats every key each day, so a batch of several
# days checks uniqueness and freshness per row's day (`quality.suites`), not over the union.
SNAPSHOT_DAY_END = "_snapshot_day_end"


def _pandas_dtype(arrow_type: pa.DataType):
    """Nullable pandas dtypes: an integer key with a null stays an integer column (not float)."""
    import pandas as pd
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        return pd.Int64Dtype()
    if pa.types.is_floating(arrow_type):
        return pd.Float64Dtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.StringDtype("pyarrow")
    return None  # dates stay Python dates, timestamps numpy datetimes (pyarrow's defaults)


def to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow table -> DataFrame with the dtypes `quality.suites.pandas_type_name` expects."""
    import pyarrow as pa

    for index, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type):
            # Money in the marts is DECIMAL; the checks compare it, they do not sum cents.
            table = table.set_column(index, field.name, table.column(index).cast(pa.float64()))
        elif pa.types.is_timestamp(field.type) and field.type.unit != "ns" and field.type.tz is None:
            # GX 1.24 compares datetime64[ns] columns vectorised but maps every value of any other
            # unit through a Python function (pandas keeps Arrow's microseconds): 10x slower.
            table = table.set_column(index, field.name, table.column(index).cast(pa.timestamp("ns")))
    return table.to_pandas(types_mapper=_pandas_dtype)


def read_landed_batch(parquet_paths: Sequence[Path], snapshot_days: Sequence[dt.date] | None = None) -> pd.DataFrame:
    """All rows of a landed batch (usually one file); an empty file still carries its schema.

    `snapshot_days` (one per path): the batch is a snapshot table's, and each file's rows get
    `SNAPSHOT_DAY_END`, the end of the day that file is a snapshot of.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not parquet_paths:
        raise ValueError("no Parquet files given for the batch")
    tables = [pq.read_table(path) for path in parquet_paths]
    if snapshot_days is not None:
        if len(snapshot_days) != len(tables):
            raise ValueError(f"{len(snapshot_days)} snapshot days for {len(tables)} files")
        tables = [
            table.append_column(
                SNAPSHOT_DAY_END,
                pa.array([_day_end(day)] * len(table), pa.timestamp("us")),
            )
            for table, day in zip(tables, snapshot_days, strict=True)
        ]
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
    return to_frame(table)


def _day_end(day: dt.date | str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(str(day)), dt.time()) + dt.timedelta(days=1)


def manifest_row_count(parquet_paths: Sequence[Path]) -> int:
    """Rows the landing manifests beside the files promised (summed over their partitions)."""
    total = 0
    for folder in sorted({Path(path).parent for path in parquet_paths}):
        manifest = folder / MANIFEST
        if not manifest.exists():
            raise FileNotFoundError(f"no {MANIFEST} in {folder}: the partition was not landed completely")
        total += int(json.loads(manifest.read_text())["row_count"])
    return total

"""The data lake writer: raw, Hive-partitioned Parquet, one folder per source/table/day.

Layout: `<lake>/raw/<source>/<table>/ds=YYYY-MM-DD/part-<run_id>.parquet` plus `_manifest.json`
(row count, schema hash, file checksum, source watermark, run id). A partition is written to a
hidden temporary folder and swapped in by rename, so readers see the old day or the new day,
never half of one, and re-running a day replaces it instead of appending.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.files import safe_file_name

MANIFEST = "_manifest.json"


@dataclass(frozen=True)
class PartitionManifest:
    """What a landed partition holds; written beside its Parquet file."""

    source: str
    table: str
    ds: str
    run_id: str
    file: str
    row_count: int
    bytes: int
    sha256: str
    schema_hash: str
    watermark: str | None
    landed_at: str
    seconds: float | None = None  # time to extract and write the partition
    max_key: int | None = None  # highest key landed
    key_ceiling: int | None = None  # insert-only tables: the source's highest key when the extract began
    deleted_keys: list | None = None  # keys gone from the source (snapshot diff or key-set diff); None: not checked


def partition_dir(raw_dir: Path, source: str, table: str, ds: dt.date | str) -> Path:
    return raw_dir / source / table / f"ds={ds}"


def schema_hash(schema: pa.Schema) -> str:
    text = ",".join(f"{f.name}:{f.type}" for f in schema)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_partition(
    raw_dir: Path,
    source: str,
    table: str,
    ds: dt.date | str,
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    run_id: str,
    watermark_column: str | None = None,
    key_column: str | None = None,
    previous_keys: set | None = None,
    deleted_keys: list | None = None,
    key_ceiling: int | None = None,
) -> PartitionManifest:
    """Stream `batches` into a new partition and swap it in atomically.

    With `key_column`, the manifest records the highest key; with `previous_keys` as well (the
    keys of the previous snapshot), it records which of them are gone: hard deletes. A table that
    is not a snapshot passes the deletes found otherwise (`deleted_keys`, a key-set diff).
    `key_ceiling` is recorded as given (the next day's extract of an insert-only table starts there).
    """
    final = partition_dir(raw_dir, source, table, ds)
    final.parent.mkdir(parents=True, exist_ok=True)
    safe_id = safe_file_name(run_id)
    tmp = final.parent / f".tmp-{safe_id}-{final.name}"
    began = time.monotonic()
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    file_name = f"part-{safe_id}.parquet"
    rows = 0
    watermark = None
    max_key = None
    keys: set | None = set() if previous_keys is not None else None
    with pq.ParquetWriter(tmp / file_name, schema, compression="zstd") as writer:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            writer.write_batch(batch)
            rows += batch.num_rows
            if key_column:
                batch_key = pc.max(batch.column(key_column)).as_py()
                max_key = batch_key if max_key is None else max(max_key, batch_key)
                if keys is not None:
                    keys.update(batch.column(key_column).to_pylist())
            if watermark_column:
                batch_max = pc.max(batch.column(watermark_column)).as_py()
                if batch_max is not None and (watermark is None or batch_max > watermark):
                    watermark = batch_max
    data = (tmp / file_name).read_bytes()
    manifest = PartitionManifest(
        source=source,
        table=table,
        ds=str(ds),
        run_id=run_id,
        file=file_name,
        row_count=rows,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        schema_hash=schema_hash(schema),
        watermark=watermark.isoformat() if watermark is not None else None,
        landed_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        seconds=round(time.monotonic() - began, 3),
        max_key=max_key,
        key_ceiling=key_ceiling,
        deleted_keys=sorted(previous_keys - keys)
        if keys is not None and previous_keys is not None
        else (sorted(deleted_keys) if deleted_keys is not None else None),
    )
    (tmp / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2))
    fsync_path(tmp)
    swap_in(tmp, final, safe_id)
    return manifest


def swap_in(tmp: Path, final: Path, safe_id: str) -> None:
    """Replace the partition folder `final` with the finished `tmp` one (readers see old or new)."""
    old = final.parent / f".old-{safe_id}-{final.name}"
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
    os.rename(tmp, final)
    fsync_path(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory (its entries, after a rename into it), before relying on it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(raw_dir: Path, source: str, table: str, ds: dt.date | str) -> PartitionManifest:
    """The manifest of a landed partition; a clear error when the day was never landed."""
    path = partition_dir(raw_dir, source, table, ds) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(
            f"no landed partition {source}.{table} ds={ds} (expected {path}); run the extract first"
        )
    return PartitionManifest(**json.loads(path.read_text()))


def partition_file(raw_dir: Path, manifest: PartitionManifest) -> Path:
    return partition_dir(raw_dir, manifest.source, manifest.table, manifest.ds) / manifest.file


def partition_keys(raw_dir: Path, source: str, table: str, ds: dt.date | str, key_column: str) -> set | None:
    """The keys landed in a partition (None when the day was never landed)."""
    try:
        manifest = read_manifest(raw_dir, source, table, ds)
    except FileNotFoundError:
        return None
    column = pq.read_table(partition_file(raw_dir, manifest), columns=[key_column]).column(key_column)
    return set(column.to_pylist())

"""Fixtures for the gate tests: a private copy of the GX project and small landed batches."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from ingestion.app_db.contract import CONTRACTS
from ingestion.lake import partition_file, write_partition
from quality import context

DS = "2026-03-03"
TS = dt.datetime(2026, 3, 3, 9, 30)


@pytest.fixture(scope="session", autouse=True)
def gx_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Run every in-process gate on a copy of quality/gx, so tests never rewrite the committed one."""
    copy = tmp_path_factory.mktemp("gx_project") / "gx"
    shutil.copytree(context.GX_PROJECT_DIR, copy)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(context, "GX_PROJECT_DIR", copy)
        yield copy


@pytest.fixture(scope="session")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gx_docs")


def good_rows(table: str, n: int = 3) -> dict[str, list]:
    """n valid rows of a landed table (keys 1..n)."""
    ids = list(range(1, n + 1))
    stamps = {"created_at": [TS] * n, "updated_at": [TS] * n}
    rows = {
        "orders": {
            "order_id": ids,
            "customer_id": [10 + i for i in ids],
            "order_status": ["placed", "shipped", "cancelled"][:n] + ["placed"] * max(0, n - 3),
            "channel": ["web"] * n,
            "country_code": ["DE"] * n,
            "currency": ["EUR"] * n,
            "eur_exchange_rate": [1.0] * n,
            "ordered_at": [TS] * n,
            **stamps,
        },
        "order_items": {
            "order_item_id": ids,
            "order_id": ids,
            "product_id": [7] * n,
            "quantity": [1] * n,
            "unit_price_cents": [1999] * n,
            **stamps,
        },
        "products": {
            "product_id": ids,
            "sku": [f"SKU-{i}" for i in ids],
            "product_name": ["Mug"] * n,
            "category": ["kitchen"] * n,
            "unit_price_eur_cents": [1299] * n,
            "is_active": [True] * n,
            **stamps,
        },
    }
    return rows[table]


def land(raw_dir: Path, table: str, rows: dict[str, list] | None = None, *, schema: pa.Schema | None = None) -> Path:
    """Land a batch through the real lake writer (file + manifest); return the Parquet path.

    rows=None lands an empty batch; the schema defaults to the contract's columns present in rows.
    """
    if schema is None:
        contract = CONTRACTS[table].schema
        schema = contract if rows is None else pa.schema([f for f in contract if f.name in rows])
    batches = [pa.RecordBatch.from_pydict(rows, schema=schema)] if rows else []
    manifest = write_partition(raw_dir, "shop", table, DS, batches, schema, "test-run")
    return partition_file(raw_dir, manifest)

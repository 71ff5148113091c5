"""What reading the app DB costs per row, per table: the Arrow-native path against the plain one.

Two numbers per table (bench/README.md explains them):
- *extract*: microseconds per row of `extract_day` (ADBC into Arrow batches, what the pipeline
  runs) and of `sqlalchemy_batches` (SQLAlchemy rows converted by `pa.array`, the previous path and
  the fallback for other databases) on the same sample of days, timed in this one process with
  the two paths taking turns first, so neither profits alone from a warm page cache;
- *landed*: microseconds per row the pipeline spent extracting and writing each partition
  (Parquet included), from the manifests of the whole history (`seconds`, `row_count`).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable

from core.settings import Settings
from ingestion.app_db.connection import connect
from ingestion.app_db.contract import CONTRACTS, SOURCE_NAME
from ingestion.app_db.extract import day_queries, extract_day, sqlalchemy_batches


def sample_days(start: dt.date, end: dt.date, count: int) -> list[dt.date]:
    """`count` days spread evenly over [start, end] (all of them if there are fewer)."""
    total = (end - start).days + 1
    if total <= count:
        return [start + dt.timedelta(days=n) for n in range(total)]
    return [start + dt.timedelta(days=round(n * (total - 1) / (count - 1))) for n in range(count)]


def _timed(batches: Iterable) -> tuple[int, float]:
    began = time.perf_counter()
    rows = sum(batch.num_rows for batch in batches)
    return rows, time.perf_counter() - began


def _read(engine, contract, ds: dt.date, path: str) -> Iterable:
    if path == "adbc":
        return extract_day(engine, contract, ds)
    return sqlalchemy_batches(engine, day_queries(contract, ds), contract.schema)


def extraction_cost(settings: Settings, start: dt.date, end: dt.date, days: int = 12) -> dict:
    """Per table: rows and seconds of both paths on the sampled days, and the landed cost."""
    sample = sample_days(start, end, days)
    engine = connect(settings.app_db_url)
    tables: dict[str, dict] = {}
    try:
        for name, contract in CONTRACTS.items():
            cost = {"rows": 0, "adbc_s": 0.0, "sqlalchemy_s": 0.0}
            for n, ds in enumerate(sample):
                rows = {}
                for path in sorted(("adbc", "sqlalchemy"), reverse=n % 2 == 1):  # take turns at going first
                    rows[path], seconds = _timed(_read(engine, contract, ds, path))
                    cost[f"{path}_s"] += seconds
                if rows["adbc"] != rows["sqlalchemy"]:
                    raise RuntimeError(f"{name} {ds}: ADBC read {rows['adbc']} rows, SQLAlchemy {rows['sqlalchemy']}")
                cost["rows"] += rows["adbc"]
            tables[name] = {**cost, **_landed(settings, name, start, end)}
    finally:
        engine.dispose()
    return {"days": [str(d) for d in sample], "app_db": engine.url.get_backend_name(), "tables": tables}


def _landed(settings: Settings, table: str, start: dt.date, end: dt.date) -> dict:
    """Rows and seconds (extract + Parquet write) the pipeline recorded in the manifests of [start, end]."""
    rows, seconds = 0, 0.0
    for path in (settings.lake_raw_dir / SOURCE_NAME / table).glob("ds=*/_manifest.json"):
        manifest = json.loads(path.read_text())
        if str(start) <= manifest["ds"] <= str(end) and manifest.get("seconds") is not None:
            rows += manifest["row_count"]
            seconds += manifest["seconds"]
    return {"landed_rows": rows, "landed_s": seconds}


def us_per_row(seconds: float | None, rows: int | None) -> float | None:
    return seconds * 1e6 / rows if seconds is not None and rows else None

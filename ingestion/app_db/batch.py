"""One run of the shop source: land a day's changes in the lake, then load them into `raw`.

These are the functions the `shop_daily` DAG's tasks call (and the headless runner, for bulk
history). Every function takes the logical date and the run id explicitly and is idempotent for
that day: running it again replaces the day.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict

from core.settings import Settings
from ingestion.app_db.connection import connect, require_tables
from ingestion.app_db.contract import CONTRACTS, SOURCE_NAME
from ingestion.app_db.deletes import deleted_keys
from ingestion.app_db.extract import KeyWindow, extract_day, key_ceiling, source_count
from ingestion.lake import partition_keys, read_manifest, write_partition
from ingestion.warehouse import LoadResult, load_source_days

log = logging.getLogger(__name__)


def land_day(
    settings: Settings,
    ds: dt.date,
    run_id: str,
    tables: Iterable[str] | None = None,
    *,
    check_deletes: bool = True,
) -> dict[str, dict]:
    """Extract day `ds` of every table from the app DB into lake partitions; return manifests.

    Tables are independent, so `settings.extract_workers` of them are landed at once, each on its
    own connection: the drivers read and Parquet compresses outside Python's lock, and a day is
    mostly waiting on the source. The insert-only tables (the large ones) start first. When a
    table fails, the others still finish (their partitions are whole and a rerun replaces them)
    and the first failure, in table order, is raised.

    `check_deletes=False` skips the hard-delete diff (`ingestion/app_db/deletes.py`), which reads
    every key of the table in the source and the lake: a run over many days checks on its first
    day only, since the later days' earlier partitions were extracted by the same run moments ago.
    A key deleted while such a run lands is reported by the next run.
    """
    names = list(tables or CONTRACTS)
    engine = connect(settings.app_db_url)
    try:
        require_tables(engine, names)

        def land(name: str) -> dict:
            return _land_table(settings, engine, name, ds, run_id, check_deletes)

        if settings.extract_workers <= 1 or len(names) == 1:
            return {name: land(name) for name in names}
        largest_first = sorted(names, key=lambda name: CONTRACTS[name].mode != "key_watermark")
        with ThreadPoolExecutor(min(settings.extract_workers, len(names)), thread_name_prefix="land") as pool:
            futures = {name: pool.submit(land, name) for name in largest_first}
            wait(futures.values())
        return {name: futures[name].result() for name in names}  # raises the first failure
    finally:
        engine.dispose()


def _land_table(settings: Settings, engine, name: str, ds: dt.date, run_id: str, check_deletes: bool) -> dict:
    """Land one table's day and check the partition holds what the source holds for it."""
    contract = CONTRACTS[name]
    began = time.monotonic()
    previous_day = ds - dt.timedelta(days=1)
    window = previous_keys = None
    if contract.mode == "key_watermark":
        window = _key_window(settings, engine, name, ds)
    if contract.mode == "snapshot":
        previous_keys = partition_keys(settings.lake_raw_dir, SOURCE_NAME, name, previous_day, contract.key)
    gone = None
    if check_deletes and contract.hard_deletes and contract.mode != "snapshot":
        gone = deleted_keys(engine, contract, settings.lake_raw_dir, SOURCE_NAME, ds)
    manifest = write_partition(
        settings.lake_raw_dir,
        SOURCE_NAME,
        name,
        ds,
        extract_day(engine, contract, ds, window),
        contract.schema,
        run_id,
        watermark_column=contract.changed_at,
        key_column=contract.key,
        previous_keys=previous_keys,
        deleted_keys=gone,
        key_ceiling=window.ceiling if window else None,
    )
    if manifest.deleted_keys:
        log.warning(
            "%s.%s ds=%s: %d row(s) deleted in the source since the previous landing: %s",
            SOURCE_NAME,
            name,
            ds,
            len(manifest.deleted_keys),
            manifest.deleted_keys[:20],
        )
    expected = source_count(engine, contract, ds, window)
    if manifest.row_count != expected:
        raise RuntimeError(
            f"{SOURCE_NAME}.{name} ds={ds}: landed {manifest.row_count} rows but the source "
            f"holds {expected} for the day (did the source change during the extract?)"
        )
    log.info(
        "landed %s.%s ds=%s rows=%d bytes=%d in %.2fs",
        SOURCE_NAME,
        name,
        ds,
        manifest.row_count,
        manifest.bytes,
        time.monotonic() - began,
    )
    return asdict(manifest)


def land_days(settings: Settings, days: Sequence[dt.date], run_id: str) -> dict[str, list[dict]]:
    """Land several days (a backfill, the demo history); return each table's manifests, in day order.

    Each table's days are landed in order (an insert-only table's key window starts where its
    previous day's ended), but the tables do not wait for each other at the end of every day:
    `settings.extract_workers` table-days run at once, and a free worker takes the table furthest
    behind (the insert-only, larger tables first among equals): the slowest table is never kept
    waiting and the others stay in step with each other. Waiting for a day's slowest table before
    the next day, as `land_day` must, left a worker idle most of each day: at ten million orders a
    year the web events take 225 s of a year's landing, the other tables 135 s between them, and
    the year took 260 s.

    Hard deletes are diffed on each table's first day only: the later days' earlier partitions
    come from this run, moments ago, and the diff reads every key of the table on both sides.
    On a failure no further table-day starts; those already running finish (their partitions are
    whole, and a rerun replaces them) and the failure is raised.
    """
    names = list(CONTRACTS)
    days = list(days)
    landed: dict[str, list[dict]] = {name: [] for name in names}
    if not days:
        return landed
    engine = connect(settings.app_db_url)
    progress = _LandingProgress(names, days)
    try:
        require_tables(engine, names)

        def land(name: str, n: int) -> dict:
            return _land_table(settings, engine, name, days[n], run_id, check_deletes=n == 0)

        if settings.extract_workers <= 1:
            for n in range(len(days)):
                for name in names:
                    landed[name].append(land(name, n))
                    progress.landed(name, n, landed[name][-1])
            return landed
        # insert-only tables (the large ones) first, then contract order
        by_priority = sorted(names, key=lambda name: CONTRACTS[name].mode != "key_watermark")
        running: dict = {}  # future -> table; a table's next day is the count of its days landed
        failure: BaseException | None = None
        with ThreadPoolExecutor(settings.extract_workers, thread_name_prefix="land") as pool:
            while True:
                busy = set(running.values())
                ready = [name for name in by_priority if name not in busy and len(landed[name]) < len(days)]
                ready.sort(key=lambda name: len(landed[name]))  # stable: priority among equals
                while failure is None and ready and len(running) < settings.extract_workers:
                    name = ready.pop(0)
                    running[pool.submit(land, name, len(landed[name]))] = name
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    name = running.pop(future)
                    if future.exception() is not None:
                        failure = failure or future.exception()
                        continue
                    landed[name].append(future.result())
                    progress.landed(name, len(landed[name]) - 1, landed[name][-1])
        if failure is not None:
            raise failure
        return landed
    finally:
        engine.dispose()
        progress.close()


class _LandingProgress:
    """One status line on stderr: table-days landed, rows, and how far the slowest table is."""

    def __init__(self, names: list[str], days: list[dt.date]) -> None:
        self.total = len(names) * len(days)
        self.days = days
        self.done = 0
        self.rows = 0
        self.reached = dict.fromkeys(names, -1)

    def landed(self, name: str, n: int, manifest: dict) -> None:
        self.done += 1
        self.rows += manifest["row_count"]
        self.reached[name] = n
        behind = min(self.reached.values())
        at = self.days[behind] if behind >= 0 else "-"
        print(
            f"\r  land shop {self.done}/{self.total} table-days, every table through {at}, rows={self.rows:,}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        """End the status line (none was printed when nothing landed: an error stays one line)."""
        if self.done:
            print(file=sys.stderr)


def _key_window(settings: Settings, engine, table: str, ds: dt.date) -> KeyWindow:
    """The key window of an insert-only table's day (ingestion/app_db/extract.py says why).

    The previous day's ceiling is where this day starts. A rerun of a landed day keeps the ceiling
    it recorded, so it reads exactly the rows it read before (the table is insert-only) and never
    takes rows the next day has landed since.
    """
    seen = _recorded_ceiling(settings, table, ds - dt.timedelta(days=1))
    ceiling = _recorded_ceiling(settings, table, ds)
    if ceiling is None:
        ceiling = key_ceiling(engine, CONTRACTS[table])
    if seen is not None and (ceiling is None or ceiling < seen):
        ceiling = seen  # keys deleted at the top since: the window never shrinks below the last one
    return KeyWindow(seen=seen, ceiling=ceiling)


def _recorded_ceiling(settings: Settings, table: str, day: dt.date) -> int | None:
    """The key ceiling a landed day recorded (None: the day was never landed)."""
    try:
        manifest = read_manifest(settings.lake_raw_dir, SOURCE_NAME, table, day)
    except FileNotFoundError:
        return None  # first day (or a gap): the day's time window
    # lakes landed before ceilings were recorded: the highest key landed was the watermark then
    return manifest.key_ceiling if manifest.key_ceiling is not None else manifest.max_key


def load_days(
    settings: Settings, days: Iterable[dt.date], run_id: str, tables: Iterable[str] | None = None
) -> list[LoadResult]:
    """Load the landed partitions of `days` into the warehouse's raw schema, all in one transaction."""
    return load_source_days(settings, SOURCE_NAME, tables or CONTRACTS, days, run_id)

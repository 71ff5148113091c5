"""Opening DuckDB with the stack's limits: the one place a connection gets its memory limit, threads and spill cap.

Every process of the stack shares one machine with the others (Airflow tasks, Superset, the
app DB), so every DuckDB session it opens is bounded by `DUCKDB_MEMORY_LIMIT` and `DUCKDB_THREADS`
(`core.settings.Settings`), and spills to disk at most `DUCKDB_MAX_TEMP_SIZE`.

- `connect_file`: a database file (the warehouse unless another path is given: a copy, the
  serving file), read-write or read-only, spilling into `.duckdb_tmp` beside that file; with
  `wait_seconds` it waits while another process holds the file's write lock.
- `connect_memory`: an in-memory session (reading Parquet, attaching files) with the same limits.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from core.settings import Settings, spill_dir_beside

LOCK_RETRY_SECONDS = 0.5


def spill_folder(settings: Settings, path: Path | None = None) -> Path:
    """The spill folder beside the DuckDB file `path` (default: the warehouse's, `settings.duckdb_temp_dir`)."""
    return settings.duckdb_temp_dir if path is None else spill_dir_beside(path)


def connect_file(
    settings: Settings,
    path: Path | None = None,
    *,
    read_only: bool = False,
    wait_seconds: float = 0.0,
) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file `path` (default: the warehouse) with the stack's limits and a capped spill folder.

    DuckDB's spill folder may otherwise grow to 90% of the free disk: a runaway query would fill
    the disk under the lake and the warehouse. With DUCKDB_MAX_TEMP_SIZE (10GB) it fails at once
    with DuckDB's own message naming `max_temp_directory_size`.

    With `wait_seconds`, a file locked by another process is retried until then: inside Airflow the
    pool serialises writers, but a CLI run by hand (quarantine release) may meet a running task
    and should wait a little instead of failing at once.
    """
    target = settings.warehouse_path if path is None else Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    spill = spill_folder(settings, target)
    spill.mkdir(exist_ok=True)
    config = {
        "memory_limit": settings.duckdb_memory_limit,
        "threads": settings.duckdb_threads,
        "temp_directory": str(spill),
        "max_temp_directory_size": settings.duckdb_max_temp_size,
    }
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return duckdb.connect(str(target), read_only=read_only, config=config)
        except duckdb.IOException as error:
            if "lock" not in str(error).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(LOCK_RETRY_SECONDS)


def connect_memory(settings: Settings, *, spill_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB session with the stack's memory limit and threads.

    With `spill_dir` it spills there, capped like `connect_file`; without one DuckDB keeps its own
    default (sessions that only read Parquet or attach files and rarely spill).
    """
    config: dict[str, str | int] = {"memory_limit": settings.duckdb_memory_limit, "threads": settings.duckdb_threads}
    if spill_dir is not None:
        Path(spill_dir).mkdir(parents=True, exist_ok=True)
        config["temp_directory"] = str(spill_dir)
        config["max_temp_directory_size"] = settings.duckdb_max_temp_size
    return duckdb.connect(config=config)

"""Personal data is private from its first byte: files 0600, folders 0700.

The app DB, the lake's customer partitions, the warehouse and Superset's metadata hold personal
data, and DuckDB, SQLite and pyarrow create files with the process's umask (0644 on most
systems). So every process that writes the stack's data runs with umask 077: `python -m stackctl`
(and through it Airflow's and Superset's services and their task processes), every documented
command, and each Airflow task (an `on_execute_callback`, for a scheduler started some other way).
Folders made before this rule existed are tightened by `tighten_data_dirs()` at `make run`/`up`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVATE_UMASK = 0o077


def use_private_umask() -> int:
    """Files and folders this process (and its children) creates are its owner's only."""
    return os.umask(PRIVATE_UMASK)


@contextmanager
def private_umask() -> Iterator[None]:
    """Within the block, what this process creates is private; the caller's umask comes back after."""
    previous = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def tighten_data_dirs(*folders: Path | None) -> list[Path]:
    """chmod 0700 the given folders that exist and are readable by others; return those changed."""
    changed = []
    for folder in folders:
        if folder is None:
            continue
        try:
            mode = folder.stat().st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(mode) and mode & 0o077:
            folder.chmod(0o700)
            changed.append(folder)
    return changed


def readable_by_others(root: Path) -> list[Path]:
    """Files and folders under `root` (itself included) that group or others may read or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode) and mode & 0o077:
            found.append(path)
    return found

"""Rewrite a DuckDB file from its live contents, so that deleted rows leave no bytes behind.

DuckDB reuses the blocks of deleted rows without overwriting them: after an erasure no row holds
the person, yet their e-mail is still in the bytes of `warehouse.duckdb` (a `grep` finds it), and
whoever copies the file can read it back. `rewrite_duckdb_file` copies the database into a new
file (`ATTACH` + `COPY FROM DATABASE`: only what is live is written) and swaps it in with
`os.replace`, so the old file's blocks belong to no file any more.

While it runs, the source is attached read-write: DuckDB's own file lock keeps every other
writer out (the Airflow tasks also hold the one-slot `duckdb_warehouse` pool), and its WAL is
checkpointed into the file first, so no stale `.wal` is left next to the new file. A crash
before the rename leaves the old file untouched and a hidden `.<name>.rewrite` file that the
next rewrite replaces.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.duckdb_connect import connect_memory, spill_folder
from core.settings import Settings
from ingestion.lake import fsync_path


def rewrite_duckdb_file(path: Path, settings: Settings) -> int:
    """Replace `path` by a fresh copy of its contents; returns the bytes the copy no longer carries.

    The copy runs in a session with the stack's DuckDB limits (`settings`), spilling beside `path`.
    """
    before = path.stat().st_size + (_wal(path).stat().st_size if _wal(path).exists() else 0)
    target = path.with_name(f".{path.name}.rewrite")
    for leftover in (target, _wal(target)):
        leftover.unlink(missing_ok=True)
    con = connect_memory(settings, spill_dir=spill_folder(settings, path))
    try:
        # Attached under its own name: view definitions that name their catalog still bind.
        source = path.stem
        con.execute(f"attach '{path}' as \"{source}\"")
        con.execute(f'checkpoint "{source}"')  # the WAL folded into the file (and removed)
        con.execute(f"attach '{target}' as rewrite_target")
        con.execute(f'copy from database "{source}" to rewrite_target')
        con.execute("detach rewrite_target")  # checkpointed and closed: the copy is complete
        fsync_path(target)
        # Still holding the source's lock: no writer can slip in between the copy and the swap.
        os.replace(target, path)
        fsync_path(path.parent)
    finally:
        con.close()
    if _wal(path).exists():
        raise RuntimeError(f"{_wal(path)} appeared while rewriting {path}: restore from backup, do not open it")
    return before - path.stat().st_size


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")

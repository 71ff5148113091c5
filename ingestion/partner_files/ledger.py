"""The checksum ledger: which file contents were received, and what became of each (exactly once).

One row per distinct content (sha256) in `files`, one row per drop in `receipts` (so the same
bytes dropped again under another name are visible as a duplicate, not loaded twice).

Where it lives, and why there: a SQLite file in the lake, `lake/raw/partner_files/_ledger.sqlite`,
not a DuckDB table in the warehouse. The ledger belongs with what the partners sent: the warehouse
is rebuildable from the lake and may be deleted, and forgetting which files were processed would
break exactly-once. It also keeps file processing out of the warehouse's single-writer pool
(`duckdb_warehouse`): only the load step writes DuckDB, and it copies this ledger into
`ops.partner_file_ledger` / `ops.partner_file_receipts` for SQL and dashboards. SQLite locks the
file for concurrent writers (the DAG and an engineer's `release` at the same time). On a cluster,
the same two tables would move to PostgreSQL.

Status of a content:
  processing   started, not finished (a crash leaves this; the file is still in the inbox)
  landed       good rows are in the lake partition, waiting for the warehouse load
  loaded       in the warehouse
  quarantined  the whole file is held in quarantine
  superseded   a later file for the same partner and business date replaced its rows
  released     an engineer released it from quarantine: the same bytes may be processed again
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

DONE = ("landed", "loaded", "quarantined", "superseded")

_SCHEMA = """
create table if not exists files (
    sha256 text primary key,
    partner text not null,
    file_name text not null,
    bytes integer not null,
    status text not null,
    decision text,            -- loaded | loaded_partial | quarantined
    reason text,
    ds text,                  -- business date = lake partition
    encoding text,
    rows_in integer,
    rows_loaded integer,
    rows_quarantined integer,
    quarantine_id text,
    archive_path text,
    run_id text not null,
    received_at text not null,
    finished_at text,
    loaded_at text,
    loaded_run_id text,
    superseded_by text,
    inbox_cleared integer not null default 0
);
create index if not exists files_partner_ds on files (partner, ds);
create table if not exists receipts (
    received_at text not null,
    partner text not null,
    file_name text not null,
    sha256 text not null,
    run_id text not null,
    outcome text not null      -- processed | duplicate | resumed
);
"""


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    partner: str
    file_name: str
    bytes: int
    status: str
    decision: str | None
    reason: str | None
    ds: str | None
    encoding: str | None
    rows_in: int | None
    rows_loaded: int | None
    rows_quarantined: int | None
    quarantine_id: str | None
    archive_path: str | None
    run_id: str
    received_at: str
    finished_at: str | None
    loaded_at: str | None
    loaded_run_id: str | None
    superseded_by: str | None
    inbox_cleared: int


_COLUMNS = [f.name for f in fields(FileEntry)]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


class Ledger:
    """The ledger file; every method is one short transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=60)
        try:
            con.execute("pragma journal_mode=wal")
            con.executescript(_SCHEMA)  # its own transaction (executescript commits first)
        finally:
            con.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            con.execute("begin immediate")
            try:
                yield con
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise
        finally:
            con.close()

    def get(self, sha256: str) -> FileEntry | None:
        with self._tx() as con:
            row = con.execute(f"select {', '.join(_COLUMNS)} from files where sha256 = ?", [sha256]).fetchone()
        return FileEntry(*row) if row else None

    def entries(self, where: str = "1 = 1", params: tuple = ()) -> list[FileEntry]:
        with self._tx() as con:
            rows = con.execute(
                f"select {', '.join(_COLUMNS)} from files where {where} order by received_at, file_name", params
            ).fetchall()
        return [FileEntry(*r) for r in rows]

    def receipts(self) -> list[tuple]:
        with self._tx() as con:
            return con.execute("select * from receipts order by received_at").fetchall()

    def start(self, sha256: str, partner: str, file_name: str, size: int, run_id: str) -> None:
        """Claim a content for processing (again, after a crash or a release)."""
        now = _now()
        with self._tx() as con:
            existing = con.execute("select status from files where sha256 = ?", [sha256]).fetchone()
            if existing and existing[0] in DONE:
                raise RuntimeError(f"{sha256[:12]} is already {existing[0]}: it must not be processed twice")
            con.execute(
                "insert into files (sha256, partner, file_name, bytes, status, run_id, received_at) "
                "values (?, ?, ?, ?, 'processing', ?, ?) "
                "on conflict (sha256) do update set partner = excluded.partner, file_name = excluded.file_name, "
                "status = 'processing', run_id = excluded.run_id, received_at = excluded.received_at, "
                "decision = null, reason = null, "
                "finished_at = null, inbox_cleared = 0, superseded_by = null",
                [sha256, partner, file_name, size, run_id, now],
            )
            outcome = "resumed" if existing and existing[0] == "processing" else "processed"
            con.execute(
                "insert into receipts values (?, ?, ?, ?, ?, ?)", [now, partner, file_name, sha256, run_id, outcome]
            )

    def finish(
        self,
        sha256: str,
        *,
        status: str,
        decision: str,
        reason: str | None,
        ds: str | None,
        encoding: str | None,
        rows_in: int,
        rows_loaded: int,
        rows_quarantined: int,
        quarantine_id: str | None,
        archive_path: str | None,
    ) -> list[str]:
        """Record the outcome; a landed file supersedes earlier files of its partner and day.

        Returns the sha256 of the files it superseded.
        """
        if rows_in != rows_loaded + rows_quarantined:
            raise AssertionError(
                f"{sha256[:12]}: rows in {rows_in} != loaded {rows_loaded} + quarantined {rows_quarantined}"
            )
        with self._tx() as con:
            partner = con.execute("select partner from files where sha256 = ?", [sha256]).fetchone()[0]
            superseded: list[str] = []
            if status == "landed":
                superseded = [
                    r[0]
                    for r in con.execute(
                        "select sha256 from files where partner = ? and ds = ? and sha256 != ? "
                        "and decision in ('loaded', 'loaded_partial') and status != 'superseded'",
                        [partner, ds, sha256],
                    ).fetchall()
                ]
                con.executemany(
                    "update files set status = 'superseded', superseded_by = ? where sha256 = ?",
                    [(sha256, old) for old in superseded],
                )
            con.execute(
                "update files set status = ?, decision = ?, reason = ?, ds = ?, encoding = ?, rows_in = ?, "
                "rows_loaded = ?, rows_quarantined = ?, quarantine_id = ?, archive_path = ?, finished_at = ? "
                "where sha256 = ?",
                [
                    status,
                    decision,
                    reason,
                    ds,
                    encoding,
                    rows_in,
                    rows_loaded,
                    rows_quarantined,
                    quarantine_id,
                    archive_path,
                    _now(),
                    sha256,
                ],
            )
        return superseded

    def inbox_cleared(self, sha256: str) -> None:
        with self._tx() as con:
            con.execute("update files set inbox_cleared = 1 where sha256 = ?", [sha256])

    def duplicate(self, sha256: str, partner: str, file_name: str, run_id: str) -> None:
        with self._tx() as con:
            con.execute(
                "insert into receipts values (?, ?, ?, ?, ?, 'duplicate')", [_now(), partner, file_name, sha256, run_id]
            )

    def landed(self) -> list[FileEntry]:
        """Files whose rows are in the lake but not yet in the warehouse."""
        return self.entries("status = 'landed'")

    def mark_loaded(self, sha256s: list[str], run_id: str) -> None:
        with self._tx() as con:
            con.executemany(
                "update files set status = 'loaded', loaded_at = ?, loaded_run_id = ? "
                "where sha256 = ? and status = 'landed'",
                [(_now(), run_id, s) for s in sha256s],
            )

    def mark_released(self, sha256: str) -> None:
        with self._tx() as con:
            con.execute("update files set status = 'released' where sha256 = ?", [sha256])

    def later_versions(self, partner: str, ds: str, received_after: str) -> list[FileEntry]:
        """Files of the same partner and day received later whose rows are (or will be) loaded."""
        return self.entries(
            "partner = ? and ds = ? and received_at > ? and status in ('landed', 'loaded')",
            (partner, ds, received_after),
        )

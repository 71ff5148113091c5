"""Freshness SLAs: a source that stops arriving is an alert, not silence.

For every source in the lake (`lake/raw/<source>/<table>/ds=<day>/_manifest.json`) plus the
ones that must exist even if nothing ever landed (`EXPECTED_SOURCES`, `FRESHNESS_SLA_HOURS`):

- `last_landed_ds`: the newest day landed for *every* table of the source (a table quarantined
  or missing that day holds the source back; it is named in `lagging_tables`);
- `data_complete_at`: the end of that day (00:00 UTC after it), `age_hours`: how long ago that is;
- `last_loaded_ds` / `last_loaded_at`: the newest load of the source in the run ledger;
- `status`: `ok`, `late` (age over the source's SLA) or `missing` (never landed).

A daily source whose day D lands just after midnight is 0-24 h old in normal operation; the
default SLA of 30 h leaves 6 h for a late run before it alerts. Override per source with
`FRESHNESS_SLA_HOURS="shop=30,marketing_api=48"`, the default with `FRESHNESS_DEFAULT_SLA_HOURS`.

`check_freshness` writes the rows to `ops.source_freshness`, sends one alert per late or
missing source (`core.alerts.send_alert`) and raises `FreshnessBreach`.
CLI: `python -m quality freshness [--no-alert] [--no-record]`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.settings import Settings
from quality.settings import freshness_slas

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

EXPECTED_SOURCES = ("shop",)
OK, LATE, MISSING = "ok", "late", "missing"


class FreshnessBreach(RuntimeError):
    """At least one source is late or missing; the message names each one."""

    def __init__(self, breaches: Sequence[SourceFreshness]) -> None:
        super().__init__("freshness SLA breached: " + "; ".join(b.summary for b in breaches))
        self.breaches = list(breaches)


@dataclass(frozen=True)
class SourceFreshness:
    source: str
    tables: int
    last_landed_ds: dt.date | None
    data_complete_at: dt.datetime | None
    last_landed_at: dt.datetime | None
    last_loaded_ds: dt.date | None
    last_loaded_at: dt.datetime | None
    age_hours: float | None
    sla_hours: float
    status: str
    lagging_tables: str | None
    checked_at: dt.datetime

    @property
    def summary(self) -> str:
        if self.status == MISSING:
            return f"{self.source}: nothing landed yet (SLA {self.sla_hours:g} h)"
        lagging = f", lagging: {self.lagging_tables}" if self.lagging_tables else ""
        return (
            f"{self.source}: complete up to {self.last_landed_ds}, {self.age_hours:.1f} h old "
            f"(SLA {self.sla_hours:g} h, {self.status}{lagging})"
        )

    def row(self) -> tuple:
        return (
            self.source,
            self.tables,
            self.last_landed_ds,
            self.data_complete_at,
            self.last_landed_at,
            self.last_loaded_ds,
            self.last_loaded_at,
            self.age_hours,
            self.sla_hours,
            self.status,
            self.lagging_tables,
            self.checked_at,
        )


def landed_days(raw_dir: Path) -> dict[str, dict[str, tuple[dt.date, dt.datetime | None]]]:
    """source -> table -> (newest landed day, when it was landed), from the lake's manifests."""
    found: dict[str, dict[str, tuple[dt.date, dt.datetime | None]]] = {}
    if not raw_dir.exists():
        return found
    for source_dir in sorted(p for p in raw_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for table_dir in sorted(p for p in source_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            days = sorted(
                (p for p in table_dir.glob("ds=*") if (p / "_manifest.json").exists()),
                key=lambda p: p.name,
                reverse=True,
            )
            if not days:
                continue
            newest = days[0]
            try:
                day = dt.date.fromisoformat(newest.name.removeprefix("ds="))
            except ValueError:
                continue
            landed_at = json.loads((newest / "_manifest.json").read_text()).get("landed_at")
            stamp = dt.datetime.fromisoformat(landed_at).astimezone(dt.UTC).replace(tzinfo=None) if landed_at else None
            found.setdefault(source_dir.name, {})[table_dir.name] = (day, stamp)
    return found


def loaded_by_source(con: duckdb.DuckDBPyConnection | None) -> dict[str, tuple[dt.date, dt.datetime]]:
    """source -> (newest loaded day, when) from the run ledger; {} without one."""
    if con is None:
        return {}
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'ops' and table_name = 'run_ledger'"
    ).fetchall()[0][0]
    if not exists:
        return {}
    rows = con.execute(
        "select source, max(ds), max(recorded_at) from ops.run_ledger where step = 'load' group by source"
    ).fetchall()
    return {source: (day, at) for source, day, at in rows}


def _loaded_read_only(settings: Settings) -> dict[str, tuple[dt.date, dt.datetime]]:
    """The ledger's view on a read-only connection; {} when the warehouse is missing or busy."""
    import duckdb

    from core.duckdb_connect import connect_file

    if not settings.warehouse_path.exists():
        return {}
    try:
        con = connect_file(settings, read_only=True)
    except duckdb.IOException as error:
        log.warning("warehouse busy, loads not reported: %s", error)
        return {}
    try:
        return loaded_by_source(con)
    finally:
        con.close()


def compute_freshness(
    settings: Settings, now: dt.datetime | None = None, con: duckdb.DuckDBPyConnection | None = None
) -> list[SourceFreshness]:
    """The freshness of every known source at `now` (naive UTC; default: the current time)."""
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is not None:
        now = now.astimezone(dt.UTC).replace(tzinfo=None)
    slas, default = freshness_slas()
    landed = landed_days(settings.lake_raw_dir)
    loaded = loaded_by_source(con) if con is not None else _loaded_read_only(settings)
    rows = []
    for source in sorted(set(EXPECTED_SOURCES) | set(slas) | set(landed)):
        sla = slas.get(source, default)
        tables = landed.get(source, {})
        last_loaded = loaded.get(source, (None, None))
        if not tables:
            rows.append(SourceFreshness(source, 0, None, None, None, *last_loaded, None, sla, MISSING, None, now))
            continue
        newest = max(day for day, _ in tables.values())
        complete = min(day for day, _ in tables.values())
        lagging = ", ".join(f"{t} ({day})" for t, (day, _) in sorted(tables.items()) if day < newest) or None
        complete_at = dt.datetime.combine(complete + dt.timedelta(days=1), dt.time())
        age = (now - complete_at).total_seconds() / 3600
        landed_at = max((at for _, at in tables.values() if at), default=None)
        rows.append(
            SourceFreshness(
                source,
                len(tables),
                complete,
                complete_at,
                landed_at,
                *last_loaded,
                round(age, 2),
                sla,
                LATE if age > sla else OK,
                lagging,
                now,
            )
        )
    return rows


def write_table(con: duckdb.DuckDBPyConnection, rows: Sequence[SourceFreshness]) -> None:
    """Replace `ops.source_freshness` with the current rows (it holds the latest check only)."""
    from quality.health import ensure_ops_tables

    ensure_ops_tables(con)
    con.execute("begin transaction")
    try:
        con.execute("delete from ops.source_freshness")
        if rows:
            con.executemany(
                f"insert into ops.source_freshness values ({', '.join(['?'] * 12)})", [r.row() for r in rows]
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def check_freshness(
    settings: Settings,
    *,
    now: dt.datetime | None = None,
    alert: bool = True,
    record: bool = True,
    wait_seconds: float = 0.0,
) -> list[SourceFreshness]:
    """Check every source against its SLA; record, alert and raise `FreshnessBreach` on a breach.

    With record=True the warehouse is opened read-write (hold the `duckdb_warehouse` pool);
    ops.quarantine is rebuilt in the same session so the dashboard's view of held batches is
    current too. With alert=False nothing is sent (the DAG lets its failure callback alert once).
    """
    from core.duckdb_connect import connect_file
    from quality import quarantine

    con = None
    if record:
        con = connect_file(settings, wait_seconds=wait_seconds)
    try:
        rows = compute_freshness(settings, now, con)
        if con is not None:
            write_table(con, rows)
            quarantine.write_table(con, settings)
    finally:
        if con is not None:
            con.close()
    breaches = [r for r in rows if r.status != OK]
    for row in rows:
        log.info("freshness %s", row.summary)
    if breaches:
        if alert:
            from core.alerts import send_alert

            for b in breaches:
                send_alert(
                    f"freshness: {b.summary}",
                    check="freshness",
                    source=b.source,
                    status=b.status,
                    last_landed_ds=b.last_landed_ds,
                    age_hours=b.age_hours,
                    sla_hours=b.sla_hours,
                )
        raise FreshnessBreach(breaches)
    return rows

"""Source freshness: `dbt source freshness` decides, this module records it, alerts and fails.

The SLAs live only in the dbt source YAMLs (`dbt_project/models/staging/<source>/_<source>__sources.yml`):
each source's `loaded_at_field` (`_loaded_at`, when the warehouse loader wrote the row) and its
`freshness:` `warn_after` / `error_after`. An analyst's `dbt source freshness` and this check give
the same verdict. `check_freshness`:

1. runs `dbt source freshness` through `core.dbt_cli.run_dbt` on the tables the warehouse's `raw`
   schema holds plus every table of the sources that must always exist (`EXPECTED_SOURCES`): a
   partner who never delivered is not late, the shop's app DB is. dbt writes into its own target
   folder (`<STACK_VAR_DIR>/dbt_freshness`), so the manifest Cosmos renders `elt_marts` from is
   never rewritten behind the scheduler's back. Source tables are selected by name, so a source
   table's `name` must be its table in `raw` (no `identifier` override);
2. reads dbt's `sources.json` (and the manifest, for the sources' tables): per table `ok` (dbt's
   pass), `warn`, `late` (dbt's error), `missing` (an expected table the warehouse lacks) or `error`
   (dbt could not check it, e.g. a `loaded_at_field` that is not a column);
3. writes one row per source to `ops.source_freshness` (the Data health dashboard): the worst
   table decides the status, `age_hours` is the stalest table's, `sla_hours` its `error_after`;
   the other tables that are not `ok` are named in `lagging_tables`;
4. sends one alert per source that is late, missing or not checkable (`core.alerts.send_alert`)
   and raises `FreshnessBreach`. A `warn` is recorded and logged, never alerted.

CLI: `python -m quality freshness [--no-alert] [--no-record]` (`make freshness`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.settings import Settings
from quality.settings import refuse_retired_freshness_settings

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

# Sources whose tables must exist: a missing table is a breach, not "not delivered yet".
EXPECTED_SOURCES = ("shop",)
OK, WARN, LATE, MISSING, ERROR = "ok", "warn", "late", "missing", "error"
BREACHES = (LATE, MISSING, ERROR)
_RANK = {OK: 0, WARN: 1, LATE: 2, MISSING: 3, ERROR: 4}
_DBT_STATUS = {"pass": OK, "warn": WARN, "error": LATE, "runtime error": ERROR}
_PERIOD_HOURS = {"minute": 1 / 60, "hour": 1.0, "day": 24.0}


class FreshnessBreach(RuntimeError):
    """At least one source is late, missing or not checkable; the message names each one."""

    def __init__(self, breaches: Sequence[SourceFreshness]) -> None:
        super().__init__("freshness SLA breached: " + "; ".join(b.summary for b in breaches))
        self.breaches = list(breaches)


@dataclass(frozen=True)
class TableFreshness:
    """dbt's verdict on one source table (times naive UTC)."""

    source: str
    table: str
    status: str
    max_loaded_at: dt.datetime | None
    age_hours: float | None
    warn_hours: float | None
    error_hours: float | None
    checked_at: dt.datetime
    error: str | None = None

    @property
    def note(self) -> str:
        if self.status == MISSING:
            return f"{self.table} (missing)"
        if self.status == ERROR:
            return f"{self.table} (error: {self.error})"
        if self.max_loaded_at is None:
            return f"{self.table} ({self.status}, no rows)"
        return f"{self.table} ({self.status}, {self.age_hours:.1f} h)"


@dataclass(frozen=True)
class SourceFreshness:
    """One row of `ops.source_freshness`: a source, judged by its worst table."""

    source: str
    tables: int  # tables dbt found rows in
    last_landed_ds: dt.date | None  # the newest day (`_ds`) every checked table holds
    data_complete_at: dt.datetime | None  # the stalest table's newest `_loaded_at`: age counts from here
    last_landed_at: dt.datetime | None  # not measured any more (landing times: ops.run_ledger)
    last_loaded_ds: dt.date | None  # the newest day any table holds
    last_loaded_at: dt.datetime | None  # the newest `_loaded_at` of any table
    age_hours: float | None
    sla_hours: float  # error_after: older than this alerts
    status: str
    lagging_tables: str | None
    checked_at: dt.datetime
    warn_hours: float | None = None  # warn_after (not a column: the status says `warn`)

    @property
    def summary(self) -> str:
        lagging = f"; {self.lagging_tables}" if self.lagging_tables else ""
        if self.data_complete_at is None:
            return f"{self.source}: nothing loaded (error after {self.sla_hours:g} h: {self.status}{lagging})"
        warn = f"warn after {self.warn_hours:g} h, " if self.warn_hours is not None else ""
        return (
            f"{self.source}: loaded {self.age_hours:.1f} h ago, complete up to {self.last_landed_ds} "
            f"({warn}error after {self.sla_hours:g} h: {self.status}{lagging})"
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


def freshness_target_dir(settings: Settings) -> Path:
    """dbt's target folder for the check (sources.json, its manifest, its partial-parse cache)."""
    return settings.var_dir / "dbt_freshness"


def raw_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The tables in the warehouse's `raw` schema."""
    rows = con.execute(
        "select table_name from information_schema.tables "
        "where table_schema = 'raw' and table_catalog = current_database()"
    ).fetchall()
    return {name for (name,) in rows}


def run_source_freshness(settings: Settings, present: Iterable[str]) -> tuple[dict, dict]:
    """`dbt source freshness` on the expected sources and the `present` raw tables: (sources.json, manifest.json)."""
    from core.dbt_cli import run_dbt

    target = freshness_target_dir(settings)
    sources_json = target / "sources.json"
    sources_json.unlink(missing_ok=True)  # a verdict left from an earlier run must never be read as this one's
    select = [f"source:{name}" for name in EXPECTED_SOURCES] + [f"source:*.{table}" for table in sorted(present)]
    try:
        run_dbt(settings, "source", "freshness", "--target-path", str(target), "--select", *select)
    except RuntimeError:
        # dbt exits non-zero when a source is past error_after: its verdict is in sources.json all the
        # same. Without the file dbt itself failed (a broken project, a locked warehouse): that is raised.
        if not sources_json.exists():
            raise
    return json.loads(sources_json.read_text()), json.loads((target / "manifest.json").read_text())


def _hours(criterion: dict | None) -> float | None:
    if not criterion or criterion.get("count") is None:
        return None
    return float(criterion["count"]) * _PERIOD_HOURS[criterion.get("period") or "hour"]


def _utc(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    stamp = dt.datetime.fromisoformat(value)
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    return None if stamp.year == 1 else stamp  # dbt's stand-in for max() of an empty table


def table_freshness(
    sources_json: dict, manifest: dict, present: Iterable[str], now: dt.datetime | None = None
) -> list[TableFreshness]:
    """Every source table's verdict from dbt's artifacts; tables of other sources not in `present` are skipped."""
    present = set(present)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    results = {r["unique_id"]: r for r in sources_json.get("results", [])}
    tables = []
    for unique_id, node in sorted(manifest.get("sources", {}).items()):
        criteria = (results.get(unique_id) or {}).get("criteria") or node.get("freshness") or {}
        warn, error = _hours(criteria.get("warn_after")), _hours(criteria.get("error_after"))
        if warn is None and error is None:
            continue  # no SLA (freshness: null): dbt does not check it either
        source, name = node["source_name"], node["name"]
        exists = node.get("identifier", name) in present
        result = results.get(unique_id)
        if not exists:
            if source in EXPECTED_SOURCES:
                tables.append(TableFreshness(source, name, MISSING, None, None, warn, error, now))
            continue
        if result is None:
            continue  # present but not selected: a source table whose name is not its table in raw
        status = _DBT_STATUS.get(result.get("status", ""), ERROR)
        checked = _utc(result.get("snapshotted_at")) or now
        if status == ERROR:
            message = str(result.get("message") or result.get("error") or result.get("status"))
            tables.append(
                TableFreshness(source, name, ERROR, None, None, warn, error, checked, message.strip().splitlines()[0])
            )
            continue
        loaded = _utc(result.get("max_loaded_at"))
        age = round(result["max_loaded_at_time_ago_in_s"] / 3600, 2) if loaded else None
        tables.append(TableFreshness(source, name, status, loaded, age, warn, error, checked))
    return tables


def newest_days(con: duckdb.DuckDBPyConnection, tables: Iterable[str]) -> dict[str, dt.date | None]:
    """table -> the newest extract/business day (`_ds`) it holds."""
    days = {}
    for table in tables:
        (day,) = con.execute(f'select max(_ds) from raw."{table}"').fetchone()
        days[table] = day
    return days


def by_source(tables: Sequence[TableFreshness], days: dict[str, dt.date | None]) -> list[SourceFreshness]:
    """One row per source: its worst table decides, its stalest table gives the age."""
    rows = []
    for source in sorted({t.source for t in tables}):
        mine = [t for t in tables if t.source == source]
        worst = max(mine, key=lambda t: (_RANK[t.status], t.age_hours or 0.0))
        loaded = [t for t in mine if t.max_loaded_at is not None]
        stalest = min(loaded, key=lambda t: t.max_loaded_at) if loaded else None
        held = [days[t.table] for t in loaded if days.get(t.table)]
        # Name the tables holding the source back; when all share one state, the source as a whole is.
        # A dbt error's message is always named.
        off = [t for t in mine if t.status != OK]
        spread = len({t.status for t in mine}) > 1 or worst.status == ERROR
        lagging = ", ".join(t.note for t in off) if off and spread else None
        rows.append(
            SourceFreshness(
                source=source,
                tables=len(loaded),
                last_landed_ds=min(held) if held else None,
                data_complete_at=stalest.max_loaded_at if stalest else None,
                last_landed_at=None,
                last_loaded_ds=max(held) if held else None,
                last_loaded_at=max(t.max_loaded_at for t in loaded) if loaded else None,
                age_hours=stalest.age_hours if stalest else None,
                sla_hours=worst.error_hours if worst.error_hours is not None else worst.warn_hours,
                status=worst.status,
                lagging_tables=lagging,
                checked_at=max(t.checked_at for t in mine),
                warn_hours=worst.warn_hours,
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
    alert: bool = True,
    record: bool = True,
    wait_seconds: float = 0.0,
) -> list[SourceFreshness]:
    """Run dbt's freshness check; record, alert and raise `FreshnessBreach` on an error-level breach.

    With record=True the warehouse is opened read-write (hold the `duckdb_warehouse` pool; dbt
    opens it too): `ops.source_freshness` is replaced and ops.quarantine rebuilt in the same
    session, so the dashboard's view of held batches is current too. With alert=False nothing is
    sent (the DAG lets its failure callback alert once).
    """
    from core.duckdb_connect import connect_file
    from quality import quarantine

    refuse_retired_freshness_settings()

    def open_warehouse():
        if record:
            return connect_file(settings, wait_seconds=wait_seconds)
        if not settings.warehouse_path.exists():
            return None
        return connect_file(settings, read_only=True, wait_seconds=wait_seconds)

    # Closed again before dbt runs: DuckDB lets one process at a time write the file.
    con = open_warehouse()
    try:
        present = raw_tables(con) if con is not None else set()
    finally:
        if con is not None:
            con.close()
    sources_json, manifest = run_source_freshness(settings, present)
    tables = table_freshness(sources_json, manifest, present)
    con = open_warehouse()
    try:
        days = newest_days(con, [t.table for t in tables if t.max_loaded_at is not None]) if con is not None else {}
        rows = by_source(tables, days)
        if record:
            write_table(con, rows)
            quarantine.write_table(con, settings)
    finally:
        if con is not None:
            con.close()
    for row in rows:
        (log.warning if row.status != OK else log.info)("freshness %s", row.summary)
    breaches = [r for r in rows if r.status in BREACHES]
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
                    lagging_tables=b.lagging_tables,
                )
        raise FreshnessBreach(breaches)
    return rows

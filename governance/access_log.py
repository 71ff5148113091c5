"""Access logging in one place: who opened what, ran which query, triggered which DAG, asked for which request.

Three sources, one warehouse table `ops.access_log` (published to serving for the Governance
dashboard, which only admins and analysts see):

- **Superset** metadata DB (`SUPERSET_METADATA_URI`, default `var/superset/superset.db`): the
  `logs` table (dashboards opened, chart data, datasets, exports, security changes) with user,
  dashboard and chart names resolved, and the `query` table (SQL Lab). Query text is kept with
  every literal replaced (`governance.sql_redaction`): the shape of a query is what an audit
  needs, and its literals may be personal data (`where email = '...'`).
- **Airflow**'s audit log (who triggered, paused, cleared which DAG), through its REST API
  (`governance.airflow_audit`; a task may not open Airflow's metadata DB). Its `extra` field is
  not copied: a trigger's conf can carry a data subject's e-mail.
- **Governance** audit log (`governance.audit`): data subject requests and their outcome.

`collect` is idempotent: rows are keyed by `<source>:<id>`, new ones are added, rows older than
`ACCESS_LOG_RETENTION_DAYS` (default 365) are deleted. The sources keep their own copies under
their own retention (`airflow db clean`, Superset's log pruning); the governance audit log is
kept whole (it proves what was done with data subject requests). Each collection also verifies
that log and anchors its length and head hash in `ops.audit_anchors` (see `governance.audit`);
a log that fails verification is still copied, then `collect` raises `AuditLogBroken`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import astuple, dataclass
from pathlib import Path

from core.settings import Settings
from governance import airflow_audit, audit
from governance.settings import access_log_retention_days, superset_metadata_url
from governance.sql_redaction import redact_sql
from serving.schema import ACCESS_LOG_DDL as DDL

# The governance audit log's length and head at each collection (`governance.audit.verify`); stays
# in the warehouse (not published: nobody reads it on a dashboard).
ANCHORS_DDL = """
create table if not exists ops.audit_anchors (
    recorded_at timestamp,
    entries bigint,
    head varchar
);
"""
COLUMNS = (
    "event_id",
    "source",
    "occurred_at",
    "actor",
    "action",
    "object_type",
    "object_name",
    "tables_read",
    "detail",
    "outcome",
)
# Superset logs a lot of UI chatter (menus, "me", thumbnails); these actions are accesses.
SUPERSET_ACCESS = re.compile(
    r"dashboard|chart|dataset|sql|explore|export|import|database|query|role|user|security|permalink|share",
    re.IGNORECASE,
)
# Sub-steps of one request (timings, serialisation), listings and SQL Lab calls (the `query` table
# has those, once each).
SUPERSET_NOISE = re.compile(
    r"post_processing|json_dumps|^execute_sql$|get_list$|_info$|related|favorite|thumbnail|^SqlLab", re.IGNORECASE
)
_TABLE_REF = re.compile(r"\b(marts|ops|ml|meta|raw|staging|intermediate)\.\"?(\w+)\"?", re.IGNORECASE)


@dataclass(frozen=True)
class AccessEvent:
    event_id: str
    source: str
    occurred_at: dt.datetime
    actor: str | None
    action: str
    object_type: str | None
    object_name: str | None
    tables_read: str | None
    detail: str | None
    outcome: str | None


def tables_in_sql(sql: str | None) -> str | None:
    found = sorted({f"{schema.lower()}.{table.lower()}" for schema, table in _TABLE_REF.findall(sql or "")})
    return ",".join(found) or None


def _engine(url: str):
    """An engine on a metadata DB, or None when it is a SQLite file that does not exist (service never set up)."""
    import sqlalchemy as sa

    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
        if not path.exists():
            return None
    return sa.create_engine(url)


def _utc(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _has_tables(engine, *names: str) -> bool:
    import sqlalchemy as sa

    return set(names) <= set(sa.inspect(engine).get_table_names())


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _lookup(con, sql: str, table: str) -> dict[int, tuple]:
    import sqlalchemy as sa

    if not sa.inspect(con).has_table(table):
        return {}
    return {row[0]: tuple(row) for row in con.execute(sa.text(sql)).fetchall()}


def superset_events(url: str, since: dt.datetime) -> list[AccessEvent]:
    """Dashboard, chart, dataset and security actions from Superset's `logs`, and SQL Lab queries."""
    import sqlalchemy as sa

    engine = _engine(url)
    if engine is None:
        return []
    events: list[AccessEvent] = []
    try:
        if not _has_tables(engine, "logs", "ab_user"):
            return []
        with engine.connect() as con:
            charts = _lookup(con, "select id, slice_name, datasource_id, datasource_type from slices", "slices")
            boards = _lookup(con, "select id, dashboard_title from dashboards", "dashboards")
            tables = _lookup(con, "select id, schema, table_name from tables", "tables")
            rows = con.execute(
                sa.text(
                    "select l.id, l.dttm, u.username, l.action, l.json, l.dashboard_id, l.slice_id "
                    "from logs l left join ab_user u on u.id = l.user_id where l.dttm >= :since order by l.id"
                ),
                {"since": since},
            ).fetchall()
            for log_id, when, user, action, payload, dashboard_id, slice_id in rows:
                name = action or ""
                try:
                    details = json.loads(payload) if payload else {}
                except ValueError:
                    details = {}
                details = details if isinstance(details, dict) else {}
                if name == "log":  # frontend events carry their own name
                    name = str(details.get("event_name") or details.get("source") or "log")
                if SUPERSET_NOISE.search(name) or not SUPERSET_ACCESS.search(name):
                    continue
                # Chart data requests name their chart, dashboard and dataset in the payload only.
                form = details.get("form_data") if isinstance(details.get("form_data"), dict) else {}
                slice_id = slice_id or form.get("slice_id") or details.get("slice_id")
                dashboard_id = dashboard_id or form.get("dashboardId") or details.get("dashboard_id")
                chart = charts.get(_int(slice_id))
                datasource = details.get("datasource") if isinstance(details.get("datasource"), dict) else {}
                table_id = chart[2] if chart and chart[3] == "table" else datasource.get("id")
                table = tables.get(_int(table_id))
                board = boards.get(_int(dashboard_id))
                kind = "chart" if chart else "dashboard" if board else name.split("RestApi")[0].lower() or None
                events.append(
                    AccessEvent(
                        f"superset:log:{log_id}",
                        "superset",
                        _utc(when),
                        user,
                        name,
                        kind,
                        chart[1] if chart else board[1] if board else None,
                        f"{table[1]}.{table[2]}" if table else None,
                        f"on dashboard {board[1]}" if chart and board else None,
                        None,
                    )
                )
            if _has_tables(engine, "query"):
                queries = con.execute(
                    sa.text(
                        "select q.id, q.changed_on, u.username, q.status, q.schema, q.sql, q.rows "
                        "from query q left join ab_user u on u.id = q.user_id "
                        "where q.changed_on >= :since order by q.id"
                    ),
                    {"since": since},
                ).fetchall()
                for query_id, when, user, status, schema, sql, _rows in queries:
                    events.append(
                        AccessEvent(
                            f"superset:query:{query_id}",
                            "superset",
                            _utc(when),
                            user,
                            "sql_lab_query",
                            "sql_lab",
                            schema,
                            tables_in_sql(sql),
                            redact_sql(sql),
                            status,
                        )
                    )
    finally:
        engine.dispose()
    return events


def airflow_events(settings: Settings, since: dt.datetime) -> list[AccessEvent]:
    """Airflow's audit log: who did what to which DAG; none when this stack has no Airflow login."""
    if not airflow_audit.configured():
        return []
    return [
        AccessEvent(
            f"airflow:{row['event_log_id']}",
            "airflow",
            _utc(row["when"]),
            row["owner"],
            row["event"],
            "dag" if row["dag_id"] else None,
            row["dag_id"],
            None,
            ", ".join(
                part
                for part in (
                    f"task {row['task_id']}" if row["task_id"] else "",
                    f"run {row['run_id']}" if row["run_id"] else "",
                )
                if part
            )
            or None,
            None,
        )
        for row in airflow_audit.user_events(settings, since)
    ]


def governance_events(settings: Settings, since: dt.datetime) -> list[AccessEvent]:
    out = []
    for number, entry in enumerate(audit.entries(settings), 1):
        if entry.occurred_at < since:
            continue
        out.append(
            AccessEvent(
                f"governance:{number}",
                "governance",
                entry.occurred_at,
                entry.actor,
                entry.action,
                "data_subject_request" if entry.action.startswith("dsr_") else "governance",
                entry.request_id,
                None,
                json.dumps(entry.details, sort_keys=True, default=str)[:2000],
                entry.outcome,
            )
        )
    return out


def collect(settings: Settings, now: dt.datetime | None = None) -> dict[str, int]:
    """Add new events of every source to `ops.access_log`, drop those past retention; rows per source."""
    from core.duckdb_connect import connect_file

    now = _utc(now) or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    since = now - dt.timedelta(days=access_log_retention_days())
    events: list[AccessEvent] = [
        *superset_events(superset_metadata_url(settings), since),
        *airflow_events(settings, _resume_from(settings, "airflow", since)),
        *governance_events(settings, since),
    ]
    con = connect_file(settings)
    try:
        con.execute("begin transaction")
        con.execute(DDL)
        con.execute(ANCHORS_DDL)
        con.execute("delete from ops.access_log where occurred_at < ?", [since])
        con.execute(f"create temp table new_events ({', '.join(f'{c} varchar' for c in COLUMNS)})")
        if events:
            con.executemany(
                f"insert into new_events values ({', '.join('?' for _ in COLUMNS)})",
                [tuple(None if v is None else str(v) for v in astuple(e)) for e in events],
            )
        typed = ", ".join("occurred_at::timestamp" if c == "occurred_at" else c for c in COLUMNS)
        con.execute(
            f"insert into ops.access_log select {typed}, ?::timestamp from new_events "
            "where event_id not in (select event_id from ops.access_log) and occurred_at::timestamp >= ?",
            [now, since],
        )
        con.execute("drop table new_events")
        counts = dict(con.execute("select source, count(*) from ops.access_log group by 1").fetchall())
        check = _anchor_audit_log(con, settings, now)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.close()
    if check is not None and not check.ok:
        # Collected anyway (the other sources are fine); the task fails so someone looks.
        raise AuditLogBroken("the governance audit log fails verification: " + "; ".join(check.problems))
    return {source: counts.get(source, 0) for source in ("superset", "airflow", "governance")}


def _resume_from(settings: Settings, source: str, since: dt.datetime) -> dt.datetime:
    """Where to start reading `source` again: a day before its newest collected event (ids make
    the overlap harmless), so a daily run pages through one day of Airflow's events, not a year."""
    import duckdb

    if not settings.warehouse_path.exists():
        return since
    try:
        with duckdb.connect() as con:
            if not _attach_with_ops_table(con, settings, "access_log"):
                return since
            newest = con.execute(
                "select max(occurred_at) from wh.ops.access_log where source = ?", [source]
            ).fetchone()[0]
    except duckdb.IOException:  # held by a writer this instant: read the whole retention window
        return since
    return max(since, newest - dt.timedelta(days=1)) if newest else since


def _attach_with_ops_table(con, settings: Settings, table: str) -> bool:
    """Attach the warehouse read-only as `wh`; True when it has `ops.<table>` (not before its first collection)."""
    con.execute(f"attach '{settings.warehouse_path}' as wh (read_only)")
    return bool(
        con.execute(
            "select count(*) from duckdb_tables() where database_name = 'wh' and schema_name = 'ops' "
            "and table_name = ?",
            [table],
        ).fetchone()[0]
    )


class AuditLogBroken(RuntimeError):
    """The governance audit log was edited, truncated or deleted since it was written."""


def _anchor_audit_log(con, settings: Settings, now: dt.datetime) -> audit.Verification | None:
    """Verify the audit log against every anchor so far; when intact, anchor its current head too."""
    if not audit.audit_log_path(settings).exists() and not audit.anchor_path(settings).exists():
        anchored = con.execute("select count(*) from ops.audit_anchors").fetchone()[0]
        if not anchored:
            return None  # no governance action yet
    check = audit.verify(settings, anchors=_anchors(con))
    if check.ok and check.head:
        con.execute(
            "insert into ops.audit_anchors select ?, ?, ? where not exists "
            "(select 1 from ops.audit_anchors where entries = ? and head = ?)",
            [now, check.entries, check.head, check.entries, check.head],
        )
    return check


def _anchors(con) -> list[tuple[int, str]]:
    return [(int(n), head) for n, head in con.execute("select entries, head from ops.audit_anchors").fetchall()]


def warehouse_anchors(settings: Settings) -> list[tuple[int, str]]:
    """The audit log anchors recorded in the warehouse (read-only; none before the first collection)."""
    import duckdb

    if not settings.warehouse_path.exists():
        return []
    with duckdb.connect() as con:
        if not _attach_with_ops_table(con, settings, "audit_anchors"):
            return []
        con.execute("use wh")
        return _anchors(con)


def by_table_last_read(settings: Settings) -> dict[str, dt.datetime]:
    """schema.table -> the last time anything read it, from `ops.access_log` (for the stale-asset report)."""
    import duckdb

    if not settings.warehouse_path.exists():
        return {}
    with duckdb.connect() as con:
        con.execute(f"attach '{settings.warehouse_path}' as wh (read_only)")
        present = con.execute(
            "select count(*) from duckdb_tables() where database_name = 'wh' and schema_name = 'ops' "
            "and table_name = 'access_log'"
        ).fetchall()[0][0]
        if not present:
            return {}
        rows = con.execute(
            "select trim(t), max(occurred_at) from wh.ops.access_log, "
            "unnest(string_split(tables_read, ',')) as u(t) where tables_read is not null group by 1"
        ).fetchall()
    return dict(rows)

"""What gate 2 validates: each mart plus the columns its checks need, computed inside DuckDB.

One in-memory DuckDB session attaches the warehouse (`wh`) and the currently published serving
file (`pub`), both read-only, and for every daily mart runs one query that adds:

- `previous_<date>` / `day_before_<date>`: the no-gaps check;
- `unloaded_<date>`: the day, when the run ledger (`ops.run_ledger`, written inside each load's
  transaction) has no load of every source table the mart is built from - a day never landed
  shows up in the mart as a zero day, which only this check tells from a quiet one;
- `<kpi>_anomaly` / `<kpi>_unusual`: why a new or restated day is outside the blocking /
  warning bounds of its trailing window (median +/- k scaled MADs, see `specs.AnomalyBounds`).
  The window takes the *published* value of each day where there is one, so bounds come from
  the audited history and a bad build cannot widen its own bounds. Days identical to the
  published ones were judged when they were published and are not judged again.

The window functions, medians and MADs run in DuckDB; GX then validates the small per-day
frame in pandas (see quality/README.md for why not GX's SQL data source). The same session
computes the fingerprint of the marts as audited (`quality.fingerprint`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from quality.specs import MARTS, AnomalyBounds, MartSpec, anomaly_column, unusual_column

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from core.settings import Settings


def _exists(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_catalog = ? and table_schema = ? "
            "and table_name = ?",
            [catalog, schema, table],
        ).fetchall()[0][0]
    )


def _loaded_days_sql(con: duckdb.DuckDBPyConnection, spec: MartSpec) -> str:
    """Days on which every table the mart is built from was loaded."""
    if _exists(con, "wh", "ops", "run_ledger"):
        wanted = ", ".join(f"'{source}.{table}'" for source, table in spec.loaded_from)
        return (
            "select ds as day from wh.ops.run_ledger where step = 'load' "
            f"and source || '.' || table_name in ({wanted}) "
            f"group by ds having count(distinct source || '.' || table_name) = {len(spec.loaded_from)}"
        )
    # A warehouse older than the run ledger: a day counts as loaded if any of the tables has rows.
    parts = [
        f'select distinct _ds as day from wh.raw."{table}"'
        for _, table in spec.loaded_from
        if _exists(con, "wh", "raw", table)
    ]
    return " union ".join(parts) if parts else "select null::date as day where false"


def _anomaly_sql(spec: MartSpec, index: int, bounds: AnomalyBounds, published: bool) -> str:
    """CTEs ending in verdict_<index>(day, anomaly, unusual) for one KPI column."""
    d, c, i = spec.date_column, bounds.column, index
    accepted = ", ".join(f"date '{day}'" for day in spec.accepted_anomalies)
    not_accepted = f'm."{d}" not in ({accepted})' if accepted else "true"
    published_cte = (
        f'select "{d}" as day, "{c}"::double as value from pub.marts."{spec.table}"'
        if published
        else "select null::date as day, null::double as value where false"
    )

    def verdict(mads: float, share: float) -> str:
        width = f"greatest({mads} * scaled_mad, {share} * abs(median_value))"
        return (
            f"case when history_days >= {bounds.min_history_days} and abs(value - median_value) > {width} "
            f"then printf('%s: {c} %.2f outside [%.2f, %.2f] (median %.2f of %d days before)', "
            f"day, value, median_value - {width}, median_value + {width}, median_value, history_days) end"
        )

    return f"""
published_{i} as ({published_cte}),
reference_{i} as (
    select coalesce(p.day, m."{d}") as day, coalesce(p.value, m."{c}"::double) as value
    from mart m full outer join published_{i} p on p.day = m."{d}"
),
candidates_{i} as (
    select m."{d}" as day, m."{c}"::double as value
    from mart m left join published_{i} p on p.day = m."{d}"
    where (p.day is null or p.value is distinct from m."{c}"::double)
      and m."{d}" is not null and {not_accepted}
),
bounds_{i} as (
    select c.day, c.value, median(r.value) as median_value, coalesce(mad(r.value), 0) * 1.4826 as scaled_mad,
           count(r.value) as history_days
    from candidates_{i} c
    join reference_{i} r on r.day >= c.day - {bounds.window_days} and r.day < c.day and r.value is not null
    group by c.day, c.value
),
verdict_{i} as (
    select day, {verdict(bounds.block_mads, bounds.block_share)} as anomaly,
           {verdict(bounds.warn_mads, bounds.warn_share)} as unusual
    from bounds_{i}
)"""


def mart_query(con: duckdb.DuckDBPyConnection, spec: MartSpec, published: bool) -> str:
    """The gate 2 query of one daily mart (see the module docstring for the derived columns)."""
    d = spec.date_column
    ctes = [f'mart as (select * from wh.marts."{spec.table}")', f"loaded as ({_loaded_days_sql(con, spec)})"]
    ctes += [_anomaly_sql(spec, i, bounds, published).strip() for i, bounds in enumerate(spec.anomalies)]
    verdicts = "".join(
        f', v{i}.anomaly as "{anomaly_column(b)}", v{i}.unusual as "{unusual_column(b)}"'
        for i, b in enumerate(spec.anomalies)
    )
    joins = "".join(f' left join verdict_{i} v{i} on v{i}.day = mart."{d}"' for i in range(len(spec.anomalies)))
    return (
        "with " + ",\n".join(ctes) + "\n"
        f'select mart.*, lag(mart."{d}") over (order by mart."{d}") as "previous_{d}", '
        f'mart."{d}" - 1 as "day_before_{d}", '
        f'case when mart."{d}" not in (select day from loaded where day is not null) '
        f'then strftime(mart."{d}", \'%Y-%m-%d\') end as "unloaded_{d}"'
        f'{verdicts} from mart{joins} order by mart."{d}"'
    )


def latest_loaded_day(con: duckdb.DuckDBPyConnection, spec: MartSpec):
    """The newest day on which every table the mart is built from was loaded (None: none)."""
    return con.execute(f"select max(day) from ({_loaded_days_sql(con, spec)})").fetchall()[0][0]


def read_mart_frames(
    warehouse_path: Path,
    tables: Sequence[str],
    *,
    settings: Settings,
    published_path: Path | None = None,
    unserved: frozenset[str] = frozenset(),
) -> tuple[dict[str, pd.DataFrame], dict[str, object], str]:
    """From one read-only snapshot: each mart's gate 2 frame, the newest day loaded for it (the
    day it must reach), and the fingerprint of the marts but the `unserved` ones."""
    from core.duckdb_connect import connect_memory
    from quality.fingerprint import schema_fingerprint
    from quality.loaders import to_frame

    if not warehouse_path.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse_path}")
    con = connect_memory(settings)
    try:
        con.execute(f"attach '{warehouse_path}' as wh (read_only)")
        if published_path is not None and Path(published_path).exists():
            con.execute(f"attach '{published_path}' as pub (read_only)")
        frames, latest = {}, {}
        for name in tables:
            spec = MARTS[name]
            if not _exists(con, "wh", "marts", spec.table):
                raise FileNotFoundError(f"{warehouse_path} has no table marts.{spec.table}: run dbt build first")
            published = published_path is not None and _exists(con, "pub", "marts", spec.table)
            frames[name] = to_frame(con.sql(mart_query(con, spec, published)).to_arrow_table())
            latest[name] = latest_loaded_day(con, spec)
        fingerprint = schema_fingerprint(con, "wh", "marts", unserved)
    finally:
        con.close()
    return frames, latest, fingerprint

"""Generate (or extend) the shop's operational database for a date range.

Generation is resumable and idempotent: a small state table remembers the seed, the scale, the
options and the last simulated day, so asking again for days already written does nothing, and
asking for later days continues the same shop. Days must be generated in order.
"""

from __future__ import annotations

import datetime as dt
import sys
import time

from sqlalchemy import Column, Connection, Date, Float, Integer, MetaData, String, Table, inspect, select

from ingestion.app_db.connection import AppDbError, connect
from ingestion.app_db.schema import metadata
from ingestion.simulator.generate import DEFAULT_GROWTH, DayWriter

_state_md = MetaData()
simulator_state = Table(
    "_simulator_state",
    _state_md,
    Column("id", Integer, primary_key=True),
    Column("seed", Integer, nullable=False),
    Column("scale", Float, nullable=False),
    Column("start_date", Date, nullable=False),
    Column("last_day", Date, nullable=False),
    Column("shop", String(40), nullable=False),
)
# Knobs beyond seed and scale, one row each; a missing row means the default (older databases).
simulator_options = Table(
    "_simulator_options",
    _state_md,
    Column("name", String(40), primary_key=True),
    Column("value", Float, nullable=False),
)
# drift_from: the day ordinal from which drift is injected (0 = never); growth: orders growth per day.
DEFAULT_OPTIONS = {"browse_sample": 1.0, "drift_from": 0.0, "growth": DEFAULT_GROWTH}


class SimulatorError(RuntimeError):
    """A request the simulator cannot honour without changing history."""


def simulate(
    url: str,
    start: dt.date,
    end: dt.date,
    *,
    seed: int = 42,
    scale: float = 1.0,
    browse_sample: float = 1.0,
    drift_from: dt.date | None = None,
    growth: float = DEFAULT_GROWTH,
    progress: bool = True,
) -> dict[str, int]:
    """Write days [start, end] into the app DB at `url`; return row counts written.

    `browse_sample`: the share of sessions without a purchase that are written (1 = all of them;
    lower it for very large scales, see `generate.py`). `drift_from`: inject drift (channel mix,
    basket size) from this day on, for the model-drift monitor; None (the default) never does.
    Drift can be switched on later for days not written yet (the days already written are the
    same either way); any other change of settings needs a new database. `growth`: how much the
    expected orders per day grow per day, as a share of the first day's (default 0.002, +73% after a
    year; 0 = the same volume every year, apart from weekdays and the season).
    """
    engine = connect(url, create=True)
    metadata.create_all(engine)
    _state_md.create_all(engine)
    with engine.begin() as conn:
        state = conn.execute(select(simulator_state)).mappings().first()
        stored = {**DEFAULT_OPTIONS, **dict(conn.execute(select(simulator_options)).all())}
        drift_ordinal = float(drift_from.toordinal()) if drift_from else 0.0
        options = {"browse_sample": browse_sample, "drift_from": drift_ordinal, "growth": growth}
        if state and _drift_switched_on_for_unwritten_days(stored, options, state["last_day"]):
            conn.execute(simulator_options.delete().where(simulator_options.c.name == "drift_from"))
            conn.execute(simulator_options.insert().values(name="drift_from", value=drift_ordinal))
            stored = options
    if state:
        if state["seed"] != seed or state["scale"] != scale or state["start_date"] != start or stored != options:
            raise SimulatorError(
                f"this app DB was simulated with seed={state['seed']} scale={state['scale']} "
                f"start={state['start_date']} {_describe(stored)}; asked for seed={seed} scale={scale} "
                f"start={start} {_describe(options)}. Use the same settings, or delete the database to start over."
            )
        first = state["last_day"] + dt.timedelta(days=1)
    else:
        first = start
    writer = DayWriter(
        engine,
        seed=seed,
        scale=scale,
        start=start,
        browse_sample=browse_sample,
        drift_from=drift_from,
        growth=growth,
    )
    totals: dict[str, int] = {}
    days = (end - first).days + 1
    began = time.monotonic()
    for n in range(max(days, 0)):
        day = first + dt.timedelta(days=n)

        def record(conn: Connection, day: dt.date = day, first_write: bool = state is None and n == 0) -> None:
            # in the day's own transaction: a day is written and remembered together, or not at all
            if first_write:
                conn.execute(
                    simulator_state.insert().values(
                        id=1, seed=seed, scale=scale, start_date=start, last_day=day, shop="demo"
                    )
                )
                conn.execute(simulator_options.insert(), [{"name": k, "value": v} for k, v in options.items()])
            else:
                conn.execute(simulator_state.update().values(last_day=day))

        counts = writer.write(day, also=record)
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        if progress:
            elapsed = time.monotonic() - began
            print(
                f"\rsimulating {day} ({n + 1}/{days}) orders={totals.get('orders', 0):,} "
                f"events={totals.get('web_events', 0):,} [{elapsed:.0f}s]",
                end="",
                file=sys.stderr,
                flush=True,
            )
    if progress and days > 0:
        print(file=sys.stderr)
    engine.dispose()
    return totals


def stored_settings(url: str) -> dict | None:
    """What an app DB was simulated with: start_date, seed, scale, browse_sample, growth and
    drift_from (a date or None). None when there is no simulated database yet (or it is unreachable: simulate()
    says so)."""
    try:
        engine = connect(url)
    except AppDbError:
        return None
    try:
        if not inspect(engine).has_table(simulator_state.name):
            return None
        with engine.connect() as conn:
            state = conn.execute(select(simulator_state)).mappings().first()
            options = dict(DEFAULT_OPTIONS)
            if inspect(engine).has_table(simulator_options.name):
                options.update(dict(conn.execute(select(simulator_options)).all()))
    finally:
        engine.dispose()
    if state is None:
        return None
    drift = options["drift_from"]
    return {
        "start_date": state["start_date"],
        "seed": state["seed"],
        "scale": state["scale"],
        "browse_sample": options["browse_sample"],
        "growth": options["growth"],
        "drift_from": dt.date.fromordinal(int(drift)) if drift else None,
    }


def _drift_switched_on_for_unwritten_days(stored: dict, options: dict, last_day: dt.date) -> bool:
    """True when only drift_from changes, from never to a day after everything written so far."""
    others_equal = {k: v for k, v in stored.items() if k != "drift_from"} == {
        k: v for k, v in options.items() if k != "drift_from"
    }
    return others_equal and stored["drift_from"] == 0.0 and options["drift_from"] > float(last_day.toordinal())


def _describe(options: dict[str, float]) -> str:
    def shown(name: str, value: float) -> str:
        if name == "drift_from":
            return dt.date.fromordinal(int(value)).isoformat() if value else "none"
        return f"{value:g}"

    return " ".join(f"{name}={shown(name, value)}" for name, value in sorted(options.items()))

"""Generate (or extend) the shop's operational database for a date range.

Generation is resumable and idempotent: a small state table remembers the seed, the scale and
the last simulated day, so asking again for days already written does nothing, and asking for
later days continues the same shop. Days must be generated in order.
"""

from __future__ import annotations

import datetime as dt
import sys
import time

from sqlalchemy import Column, Date, Float, Integer, MetaData, String, Table, select

from ingestion.app_db.connection import connect
from ingestion.app_db.schema import metadata
from ingestion.simulator.generate import DayWriter

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


class SimulatorError(RuntimeError):
    """A request the simulator cannot honour without changing history."""


def simulate(
    url: str,
    start: dt.date,
    end: dt.date,
    *,
    seed: int = 42,
    scale: float = 1.0,
    progress: bool = True,
) -> dict[str, int]:
    """Write days [start, end] into the app DB at `url`; return row counts written."""
    engine = connect(url, create=True)
    metadata.create_all(engine)
    _state_md.create_all(engine)
    with engine.begin() as conn:
        state = conn.execute(select(simulator_state)).mappings().first()
    if state:
        if state["seed"] != seed or state["scale"] != scale or state["start_date"] != start:
            raise SimulatorError(
                f"this app DB was simulated with seed={state['seed']} scale={state['scale']} "
                f"start={state['start_date']}; asked for seed={seed} scale={scale} start={start}. "
                "Use the same settings, or delete the database to start over."
            )
        first = state["last_day"] + dt.timedelta(days=1)
    else:
        first = start
    writer = DayWriter(engine, seed=seed, scale=scale, start=start)
    totals: dict[str, int] = {}
    days = (end - first).days + 1
    began = time.monotonic()
    for n in range(max(days, 0)):
        day = first + dt.timedelta(days=n)
        counts = writer.write(day)
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        with engine.begin() as conn:
            if state is None and n == 0:
                conn.execute(
                    simulator_state.insert().values(
                        id=1, seed=seed, scale=scale, start_date=start, last_day=day, shop="demo"
                    )
                )
            else:
                conn.execute(simulator_state.update().values(last_day=day))
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

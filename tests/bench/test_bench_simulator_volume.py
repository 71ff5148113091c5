"""The simulator's traffic knob for large scales: fewer web events, the same business."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from ingestion.simulator.run import SimulatorError, simulate

START, END = dt.date(2026, 3, 2), dt.date(2026, 3, 21)
BUSINESS = ("customers", "orders", "order_items", "returns", "products")


def _dump(path, table: str) -> list[tuple]:
    with sqlite3.connect(path) as con:
        return con.execute(f"select * from {table} order by 1").fetchall()


def test_browse_sample_thins_only_sessions_without_a_purchase(tmp_path) -> None:
    full, thin = tmp_path / "full.sqlite", tmp_path / "thin.sqlite"
    simulate(f"sqlite:///{full}", START, END, seed=3, progress=False)
    simulate(f"sqlite:///{thin}", START, END, seed=3, browse_sample=0.1, progress=False)
    for table in BUSINESS:
        assert _dump(full, table) == _dump(thin, table), table
    events_full, events_thin = _dump(full, "web_events"), _dump(thin, "web_events")
    assert len(events_thin) < 0.4 * len(events_full)
    # every purchase session is kept whole; event ids still increase with the time of the session
    purchases = {(e[1], e[4], e[7]) for e in events_full if e[4] == "purchase"}
    assert purchases == {(e[1], e[4], e[7]) for e in events_thin if e[4] == "purchase"}
    assert [e[0] for e in events_thin] == list(range(1, len(events_thin) + 1))
    with pytest.raises(SimulatorError, match=r"browse_sample=0\.1"):
        simulate(f"sqlite:///{thin}", START, END + dt.timedelta(days=1), seed=3, progress=False)

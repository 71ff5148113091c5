"""Benchmark scales: a target number of orders over a period, turned into simulator settings.

The simulator's `scale` is orders per day relative to ~100 at scale 1, shaped by growth, weekends
and the year-end season, so the scale that yields N orders depends on the period: it is solved
from the simulator's own expected-orders curve. Web traffic is thinned at large scales with
`browse_sample` (sessions without a purchase kept with that probability), otherwise a year at
10M orders would write ~500M web events. `growth` is the simulator's orders growth per day; the
two-year runs use 0, so every year has the same day volume (and the requested orders).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from ingestion.simulator.generate import DEFAULT_GROWTH, expected_orders

DEFAULT_START = dt.date(2025, 1, 1)
DEFAULT_DAYS = 365
SEED = 8


@dataclass(frozen=True)
class Scale:
    """One benchmark size: `orders` expected over `days` from `start`."""

    name: str
    orders: int
    days: int = DEFAULT_DAYS
    start: dt.date = DEFAULT_START
    browse_sample: float = 0.02
    seed: int = SEED
    growth: float = DEFAULT_GROWTH  # the simulator's orders growth per day (0: the same volume every year)

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days - 1)

    @property
    def simulator_scale(self) -> float:
        """The simulator scale whose expected orders over the period equal `orders` (4 digits)."""
        return float(f"{self.orders / self._orders_at_scale_1:.4g}")

    @property
    def _orders_at_scale_1(self) -> float:
        return sum(self.expected_orders(self.start + dt.timedelta(days=n), 1.0) for n in range(self.days))

    def expected_orders(self, day: dt.date, scale: float | None = None) -> float:
        """The simulator's expected orders on `day` (at the solved simulator scale by default)."""
        return expected_orders(day, self.start, self.simulator_scale if scale is None else scale, self.growth)


def parse_scale(
    text: str, days: int = DEFAULT_DAYS, browse_sample: float = 0.02, growth: float = DEFAULT_GROWTH
) -> Scale:
    """'1m' -> 1,000,000 orders; '250k', '10m', '2000' work too."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([km]?)", text.strip().lower())
    if not match:
        raise ValueError(f"not a scale: {text!r} (examples: 100k, 1m, 10m)")
    number = float(match.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2)]
    return Scale(name=text.strip().lower(), orders=int(number), days=days, browse_sample=browse_sample, growth=growth)

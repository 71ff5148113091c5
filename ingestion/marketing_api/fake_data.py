"""What the fake third party knows: campaigns, their daily spend, and EUR exchange rates.

Deterministic from (seed, day), so a rerun, a retried page or a test sees the same numbers.
Exchange rates are the shop simulator's own (`eur_rate`), so amounts converted with the
provider's rates agree with the rates the shop fixed on its orders.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import NamedTuple

from ingestion.simulator.generate import eur_rate

CHANNELS = ("web_search", "social", "display", "affiliate", "email")
FX_CURRENCIES = ("GBP", "SEK", "USD")  # quoted against EUR; the shop sells in these and EUR
ALL_WEEK = frozenset(range(7))


class Campaign(NamedTuple):
    campaign_id: str
    channel: str
    currency: str  # the ad account's billing currency: search and social bill in USD
    daily_spend: float  # typical spend on an active day, in `currency`
    cpm: float  # cost per 1000 impressions
    ctr: float  # clicks per impression
    weekdays: frozenset[int]  # Monday = 0


CAMPAIGNS: tuple[Campaign, ...] = (
    Campaign("ws_brand_core", "web_search", "USD", 900.0, 6.0, 0.080, ALL_WEEK),
    Campaign("ws_generic_electronics", "web_search", "USD", 1400.0, 9.0, 0.030, ALL_WEEK),
    Campaign("ws_shopping_feed", "web_search", "USD", 1100.0, 5.0, 0.020, ALL_WEEK),
    Campaign("so_prospecting", "social", "USD", 800.0, 7.0, 0.012, ALL_WEEK),
    Campaign("so_retargeting", "social", "EUR", 450.0, 9.0, 0.020, ALL_WEEK),
    Campaign("di_programmatic", "display", "EUR", 600.0, 2.5, 0.004, ALL_WEEK),
    Campaign("di_retargeting", "display", "EUR", 300.0, 3.5, 0.006, ALL_WEEK),
    Campaign("af_partner_network", "affiliate", "EUR", 700.0, 1.5, 0.010, ALL_WEEK),
    Campaign("em_newsletter", "email", "EUR", 120.0, 0.8, 0.030, frozenset({1, 3})),
    Campaign("em_winback", "email", "EUR", 60.0, 0.8, 0.025, frozenset({5})),
)


def spend_rows(seed: int, day: dt.date, scale: float = 1.0) -> list[dict]:
    """The day's spend per active campaign, ordered by channel then campaign (the paging order)."""
    rng = random.Random(f"{seed}:spend:{day.isoformat()}")  # noqa: S311 - simulated data
    weekend = 1.15 if day.weekday() >= 5 else 1.0
    rows = []
    for c in CAMPAIGNS:
        active = day.weekday() in c.weekdays and rng.random() < 0.95  # campaigns pause now and then
        level = max(0.2, rng.gauss(1.0, 0.15))
        if not active:
            continue
        spend = round(c.daily_spend * scale * weekend * level, 2)
        impressions = int(spend / c.cpm * 1000 * max(0.5, rng.gauss(1.0, 0.05)))
        clicks = int(impressions * c.ctr * max(0.5, rng.gauss(1.0, 0.1)))
        rows.append(
            {
                "date": day.isoformat(),
                "channel": c.channel,
                "campaign_id": c.campaign_id,
                "currency": c.currency,
                "spend": spend,
                "impressions": impressions,
                "clicks": clicks,
            }
        )
    rows.sort(key=lambda r: (CHANNELS.index(r["channel"]), r["campaign_id"]))
    return rows


def fx_rows(day: dt.date) -> list[dict]:
    """EUR per one unit of each quoted currency on `day`."""
    return [{"date": day.isoformat(), "currency": c, "eur_per_unit": eur_rate(c, day)} for c in FX_CURRENCIES]

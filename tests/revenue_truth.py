"""The independent check of the published revenue: net revenue per day straight from the app DB.

Computed from the operational SQLite database with its own SQL, none of our models, so a test that
compares the served marts with it checks the whole path from extraction to publish.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal


def expected_daily_revenue(app_db: str) -> dict[dt.date, tuple[Decimal, Decimal, int]]:
    """Net revenue per day computed directly from the operational DB (not from our models)."""
    with sqlite3.connect(app_db) as con:
        sales = con.execute(
            "select date(o.ordered_at), sum(i.quantity * i.unit_price_cents * o.eur_exchange_rate) / 100.0, "
            "count(distinct o.order_id) from orders o join order_items i on i.order_id = o.order_id "
            "where o.order_status != 'cancelled' group by 1"
        ).fetchall()
        refunds = dict(
            con.execute(
                "select date(r.returned_at), sum(r.refund_cents * o.eur_exchange_rate) / 100.0 "
                "from returns r join orders o on o.order_id = r.order_id group by 1"
            ).fetchall()
        )
    out = {}
    for day, gross, orders in sales:
        returns = refunds.get(day, 0.0)
        out[dt.date.fromisoformat(day)] = (round(Decimal(gross), 2), round(Decimal(returns), 2), orders)
    return out

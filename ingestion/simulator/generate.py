"""Day-by-day generation of the shop's operational data.

Each simulated day D plays the shop's business for that day, in the order it happens:
visitors browse (web sessions with an A/B assignment), some buy (new customers sign up at their
first purchase), yesterday's orders ship, older orders are delivered and some items come back.
A day's random draws come from `numpy.random.default_rng([seed, D])`, and what it reads from the
database (orders to ship, items to return) was itself written deterministically, so the database
is the same whether 90 days are generated at once or one day at a time.

The treatment variant of the experiment converts better at checkout (a real effect for the A/B
test to find); weekends, the year-end season and slow growth shape the volume.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from sqlalchemy import BigInteger, Engine, and_, cast, func, select

from ingestion.app_db.schema import customers, order_items, orders, products, returns, web_events
from ingestion.simulator import population as pop

ORDERS_PER_DAY_AT_SCALE_1 = 100
# Funnel probabilities per session step; the treatment lifts checkout -> purchase.
P_ADD_TO_CART = 0.30
P_CHECKOUT_GIVEN_CART = 0.50
P_PURCHASE_GIVEN_CHECKOUT = {"control": 0.55, "treatment": 0.63}
P_KNOWN_CUSTOMER_SESSION = 0.35
P_CANCELLED = 0.03
P_ITEM_RETURNED = 0.10
RETURN_DELAY_DAYS = (4, 14)  # inclusive range after the order date
PRODUCT_COUNT = 200


@dataclass(frozen=True)
class DayVolume:
    """How much happens on one day."""

    sessions: int


def expected_orders(day: dt.date, start: dt.date, scale: float) -> float:
    """Expected orders on `day`: growth since `start`, weekly rhythm and a year-end season."""
    growth = 1.0 + 0.002 * (day - start).days
    weekend = 1.2 if day.weekday() >= 5 else 1.0
    season = 1.0 + 0.4 * math.exp(-(((day.timetuple().tm_yday - 340) / 20.0) ** 2))
    return ORDERS_PER_DAY_AT_SCALE_1 * scale * growth * weekend * season


def _conversion() -> float:
    mean_purchase = sum(P_PURCHASE_GIVEN_CHECKOUT.values()) / len(P_PURCHASE_GIVEN_CHECKOUT)
    return P_ADD_TO_CART * P_CHECKOUT_GIVEN_CART * mean_purchase


def variant_of(visitor_id: str) -> str:
    """Stable 50/50 assignment of a visitor to an experiment variant (hash bucketing)."""
    digest = hashlib.sha256(f"{pop.EXPERIMENT_KEY}:{visitor_id}".encode()).digest()
    return pop.VARIANTS[digest[0] % 2]


def _unit_hash(*parts: object) -> float:
    """A deterministic number in [0, 1) for the given parts (decisions made once per row)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def eur_rate(currency: str, day: dt.date) -> float:
    """EUR per unit of `currency` on `day`: a smooth, deterministic wander around the base."""
    base = pop.BASE_EUR_RATES[currency]
    if currency == "EUR":
        return 1.0
    wobble = 0.03 * math.sin(day.toordinal() / 17.0 + len(currency) + ord(currency[0]))
    return round(base * (1 + wobble), 6)


def _at(day: dt.date, seconds: float) -> dt.datetime:
    return dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=float(seconds))


class DayWriter:
    """Writes one simulated day into the app DB inside one transaction."""

    def __init__(self, engine: Engine, seed: int, scale: float, start: dt.date):
        self.engine = engine
        self.seed = seed
        self.scale = scale
        self.start = start

    def write(self, day: dt.date) -> dict[str, int]:
        rng = np.random.default_rng([self.seed, day.toordinal()])
        counts: dict[str, int] = {}
        with self.engine.begin() as conn:
            self.conn = conn
            if day == self.start:
                counts["products"] = self._create_catalog(day, rng)
            counts["product_updates"] = self._reprice_products(day, rng)
            counts.update(self._sessions_and_orders(day, rng))
            counts["orders_shipped"] = self._advance_status(day, "placed", "shipped", 1)
            counts["orders_delivered"] = self._advance_status(day, "shipped", "delivered", 3)
            counts["returns"] = self._returns(day, rng)
            counts["customer_updates"] = self._customer_updates(day, rng)
        return counts

    # -- catalog -----------------------------------------------------------------------------
    def _create_catalog(self, day: dt.date, rng: np.random.Generator) -> int:
        rows = []
        names = list(pop.CATEGORIES)
        for product_id in range(1, PRODUCT_COUNT + 1):
            category = names[product_id % len(names)]
            low, high = pop.CATEGORIES[category]
            ts = _at(day, rng.uniform(0, 3600))
            rows.append(
                {
                    "product_id": product_id,
                    "sku": f"SKU-{product_id:05d}",
                    "product_name": f"{category.title()} item {product_id}",
                    "category": category,
                    "unit_price_eur_cents": int(rng.integers(low, high)),
                    "is_active": True,
                    "created_at": ts,
                    "updated_at": ts,
                }
            )
        self.conn.execute(products.insert(), rows)
        return len(rows)

    def _reprice_products(self, day: dt.date, rng: np.random.Generator) -> int:
        if day == self.start:
            return 0
        changed = rng.choice(np.arange(1, PRODUCT_COUNT + 1), size=2, replace=False)
        for product_id in changed:
            factor = float(rng.uniform(0.9, 1.1))
            self.conn.execute(
                products.update()
                .where(products.c.product_id == int(product_id))
                .values(
                    unit_price_eur_cents=cast(func.round(products.c.unit_price_eur_cents * factor), BigInteger),
                    updated_at=_at(day, rng.uniform(0, 86_399)),
                )
            )
        return len(changed)

    # -- sessions, customers, orders -----------------------------------------------------------
    def _next_id(self, table, column) -> int:
        return int(self.conn.execute(select(func.coalesce(func.max(column), 0))).scalar_one()) + 1

    def _sessions_and_orders(self, day: dt.date, rng: np.random.Generator) -> dict[str, int]:
        n_sessions = int(rng.poisson(expected_orders(day, self.start, self.scale) / _conversion()))
        max_customer = self._next_id(customers, customers.c.customer_id) - 1
        next_customer = max_customer + 1
        next_order = self._next_id(orders, orders.c.order_id)
        next_item = self._next_id(order_items, order_items.c.order_item_id)
        next_event = self._next_id(web_events, web_events.c.event_id)
        price_of = dict(self.conn.execute(select(products.c.product_id, products.c.unit_price_eur_cents)).all())
        product_ids = np.array(sorted(price_of))
        country_codes = list(pop.COUNTRIES)
        country_p = np.array([c[2] for c in pop.COUNTRIES.values()])
        country_p = country_p / country_p.sum()

        # Per-session draws, vectorised.
        known = (rng.random(n_sessions) < P_KNOWN_CUSTOMER_SESSION) & (max_customer > 0)
        known_ids = rng.integers(1, max(max_customer, 1) + 1, size=n_sessions)
        starts = np.sort(rng.uniform(0, 86_000, size=n_sessions))
        page_views = rng.integers(1, 6, size=n_sessions)
        carted = rng.random(n_sessions) < P_ADD_TO_CART
        checked_out = carted & (rng.random(n_sessions) < P_CHECKOUT_GIVEN_CART)
        purchase_draw = rng.random(n_sessions)
        channel_draw = rng.choice(len(pop.CHANNELS), size=n_sessions, p=pop.CHANNEL_SHARES)
        country_draw = rng.choice(len(country_codes), size=n_sessions, p=country_p)

        customer_country: dict[int, str] = {}
        known_list = [int(i) for i in np.unique(known_ids[known])]
        if known_list:
            customer_country = dict(
                self.conn.execute(
                    select(customers.c.customer_id, customers.c.country_code).where(
                        customers.c.customer_id.in_(known_list)
                    )
                ).all()
            )

        events: list[dict] = []
        new_customers: list[dict] = []
        new_orders: list[dict] = []
        new_items: list[dict] = []
        for i in range(n_sessions):
            customer_id = int(known_ids[i]) if known[i] else None
            visitor_id = f"c{customer_id}" if customer_id else f"v{day:%Y%m%d}-{i}"
            variant = variant_of(visitor_id)
            session_id = f"s{day:%Y%m%d}-{i}"
            t = starts[i]
            steps = ["session_start"] + ["page_view"] * int(page_views[i])
            if carted[i]:
                steps.append("add_to_cart")
            if checked_out[i]:
                steps.append("checkout")
            purchased = bool(checked_out[i] and purchase_draw[i] < P_PURCHASE_GIVEN_CHECKOUT[variant])
            order_id = None
            if purchased:
                steps.append("purchase")
                if customer_id is None:
                    customer_id = next_customer
                    next_customer += 1
                    country = country_codes[int(country_draw[i])]
                    new_customers.append(self._new_customer(customer_id, country, day, t, rng))
                    customer_country[customer_id] = country
                country = customer_country[customer_id]
                currency = pop.COUNTRIES[country][0]
                rate = eur_rate(currency, day)
                order_id = next_order
                next_order += 1
                ordered_at = _at(day, t + 60 * len(steps))
                cancelled = rng.random() < P_CANCELLED
                new_orders.append(
                    {
                        "order_id": order_id,
                        "customer_id": customer_id,
                        "order_status": "cancelled" if cancelled else "placed",
                        "channel": pop.CHANNELS[int(channel_draw[i])],
                        "country_code": country,
                        "currency": currency,
                        "eur_exchange_rate": rate,
                        "ordered_at": ordered_at,
                        "created_at": ordered_at,
                        # a cancellation is an update shortly after the order
                        "updated_at": ordered_at + dt.timedelta(minutes=5 if cancelled else 0),
                    }
                )
                n_items = int(rng.integers(1, 5))
                for product_id in rng.choice(product_ids, size=n_items, replace=False):
                    local_cents = max(1, round(price_of[int(product_id)] / rate))
                    new_items.append(
                        {
                            "order_item_id": next_item,
                            "order_id": order_id,
                            "product_id": int(product_id),
                            "quantity": int(rng.integers(1, 4)),
                            "unit_price_cents": int(local_cents),
                            "created_at": ordered_at,
                            "updated_at": ordered_at,
                        }
                    )
                    next_item += 1
            for step_no, event_type in enumerate(steps):
                occurred = _at(day, min(t + 60 * step_no, 86_399))
                events.append(
                    {
                        "event_id": next_event,
                        "session_id": session_id,
                        "visitor_id": visitor_id,
                        "customer_id": customer_id if (customer_id and (known[i] or purchased)) else None,
                        "event_type": event_type,
                        "experiment_key": pop.EXPERIMENT_KEY,
                        "experiment_variant": variant,
                        "order_id": order_id if event_type == "purchase" else None,
                        "occurred_at": occurred,
                        "created_at": occurred,
                    }
                )
                next_event += 1

        for table, rows in (
            (customers, new_customers),
            (orders, new_orders),
            (order_items, new_items),
            (web_events, events),
        ):
            for chunk in _chunks(rows, 5_000):
                self.conn.execute(table.insert(), chunk)
        return {
            "sessions": n_sessions,
            "customers": len(new_customers),
            "orders": len(new_orders),
            "order_items": len(new_items),
            "web_events": len(events),
        }

    def _new_customer(self, customer_id: int, country: str, day: dt.date, t: float, rng) -> dict:
        first = pop.FIRST_NAMES[int(rng.integers(len(pop.FIRST_NAMES)))]
        last = pop.LAST_NAMES[int(rng.integers(len(pop.LAST_NAMES)))]
        city = pop.COUNTRIES[country][1][int(rng.integers(len(pop.COUNTRIES[country][1])))]
        signed_up = _at(day, t)
        return {
            "customer_id": customer_id,
            "email": f"{first}.{last}.{customer_id}@example.com".lower(),
            "full_name": f"{first} {last}",
            "phone": f"+{int(rng.integers(10, 99))} {int(rng.integers(100, 999))} {int(rng.integers(100000, 999999))}",
            "street_address": f"{int(rng.integers(1, 200))} {pop.STREETS[int(rng.integers(len(pop.STREETS)))]}",
            "city": city,
            "country_code": country,
            "birth_date": dt.date(int(rng.integers(1950, 2006)), int(rng.integers(1, 13)), int(rng.integers(1, 29))),
            "marketing_opt_in": bool(rng.random() < 0.4),
            "created_at": signed_up,
            "updated_at": signed_up,
        }

    # -- fulfilment and returns ------------------------------------------------------------
    def _advance_status(self, day: dt.date, old: str, new: str, days_after: int) -> int:
        placed_on = day - dt.timedelta(days=days_after)
        lo, hi = _day_bounds(placed_on)
        ids = [
            r[0]
            for r in self.conn.execute(
                select(orders.c.order_id).where(
                    and_(orders.c.order_status == old, orders.c.ordered_at >= lo, orders.c.ordered_at < hi)
                )
            ).all()
        ]
        for order_id in ids:
            self.conn.execute(
                orders.update()
                .where(orders.c.order_id == order_id)
                .values(order_status=new, updated_at=_at(day, 3600 + 36 * (order_id % 1000)))
            )
        return len(ids)

    def _returns(self, day: dt.date, rng: np.random.Generator) -> int:
        """Items come back between 4 and 14 days after a delivered order, decided per item."""
        lo, _ = _day_bounds(day - dt.timedelta(days=RETURN_DELAY_DAYS[1]))
        _, hi = _day_bounds(day - dt.timedelta(days=RETURN_DELAY_DAYS[0]))
        candidates = self.conn.execute(
            select(
                order_items.c.order_item_id,
                order_items.c.order_id,
                order_items.c.quantity,
                order_items.c.unit_price_cents,
                orders.c.ordered_at,
            )
            .join(orders, orders.c.order_id == order_items.c.order_id)
            .where(and_(orders.c.order_status == "delivered", orders.c.ordered_at >= lo, orders.c.ordered_at < hi))
            .order_by(order_items.c.order_item_id)
        ).all()
        next_return = self._next_id(returns, returns.c.return_id)
        rows = []
        span = RETURN_DELAY_DAYS[1] - RETURN_DELAY_DAYS[0] + 1
        for item_id, order_id, quantity, unit_cents, ordered_at in candidates:
            if _unit_hash(self.seed, "return", item_id) >= P_ITEM_RETURNED:
                continue
            delay = RETURN_DELAY_DAYS[0] + int(_unit_hash(self.seed, "delay", item_id) * span)
            if _as_date(ordered_at) + dt.timedelta(days=delay) != day:
                continue
            returned_qty = 1 + int(_unit_hash(self.seed, "qty", item_id) * quantity)
            returned_at = _at(day, rng.uniform(0, 86_399))
            rows.append(
                {
                    "return_id": next_return,
                    "order_item_id": item_id,
                    "order_id": order_id,
                    "quantity": returned_qty,
                    "refund_cents": returned_qty * unit_cents,
                    "reason": pop.RETURN_REASONS[int(rng.integers(len(pop.RETURN_REASONS)))],
                    "returned_at": returned_at,
                    "created_at": returned_at,
                    "updated_at": returned_at,
                }
            )
            next_return += 1
        for chunk in _chunks(rows, 5_000):
            self.conn.execute(returns.insert(), chunk)
        return len(rows)

    def _customer_updates(self, day: dt.date, rng: np.random.Generator) -> int:
        """A few customers change their marketing consent each day (an update, not an insert)."""
        max_customer = self._next_id(customers, customers.c.customer_id) - 1
        if max_customer < 10:
            return 0
        changed = sorted({int(x) for x in rng.integers(1, max_customer + 1, size=max(1, max_customer // 200))})
        for customer_id in changed:
            self.conn.execute(
                customers.update()
                .where(and_(customers.c.customer_id == customer_id, customers.c.created_at < _day_bounds(day)[0]))
                .values(marketing_opt_in=~customers.c.marketing_opt_in, updated_at=_at(day, rng.uniform(0, 86_399)))
            )
        return len(changed)


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time())
    return start, start + dt.timedelta(days=1)


def _as_date(value: dt.datetime | str) -> dt.date:
    if isinstance(value, str):  # SQLite hands back text for some drivers
        value = dt.datetime.fromisoformat(value)
    return value.date()


def _chunks(rows: list[dict], size: int) -> Iterator[list[dict]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]

"""Day-by-day generation of the shop's operational data.

Each simulated day D plays the shop's business for that day, in the order it happens:
visitors browse (web sessions with an A/B assignment), some buy (new customers sign up at their
first purchase), yesterday's orders ship, older orders are delivered and some items come back.
A day's random draws come from `numpy.random.default_rng([seed, D, stream])` (one stream per
kind of decision, so a knob that changes one kind leaves the others alone), and what it reads
from the database (orders to ship, items to return) was itself written deterministically, so
the database is the same whether 90 days are generated at once or one day at a time.

The treatment variant of the experiment converts better at checkout (a real effect for the A/B
test to find); weekends, the year-end season and slow growth shape the volume.

Customers churn, with a learnable cause (for the churn model, `ml/`). Each customer has two
hidden traits hashed from their id: *engagement* (how often they come back to browse) and
*fussiness* (how many of their items they send back). A returning-customer session picks an
existing customer weighted by engagement among those still *alive*; a customer's lifetime after
sign-up is exponential with a mean that is longer for engaged and shorter for fussy customers.
So customers with fewer sessions and more returns stop coming back sooner, and what the shop
records (sessions, orders, returns) carries the signal. When no alive customer is picked, the
session is an anonymous visitor's: orders per day do not change, only who places them.

`drift_from` (off by default) injects covariate drift from that day on: the channel mix moves
towards the marketplace and baskets hold more units (the drift monitor must notice).

A day is built as whole columns with numpy/Arrow (no Python loop per session or row) and written
with the bulk paths of `bulk.py`, so a year at ten million orders takes minutes, not hours.
`browse_sample` keeps web traffic sane at such scales: sessions that end without a purchase are
written with that probability (every purchasing session is always written). Orders, customers
and returns do not depend on it; session and visitor conversion rates rise (about 1 / sample
for non-buyers) while the treatment's lift over control remains.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable

import numpy as np
import pyarrow as pa
from sqlalchemy import BigInteger, Connection, Engine, and_, cast, func, select

from ingestion.app_db.schema import customers, order_items, orders, products, returns, web_events
from ingestion.simulator import bulk
from ingestion.simulator import population as pop

ORDERS_PER_DAY_AT_SCALE_1 = 100
# Funnel probabilities per session step; the treatment lifts checkout -> purchase.
P_ADD_TO_CART = 0.30
P_CHECKOUT_GIVEN_CART = 0.50
P_PURCHASE_GIVEN_CHECKOUT = {"control": 0.55, "treatment": 0.63}
P_KNOWN_CUSTOMER_SESSION = 0.35
P_CANCELLED = 0.03
# Per-item return probability from the customer's fussiness f in [0, 1): MIN + (MAX - MIN) * f^2,
# 0.10 on average (E[f^2] = 1/3), as before churn had a cause.
P_ITEM_RETURNED_MIN, P_ITEM_RETURNED_MAX = 0.02, 0.26
# Returning-customer sessions: draws of a candidate among existing customers before giving up
# (the session is then an anonymous visitor's). Accepted with the candidate's session weight.
KNOWN_CUSTOMER_TRIES = 8
# Mean lifetime (days after sign-up) of a fully engaged, not fussy customer; see `mean_lifetime_days`.
LIFETIME_BASE_DAYS = 150.0
# Drift (from `drift_from`): the channel mix and units per order line afterwards.
DRIFT_CHANNEL_SHARES = (0.35, 0.25, 0.40)
QUANTITY_RANGE, DRIFT_QUANTITY_RANGE = (1, 4), (2, 6)  # [low, high) units per line
RETURN_DELAY_DAYS = (4, 14)  # inclusive range after the order date
PRODUCT_COUNT = 200
MAX_ITEMS_PER_ORDER = 4
EVENT_FUNNEL = ("add_to_cart", "checkout", "purchase")

# Independent random streams of a day (the third element of the generator's seed).
_CATALOG, _SESSIONS, _ORDERS, _CUSTOMERS, _RETURNS, _CUSTOMER_UPDATES, _LOYALTY = range(7)
# Per-item decisions hashed from the item id, so any day can recompute them: tags of the hash.
_HASH_RETURN, _HASH_DELAY, _HASH_QUANTITY = 1, 2, 3
# Per-customer hidden traits hashed from the customer id (tags of the hash).
_HASH_ENGAGEMENT, _HASH_FUSSINESS, _HASH_LIFETIME = 4, 5, 6
_IN_CHUNK = 5_000  # ids per `in (...)` list (SQLite caps bound parameters)
_US_PER_DAY = 86_400_000_000
_EPOCH = dt.date(1970, 1, 1)
_TS = pa.timestamp("us")


DEFAULT_GROWTH = 0.002  # orders per day grow by this share of the first day's volume, per day


def expected_orders(day: dt.date, start: dt.date, scale: float, growth: float = DEFAULT_GROWTH) -> float:
    """Expected orders on `day`: linear growth since `start` (`growth` per day; 0 = the same volume
    every year), weekly rhythm and a year-end season."""
    trend = 1.0 + growth * (day - start).days
    weekend = 1.2 if day.weekday() >= 5 else 1.0
    season = 1.0 + 0.4 * math.exp(-(((day.timetuple().tm_yday - 340) / 20.0) ** 2))
    return ORDERS_PER_DAY_AT_SCALE_1 * scale * trend * weekend * season


def _conversion() -> float:
    mean_purchase = sum(P_PURCHASE_GIVEN_CHECKOUT.values()) / len(P_PURCHASE_GIVEN_CHECKOUT)
    return P_ADD_TO_CART * P_CHECKOUT_GIVEN_CART * mean_purchase


def variant_of(visitor_id: str) -> str:
    """Stable 50/50 assignment of a visitor to an experiment variant (hash bucketing)."""
    digest = hashlib.sha256(f"{pop.EXPERIMENT_KEY}:{visitor_id}".encode()).digest()
    return pop.VARIANTS[digest[0] % 2]


def unit_hash(seed: int, tag: int, ids: np.ndarray) -> np.ndarray:
    """A deterministic number in [0, 1) per id (splitmix64): a decision made once per row."""
    key = np.uint64((seed * 0x9E3779B97F4A7C15 + tag * 0xD1B54A32D192ED03) & 0xFFFFFFFFFFFFFFFF)
    x = ids.astype(np.uint64) * np.uint64(0xBF58476D1CE4E5B9) + key
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / 2.0**53


def customer_traits(seed: int, customer_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(engagement, fussiness) in [0, 1) per customer: hidden, fixed for life."""
    return unit_hash(seed, _HASH_ENGAGEMENT, customer_ids), unit_hash(seed, _HASH_FUSSINESS, customer_ids)


def session_weight(engagement: np.ndarray) -> np.ndarray:
    """Relative rate at which a customer comes back to browse (0.2 .. 1)."""
    return 0.2 + 0.8 * engagement


def item_return_probability(fussiness: np.ndarray) -> np.ndarray:
    return P_ITEM_RETURNED_MIN + (P_ITEM_RETURNED_MAX - P_ITEM_RETURNED_MIN) * fussiness**2


def mean_lifetime_days(engagement: np.ndarray, fussiness: np.ndarray) -> np.ndarray:
    """Engaged customers stay longer, fussy ones (many returns: a bad experience) leave sooner."""
    return LIFETIME_BASE_DAYS * (0.3 + 0.7 * engagement) * (1.0 - 0.7 * fussiness)


def lifetime_days(seed: int, customer_ids: np.ndarray) -> np.ndarray:
    """Days after sign-up a customer keeps coming back (exponential around the trait-driven mean)."""
    engagement, fussiness = customer_traits(seed, customer_ids)
    return -mean_lifetime_days(engagement, fussiness) * np.log1p(-unit_hash(seed, _HASH_LIFETIME, customer_ids))


def eur_rate(currency: str, day: dt.date) -> float:
    """EUR per unit of `currency` on `day`: a smooth, deterministic wander around the base."""
    base = pop.BASE_EUR_RATES[currency]
    if currency == "EUR":
        return 1.0
    wobble = 0.03 * math.sin(day.toordinal() / 17.0 + len(currency) + ord(currency[0]))
    return round(base * (1 + wobble), 6)


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time())
    return start, start + dt.timedelta(days=1)


def _at(day: dt.date, seconds: np.ndarray | float) -> pa.Array:
    """Timestamps `seconds` after midnight of `day` (microsecond precision)."""
    micros = np.rint(np.asarray(seconds, dtype=np.float64) * 1e6).astype(np.int64)
    return pa.array((day - _EPOCH).days * _US_PER_DAY + np.atleast_1d(micros), type=_TS)


def _pick(values: tuple[str, ...] | list[str], index: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object)[index], type=pa.string())


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[i : i + _IN_CHUNK] for i in range(0, len(ids), _IN_CHUNK)]


class DayWriter:
    """Writes one simulated day into the app DB inside one transaction."""

    def __init__(
        self,
        engine: Engine,
        seed: int,
        scale: float,
        start: dt.date,
        browse_sample: float = 1.0,
        drift_from: dt.date | None = None,
        growth: float = DEFAULT_GROWTH,
    ):
        if not 0.0 < browse_sample <= 1.0:
            raise ValueError(f"browse_sample must be in (0, 1], got {browse_sample}")
        if growth < 0.0:
            raise ValueError(f"growth must be >= 0, got {growth}")
        self.engine = engine
        self.seed = seed
        self.scale = scale
        self.start = start
        self.browse_sample = browse_sample
        self.drift_from = drift_from
        self.growth = growth
        # order_item_id range of the items ordered on a day; final once the day is 4 days old
        self._item_ranges: dict[dt.date, tuple[int, int] | None] = {}
        # Sign-up day per customer id, as (day ordinals, last customer id of that day), ascending:
        # ids are given out in time order, so a binary search finds any customer's sign-up day.
        self._signup_days: list[int] | None = None
        self._signup_last_ids: list[int] = []
        self.conn: Connection

    def _drifted(self, day: dt.date) -> bool:
        return self.drift_from is not None and day >= self.drift_from

    def _rng(self, day: dt.date, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, day.toordinal(), stream])

    def write(self, day: dt.date, also: Callable[[Connection], None] | None = None) -> dict[str, int]:
        """Write `day`; `also` runs in the same transaction (the caller's bookkeeping)."""
        counts: dict[str, int] = {}
        with self.engine.begin() as conn:
            self.conn = conn
            if conn.dialect.name == "sqlite":
                # a bigger page cache keeps index maintenance of the updates off the disk
                conn.exec_driver_sql("pragma cache_size = -262144")
            if day == self.start:
                counts["products"] = self._create_catalog(day)
            counts["product_updates"] = self._reprice_products(day)
            counts.update(self._sessions_and_orders(day))
            counts["orders_shipped"] = self._advance_status(day, "placed", "shipped", 1)
            counts["orders_delivered"] = self._advance_status(day, "shipped", "delivered", 3)
            counts["returns"] = self._returns(day)
            counts["customer_updates"] = self._customer_updates(day)
            if also is not None:
                also(conn)
        return counts

    # -- catalog -----------------------------------------------------------------------------
    def _create_catalog(self, day: dt.date) -> int:
        rng = self._rng(day, _CATALOG)
        ids = np.arange(1, PRODUCT_COUNT + 1)
        names = list(pop.CATEGORIES)
        category = [names[i % len(names)] for i in ids]
        low = np.array([pop.CATEGORIES[c][0] for c in category])
        high = np.array([pop.CATEGORIES[c][1] for c in category])
        created = _at(day, rng.uniform(0, 3600, size=len(ids)))
        return bulk.insert(
            self.conn,
            products,
            {
                "product_id": pa.array(ids, pa.int64()),
                "sku": pa.array([f"SKU-{i:05d}" for i in ids]),
                "product_name": pa.array([f"{c.title()} item {i}" for c, i in zip(category, ids, strict=True)]),
                "category": pa.array(category),
                "unit_price_eur_cents": pa.array(rng.integers(low, high), pa.int64()),
                "is_active": pa.array(np.ones(len(ids), dtype=bool)),
                "created_at": created,
                "updated_at": created,
            },
        )

    def _reprice_products(self, day: dt.date) -> int:
        if day == self.start:
            return 0
        rng = self._rng(day, _CATALOG)
        changed = rng.choice(np.arange(1, PRODUCT_COUNT + 1), size=2, replace=False)
        for product_id in changed:
            factor = float(rng.uniform(0.9, 1.1))
            self.conn.execute(
                products.update()
                .where(products.c.product_id == int(product_id))
                .values(
                    unit_price_eur_cents=cast(func.round(products.c.unit_price_eur_cents * factor), BigInteger),
                    updated_at=_at(day, rng.uniform(0, 86_399))[0].as_py(),
                )
            )
        return len(changed)

    # -- sessions, customers, orders -----------------------------------------------------------
    def _max_id(self, column) -> int:
        return int(self.conn.execute(select(func.coalesce(func.max(column), 0))).scalar_one())

    def _sessions_and_orders(self, day: dt.date) -> dict[str, int]:
        rng = self._rng(day, _SESSIONS)
        n = int(rng.poisson(expected_orders(day, self.start, self.scale, self.growth) / _conversion()))
        max_customer = self._max_id(customers.c.customer_id)

        # Per-session draws, all of them whatever the knobs, so the knobs never shift a stream.
        wants_known = (rng.random(n) < P_KNOWN_CUSTOMER_SESSION) & (max_customer > 0)
        rng.integers(1, max(max_customer, 1) + 1, size=n)  # unused since churn: kept so later draws stay put
        starts = np.sort(rng.uniform(0, 86_000, size=n))
        page_views = rng.integers(1, 6, size=n)
        carted = rng.random(n) < P_ADD_TO_CART
        checked_out = carted & (rng.random(n) < P_CHECKOUT_GIVEN_CART)
        purchase_draw = rng.random(n)
        shares = DRIFT_CHANNEL_SHARES if self._drifted(day) else pop.CHANNEL_SHARES
        channel_draw = rng.choice(len(pop.CHANNELS), size=n, p=shares)
        country_codes = list(pop.COUNTRIES)
        country_p = np.array([c[2] for c in pop.COUNTRIES.values()])
        country_draw = rng.choice(len(country_codes), size=n, p=country_p / country_p.sum())
        browse_draw = rng.random(n)
        known_ids, found = self._returning_customers(day, n, max_customer)
        known = wants_known & found

        # Visitors matter where they decide a purchase (checkout) or are written (kept sessions).
        stamp = f"{day:%Y%m%d}"
        decided = np.flatnonzero(checked_out | (browse_draw < self.browse_sample))
        visitor = {int(i): f"c{known_ids[i]}" if known[i] else f"v{stamp}-{i}" for i in decided}
        is_treatment = np.zeros(n, dtype=bool)
        for i, visitor_id in visitor.items():
            is_treatment[i] = variant_of(visitor_id) == "treatment"
        p_purchase = np.where(
            is_treatment, P_PURCHASE_GIVEN_CHECKOUT["treatment"], P_PURCHASE_GIVEN_CHECKOUT["control"]
        )
        purchased = checked_out & (purchase_draw < p_purchase)
        steps = 1 + page_views + carted + checked_out + purchased  # events in the session

        buyers = np.flatnonzero(purchased)
        new_buyer = ~known[buyers]
        customer_of = np.zeros(n, dtype=np.int64)  # the session's customer id, 0 when anonymous
        customer_of[known] = known_ids[known]
        customer_of[buyers[new_buyer]] = max_customer + 1 + np.arange(int(new_buyer.sum()))
        written_customers = self._new_customers(
            day, customer_of[buyers[new_buyer]], country_draw[buyers[new_buyer]], starts[buyers[new_buyer]]
        )
        order_ids, order_counts = self._orders_and_items(
            day, buyers, customer_of, new_buyer, country_draw, channel_draw, starts + 60 * steps
        )
        order_of = np.zeros(n, dtype=np.int64)
        order_of[buyers] = order_ids

        kept = np.flatnonzero(purchased | (browse_draw < self.browse_sample))
        events = self._events(
            day, kept, steps, page_views, carted, checked_out, purchased, starts,
            [visitor[int(i)] for i in kept], is_treatment, np.where(known | purchased, customer_of, 0), order_of,
        )  # fmt: skip
        return {
            "sessions": len(kept),
            "customers": written_customers,
            **order_counts,
            "web_events": events,
        }

    def _returning_customers(self, day: dt.date, n: int, max_customer: int) -> tuple[np.ndarray, np.ndarray]:
        """Per session, an existing customer who is still alive, picked in proportion to their
        engagement (up to KNOWN_CUSTOMER_TRIES candidates); `found` is False where none was."""
        rng = self._rng(day, _LOYALTY)
        candidates = rng.integers(1, max(max_customer, 1) + 1, size=(n, KNOWN_CUSTOMER_TRIES))
        accept_draw = rng.random((n, KNOWN_CUSTOMER_TRIES))
        if max_customer == 0 or n == 0:
            return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
        flat = candidates.ravel()
        engagement, _ = customer_traits(self.seed, flat)
        age = day.toordinal() - self._signup_day(flat)
        alive = age < lifetime_days(self.seed, flat)
        accepted = ((accept_draw.ravel() < session_weight(engagement)) & alive).reshape(n, KNOWN_CUSTOMER_TRIES)
        chosen = candidates[np.arange(n), accepted.argmax(axis=1)]
        return chosen, accepted.any(axis=1)

    def _signup_day(self, customer_ids: np.ndarray) -> np.ndarray:
        """Day ordinal of each (existing) customer's sign-up."""
        if self._signup_days is None:
            created = func.date(customers.c.created_at)
            rows = self.conn.execute(
                select(created, func.max(customers.c.customer_id)).group_by(created).order_by(created)
            ).all()
            self._signup_days = [dt.date.fromisoformat(str(d)[:10]).toordinal() for d, _ in rows]
            self._signup_last_ids = [int(last) for _, last in rows]
        index = np.searchsorted(np.asarray(self._signup_last_ids), customer_ids, side="left")
        return np.asarray(self._signup_days)[np.minimum(index, len(self._signup_days) - 1)]

    def _new_customers(self, day: dt.date, ids: np.ndarray, country_index: np.ndarray, starts: np.ndarray) -> int:
        if len(ids) and self._signup_days is not None:
            self._signup_days.append(day.toordinal())
            self._signup_last_ids.append(int(ids.max()))
        rng = self._rng(day, _CUSTOMERS)
        k = len(ids)
        first = np.asarray(pop.FIRST_NAMES, dtype=object)[rng.integers(len(pop.FIRST_NAMES), size=k)]
        last = np.asarray(pop.LAST_NAMES, dtype=object)[rng.integers(len(pop.LAST_NAMES), size=k)]
        countries = [list(pop.COUNTRIES)[c] for c in country_index]
        city_draw = rng.random(k)
        cities = [
            pop.COUNTRIES[c][1][int(u * len(pop.COUNTRIES[c][1]))] for c, u in zip(countries, city_draw, strict=True)
        ]
        phone = zip(
            rng.integers(10, 99, size=k), rng.integers(100, 999, size=k), rng.integers(100000, 999999, size=k),
            strict=True,
        )  # fmt: skip
        house = rng.integers(1, 200, size=k)
        street = np.asarray(pop.STREETS, dtype=object)[rng.integers(len(pop.STREETS), size=k)]
        birth = np.array(
            [
                dt.date(int(y), int(m), int(d))
                for y, m, d in zip(
                    rng.integers(1950, 2006, size=k),
                    rng.integers(1, 13, size=k),
                    rng.integers(1, 29, size=k),
                    strict=True,
                )
            ],
            dtype=object,
        )
        signed_up = _at(day, starts)
        return bulk.insert(
            self.conn,
            customers,
            {
                "customer_id": pa.array(ids, pa.int64()),
                "email": pa.array(
                    [f"{f}.{s}.{i}@example.com".lower() for f, s, i in zip(first, last, ids, strict=True)]
                ),
                "full_name": pa.array([f"{f} {s}" for f, s in zip(first, last, strict=True)]),
                "phone": pa.array([f"+{a} {b} {c}" for a, b, c in phone]),
                "street_address": pa.array([f"{h} {s}" for h, s in zip(house, street, strict=True)]),
                "city": pa.array(cities, pa.string()),
                "country_code": pa.array(countries, pa.string()),
                "birth_date": pa.array(birth, pa.date32()),
                "marketing_opt_in": pa.array(rng.random(k) < 0.4),
                "created_at": signed_up,
                "updated_at": signed_up,
            },
        )

    def _countries_of(self, customer_ids: np.ndarray) -> dict[int, str]:
        found: dict[int, str] = {}
        for chunk in _chunks(sorted({int(i) for i in customer_ids})):
            query = select(customers.c.customer_id, customers.c.country_code).where(customers.c.customer_id.in_(chunk))
            found.update(self.conn.execute(query).all())
        return found

    def _orders_and_items(
        self,
        day: dt.date,
        buyers: np.ndarray,
        customer_of: np.ndarray,
        new_buyer: np.ndarray,
        country_draw: np.ndarray,
        channel_draw: np.ndarray,
        ordered_seconds: np.ndarray,
    ) -> tuple[np.ndarray, dict[str, int]]:
        """The day's orders (one per purchasing session, in session order) and their lines."""
        rng = self._rng(day, _ORDERS)
        m = len(buyers)
        order_ids = self._max_id(orders.c.order_id) + 1 + np.arange(m)
        customer_ids = customer_of[buyers]
        codes = list(pop.COUNTRIES)
        known_country = self._countries_of(customer_ids[~new_buyer])
        country = np.array(
            [
                codes[int(country_draw[s])] if is_new else known_country[int(c)]
                for s, c, is_new in zip(buyers, customer_ids, new_buyer, strict=True)
            ],
            dtype=object,
        )
        currency = np.array([pop.COUNTRIES[c][0] for c in country], dtype=object)
        rate_of = {cur: eur_rate(cur, day) for cur in pop.BASE_EUR_RATES}
        rate = np.array([rate_of[c] for c in currency], dtype=np.float64)
        ordered_at = _at(day, ordered_seconds[buyers])
        cancelled = rng.random(m) < P_CANCELLED
        # a cancellation is an update shortly after the order
        updated_at = _at(day, ordered_seconds[buyers] + np.where(cancelled, 300, 0))

        # Lines: 1-4 distinct products per order (the first n of a random ranking of the catalog).
        n_items = rng.integers(1, MAX_ITEMS_PER_ORDER + 1, size=m)
        ranking = np.argpartition(rng.random((m, PRODUCT_COUNT)), MAX_ITEMS_PER_ORDER - 1, axis=1)
        chosen = ranking[:, :MAX_ITEMS_PER_ORDER][np.arange(MAX_ITEMS_PER_ORDER) < n_items[:, None]]
        line_order = np.repeat(np.arange(m), n_items)
        low, high = DRIFT_QUANTITY_RANGE if self._drifted(day) else QUANTITY_RANGE
        quantity = rng.integers(low, high, size=len(chosen))
        price_of = dict(self.conn.execute(select(products.c.product_id, products.c.unit_price_eur_cents)).all())
        product_ids = np.array(sorted(price_of))
        prices = np.array([price_of[int(p)] for p in product_ids], dtype=np.float64)
        line_product = product_ids[chosen]
        local_cents = np.maximum(1, np.rint(prices[chosen] / rate[line_order])).astype(np.int64)
        first_item = self._max_id(order_items.c.order_item_id) + 1

        bulk.insert(
            self.conn,
            orders,
            {
                "order_id": pa.array(order_ids, pa.int64()),
                "customer_id": pa.array(customer_ids, pa.int64()),
                "order_status": pa.array(np.where(cancelled, "cancelled", "placed").astype(object), pa.string()),
                "channel": _pick(pop.CHANNELS, channel_draw[buyers]),
                "country_code": pa.array(country, pa.string()),
                "currency": pa.array(currency, pa.string()),
                "eur_exchange_rate": pa.array(rate, pa.float64()),
                "ordered_at": ordered_at,
                "created_at": ordered_at,
                "updated_at": updated_at,
            },
        )
        line_ordered_at = ordered_at.take(pa.array(line_order))
        lines = bulk.insert(
            self.conn,
            order_items,
            {
                "order_item_id": pa.array(first_item + np.arange(len(chosen)), pa.int64()),
                "order_id": pa.array(order_ids[line_order], pa.int64()),
                "product_id": pa.array(line_product, pa.int64()),
                "quantity": pa.array(quantity, pa.int32()),
                "unit_price_cents": pa.array(local_cents, pa.int64()),
                "created_at": line_ordered_at,
                "updated_at": line_ordered_at,
            },
        )
        return order_ids, {"orders": m, "order_items": lines}

    def _events(
        self,
        day: dt.date,
        kept: np.ndarray,
        steps: np.ndarray,
        page_views: np.ndarray,
        carted: np.ndarray,
        checked_out: np.ndarray,
        purchased: np.ndarray,
        starts: np.ndarray,
        visitors: list[str],
        is_treatment: np.ndarray,
        event_customer: np.ndarray,
        order_of: np.ndarray,
    ) -> int:
        """The kept sessions' events, in session order: start, page views, then the funnel steps."""
        per_session = steps[kept]
        total = int(per_session.sum())
        session = np.repeat(np.arange(len(kept)), per_session)  # position in `kept`
        first_step = np.repeat(np.cumsum(per_session) - per_session, per_session)
        step = np.arange(total) - first_step
        views = page_views[kept][session]
        # event type code: 0 session_start, 1 page_view, 2.. the funnel in order
        code = np.where(step == 0, 0, np.where(step <= views, 1, step - views + 1))
        types = ("session_start", "page_view", *EVENT_FUNNEL)
        stamp = f"{day:%Y%m%d}"
        session_ids = pa.array([f"s{stamp}-{i}" for i in kept])
        positions = pa.array(session)
        customer = event_customer[kept][session]
        is_purchase = code == len(types) - 1
        occurred = _at(day, np.minimum(starts[kept][session] + 60 * step, 86_399))
        first_event = self._max_id(web_events.c.event_id) + 1
        return bulk.insert(
            self.conn,
            web_events,
            {
                "event_id": pa.array(first_event + np.arange(total), pa.int64()),
                "session_id": session_ids.take(positions),
                "visitor_id": pa.array(visitors, pa.string()).take(positions),
                "customer_id": pa.array(customer, pa.int64(), mask=customer == 0),
                "event_type": _pick(types, code),
                "experiment_key": pa.array([pop.EXPERIMENT_KEY] * total, pa.string()),
                "experiment_variant": _pick(pop.VARIANTS, is_treatment[kept][session].astype(np.int64)),
                "order_id": pa.array(order_of[kept][session], pa.int64(), mask=~is_purchase),
                "occurred_at": occurred,
                "created_at": occurred,
            },
        )

    # -- fulfilment and returns ------------------------------------------------------------
    def _advance_status(self, day: dt.date, old: str, new: str, days_after: int) -> int:
        lo, hi = _day_bounds(day - dt.timedelta(days=days_after))
        ids = np.array(
            self.conn.execute(
                select(orders.c.order_id)
                .where(and_(orders.c.order_status == old, orders.c.ordered_at >= lo, orders.c.ordered_at < hi))
                .order_by(orders.c.order_id)
            )
            .scalars()
            .all(),
            dtype=np.int64,
        )
        return bulk.execute_many(
            self.conn,
            "update orders set order_status = :p, updated_at = :p where order_id = :p",
            [pa.array([new] * len(ids)), _at(day, 3600 + 36 * (ids % 1000)), pa.array(ids, pa.int64())],
        )

    def _items_ordered_on(self, day: dt.date) -> tuple[int, int] | None:
        """The order_item_id range holding every item ordered on `day` (and maybe a few of the
        neighbouring days, at midnight). An item's updated_at is its order's ordered_at: items
        are never updated, and updated_at is indexed."""
        if day not in self._item_ranges:
            lo, hi = _day_bounds(day)
            row = self.conn.execute(
                select(func.min(order_items.c.order_item_id), func.max(order_items.c.order_item_id)).where(
                    and_(order_items.c.updated_at >= lo, order_items.c.updated_at < hi)
                )
            ).one()
            self._item_ranges[day] = None if row[0] is None else (int(row[0]), int(row[1]))
        return self._item_ranges[day]

    def _returns(self, day: dt.date) -> int:
        """Items come back between 4 and 14 days after a delivered order, decided per item (the
        item's hash against its customer's return probability)."""
        span = RETURN_DELAY_DAYS[1] - RETURN_DELAY_DAYS[0] + 1
        expected_date: dict[int, dt.date] = {}
        for delay in range(RETURN_DELAY_DAYS[0], RETURN_DELAY_DAYS[1] + 1):
            ordered_on = day - dt.timedelta(days=delay)
            id_range = self._items_ordered_on(ordered_on)
            if id_range is None:
                continue
            ids = np.arange(id_range[0], id_range[1] + 1)
            returned = unit_hash(self.seed, _HASH_RETURN, ids) < P_ITEM_RETURNED_MAX  # maybe: see below
            delays = RETURN_DELAY_DAYS[0] + (unit_hash(self.seed, _HASH_DELAY, ids) * span).astype(np.int64)
            for item_id in ids[returned & (delays == delay)]:
                expected_date[int(item_id)] = ordered_on
        candidates = []
        for chunk in _chunks(sorted(expected_date)):
            candidates += self.conn.execute(
                select(
                    order_items.c.order_item_id,
                    order_items.c.order_id,
                    order_items.c.quantity,
                    order_items.c.unit_price_cents,
                    orders.c.ordered_at,
                    orders.c.customer_id,
                )
                .join(orders, orders.c.order_id == order_items.c.order_id)
                .where(and_(order_items.c.order_item_id.in_(chunk), orders.c.order_status == "delivered"))
            ).all()
        due = sorted(row for row in candidates if row[4].date() == expected_date[row[0]])
        if due:
            due_items = np.array([row[0] for row in due], dtype=np.int64)
            _, fussiness = customer_traits(self.seed, np.array([row[5] for row in due], dtype=np.int64))
            keep = unit_hash(self.seed, _HASH_RETURN, due_items) < item_return_probability(fussiness)
            due = [row for row, kept in zip(due, keep, strict=True) if kept]
        chosen = [row[:5] for row in due]
        if not chosen:
            return 0
        item_id, order_id, quantity, unit_cents, _ = (np.array(col) for col in zip(*chosen, strict=True))
        rng = self._rng(day, _RETURNS)
        returned_qty = 1 + (unit_hash(self.seed, _HASH_QUANTITY, item_id) * quantity).astype(np.int64)
        returned_at = _at(day, rng.uniform(0, 86_399, size=len(chosen)))
        return bulk.insert(
            self.conn,
            returns,
            {
                "return_id": pa.array(self._max_id(returns.c.return_id) + 1 + np.arange(len(chosen)), pa.int64()),
                "order_item_id": pa.array(item_id, pa.int64()),
                "order_id": pa.array(order_id, pa.int64()),
                "quantity": pa.array(returned_qty, pa.int32()),
                "refund_cents": pa.array(returned_qty * unit_cents, pa.int64()),
                "reason": _pick(pop.RETURN_REASONS, rng.integers(len(pop.RETURN_REASONS), size=len(chosen))),
                "returned_at": returned_at,
                "created_at": returned_at,
                "updated_at": returned_at,
            },
        )

    def _customer_updates(self, day: dt.date) -> int:
        """A few customers change their marketing consent each day (an update, not an insert)."""
        max_customer = self._max_id(customers.c.customer_id)
        if max_customer < 10:
            return 0
        rng = self._rng(day, _CUSTOMER_UPDATES)
        changed = np.unique(rng.integers(1, max_customer + 1, size=max(1, max_customer // 200)))
        day_start = _at(day, 0)[0]
        bulk.execute_many(
            self.conn,
            "update customers set marketing_opt_in = not marketing_opt_in, updated_at = :p "
            "where customer_id = :p and created_at < :p",
            [
                _at(day, rng.uniform(0, 86_399, size=len(changed))),
                pa.array(changed, pa.int64()),
                pa.array([day_start.as_py()] * len(changed), _TS),
            ],
        )
        return len(changed)

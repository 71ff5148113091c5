"""What each gate demands of each table, as plain data (no Great Expectations import here).

Gate 1 specs describe a landed raw batch. Column names and types are not repeated here: they
come from the extraction contract (`ingestion.app_db.contract.CONTRACTS`), so the gate checks a
batch against exactly what landing promised. This module adds the rules the contract cannot
express: which columns must be filled, allowed values, numeric ranges and text patterns.

Gate 2 specs describe a mart in the warehouse: the columns it must have and the SQL that reads
it, including derived columns some checks need (e.g. the previous day, for the no-gaps check).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Range:
    """Inclusive bounds; None leaves that side open."""

    min_value: float | None = None
    max_value: float | None = None
    strict_min: bool = False  # True: the value must be greater than min_value, not equal


@dataclass(frozen=True)
class RawTableSpec:
    """Gate 1 rules for one landed table. The key is unique and not null within a batch."""

    table: str
    key: str
    required: tuple[str, ...] = ()  # not null, besides the key
    value_sets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ranges: Mapping[str, Range] = field(default_factory=dict)
    patterns: Mapping[str, str] = field(default_factory=dict)  # regular expressions the non-null values must match


ORDER_STATUSES = ("placed", "shipped", "delivered", "cancelled")
CHANNELS = ("web", "mobile", "marketplace")
CURRENCIES = ("EUR", "GBP", "USD", "SEK")
EVENT_TYPES = ("session_start", "page_view", "add_to_cart", "checkout", "purchase")
EXPERIMENT_VARIANTS = ("control", "treatment")
COUNTRY_CODE = r"^[A-Z]{2}$"
_STAMPS = ("created_at", "updated_at")

RAW_TABLES: Mapping[str, RawTableSpec] = MappingProxyType(
    {
        spec.table: spec
        for spec in [
            RawTableSpec(
                "customers",
                key="customer_id",
                required=("email", "full_name", "country_code", "marketing_opt_in", *_STAMPS),
                patterns={"country_code": COUNTRY_CODE},
            ),
            RawTableSpec(
                "products",
                key="product_id",
                required=("sku", "product_name", "category", "unit_price_eur_cents", "is_active", *_STAMPS),
                ranges={"unit_price_eur_cents": Range(min_value=0)},
            ),
            RawTableSpec(
                "orders",
                key="order_id",
                required=(
                    "customer_id",
                    "order_status",
                    "channel",
                    "country_code",
                    "currency",
                    "eur_exchange_rate",
                    "ordered_at",
                    *_STAMPS,
                ),
                value_sets={"order_status": ORDER_STATUSES, "channel": CHANNELS, "currency": CURRENCIES},
                ranges={"eur_exchange_rate": Range(min_value=0, strict_min=True)},
                patterns={"country_code": COUNTRY_CODE},
            ),
            RawTableSpec(
                "order_items",
                key="order_item_id",
                required=("order_id", "product_id", "quantity", "unit_price_cents", *_STAMPS),
                ranges={"quantity": Range(min_value=1), "unit_price_cents": Range(min_value=0)},
            ),
            RawTableSpec(
                "returns",
                key="return_id",
                required=("order_item_id", "order_id", "quantity", "refund_cents", "reason", "returned_at", *_STAMPS),
                ranges={"quantity": Range(min_value=1), "refund_cents": Range(min_value=0)},
            ),
            RawTableSpec(
                "web_events",
                key="event_id",
                # customer_id and order_id stay empty for anonymous visits and non-purchase events.
                required=(
                    "session_id",
                    "visitor_id",
                    "event_type",
                    "experiment_key",
                    "experiment_variant",
                    "occurred_at",
                    "created_at",
                ),
                value_sets={"event_type": EVENT_TYPES, "experiment_variant": EXPERIMENT_VARIANTS},
            ),
        ]
    }
)


@dataclass(frozen=True)
class MartSpec:
    """Gate 2 input: a mart table, the columns it must have and the query that reads it."""

    table: str
    columns: tuple[str, ...]
    query: str
    derived_columns: tuple[str, ...] = field(default=())


MARTS: Mapping[str, MartSpec] = MappingProxyType(
    {
        "fct_daily_revenue": MartSpec(
            "fct_daily_revenue",
            columns=(
                "revenue_date",
                "gross_revenue_eur",
                "returns_eur",
                "net_revenue_eur",
                "orders",
                "average_order_value_eur",
            ),
            # The no-gaps check compares each day's predecessor with the calendar day before it.
            query=(
                "select *, "
                "lag(revenue_date) over (order by revenue_date) as previous_revenue_date, "
                "revenue_date - 1 as day_before_revenue_date "
                "from marts.fct_daily_revenue"
            ),
            derived_columns=("previous_revenue_date", "day_before_revenue_date"),
        ),
    }
)

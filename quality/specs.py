"""What each gate demands of each table, as plain data (no Great Expectations import here).

Gate 1 specs describe a landed raw batch. Column names and types are not repeated here: they
come from the extraction contract (`ingestion.app_db.contract.CONTRACTS`), so the gate checks a
batch against exactly what landing promised. This module adds the rules the contract cannot
express: which columns must be filled, allowed values, numeric ranges and text patterns.

Gate 2 specs describe a daily mart in the warehouse: the columns it must have, the source
tables every day of it must have been loaded from, and the KPIs checked against their trailing
window (`AnomalyBounds`); `quality.mart_frames` turns them into the derived columns the suite
checks. Personal-data columns come from the contract's classification (`personal_columns`).
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


def personal_columns(table: str) -> dict[str, str]:
    """Columns of a landed table classified as personal data (column -> "pii:<kind>").

    From the extraction contract's classification; gate results never record their values.
    """
    from ingestion.app_db.contract import CONTRACTS

    contract = CONTRACTS.get(table)
    if contract is None:
        return {}
    return {
        c: contract.classification_of(c) for c in contract.columns if contract.classification_of(c).startswith("pii")
    }


@dataclass(frozen=True)
class AnomalyBounds:
    """A KPI column checked against the trailing window of its own history.

    A day is anomalous when |value - median| exceeds both `mads` scaled median absolute
    deviations (MAD x 1.4826, a robust standard deviation) and `share` of |median|, the median
    and MAD taken over the `window_days` before it. The share is a floor for flat histories
    (MAD near 0), where ordinary noise would otherwise count as an anomaly.

    Calibrated on a simulated year at the demo scale (~100 orders a day, net revenue's scaled
    MAD ~13 % of its median): the largest deviation was 5.4 scaled MADs (a November weekend),
    8 days exceeded 4. So 7 blocks none of them but blocks a doubled day, a day at zero or a
    10x spike; 4 warns on about one day in 45. At a tenth of the scale (~10 orders a day, MAD
    ~25 %) only gross errors (10x) block; a missing day is caught by the run-ledger check.
    """

    column: str
    window_days: int = 28
    min_history_days: int = 14  # fewer published days before it: the day is not judged
    block_mads: float = 7.0
    block_share: float = 0.5
    warn_mads: float = 4.0
    warn_share: float = 0.3


@dataclass(frozen=True)
class MartSpec:
    """Gate 2 input: a daily mart, the columns it must have, and how its days are checked.

    The gate reads the mart through `quality.mart_frames`, which adds derived columns the
    expectations test: the previous row's date (no gaps), days that were never loaded into
    `raw` (every day present), and the anomaly verdicts against the published history.
    """

    table: str
    columns: tuple[str, ...]
    date_column: str
    # A day counts as loaded when the run ledger has a load of each of these (source, table).
    loaded_from: tuple[tuple[str, str], ...] = ()
    anomalies: tuple[AnomalyBounds, ...] = ()
    # Days whose anomaly is real (a promotion, an outage) and accepted after review: date -> why.
    accepted_anomalies: Mapping[str, str] = field(default_factory=dict)

    @property
    def derived_columns(self) -> tuple[str, ...]:
        return (
            "previous_" + self.date_column,
            "day_before_" + self.date_column,
            "unloaded_" + self.date_column,
            *(name for a in self.anomalies for name in (anomaly_column(a), unusual_column(a))),
        )


def anomaly_column(bounds: AnomalyBounds) -> str:
    """Derived column: why a day is outside the blocking bounds (null when it is not)."""
    return f"{bounds.column}_anomaly"


def unusual_column(bounds: AnomalyBounds) -> str:
    """Derived column: why a day is outside the warning bounds (null when it is not)."""
    return f"{bounds.column}_unusual"


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
            date_column="revenue_date",
            loaded_from=(("shop", "orders"), ("shop", "order_items"), ("shop", "returns")),
            anomalies=(AnomalyBounds("net_revenue_eur"),),
            accepted_anomalies={},
        ),
    }
)

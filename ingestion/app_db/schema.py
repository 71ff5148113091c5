"""The shop's operational database schema (the internal source), as SQLAlchemy Core tables.

The simulator writes these tables and the extractor reads them; the same definitions work on
SQLite (the embedded default) and PostgreSQL (given a URL). Money is integer cents, times are UTC.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
)

metadata = MetaData()


def _timestamps() -> list[Column]:
    return [
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False, index=True),
    ]


customers = Table(
    "customers",
    metadata,
    Column("customer_id", BigInteger, primary_key=True, autoincrement=False),
    Column("email", String(200), nullable=False),
    Column("full_name", String(200), nullable=False),
    Column("phone", String(40)),
    Column("street_address", String(200)),
    Column("city", String(100)),
    Column("country_code", String(2), nullable=False),
    Column("birth_date", Date),
    Column("marketing_opt_in", Boolean, nullable=False),
    *_timestamps(),
)

products = Table(
    "products",
    metadata,
    Column("product_id", BigInteger, primary_key=True, autoincrement=False),
    Column("sku", String(40), nullable=False),
    Column("product_name", String(200), nullable=False),
    Column("category", String(60), nullable=False),
    Column("unit_price_eur_cents", BigInteger, nullable=False),
    Column("is_active", Boolean, nullable=False),
    *_timestamps(),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", BigInteger, primary_key=True, autoincrement=False),
    Column("customer_id", BigInteger, ForeignKey("customers.customer_id"), nullable=False),
    Column("order_status", String(20), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("country_code", String(2), nullable=False),
    Column("currency", String(3), nullable=False),
    # EUR per one unit of `currency`, fixed when the order is placed (what the shop charged).
    Column("eur_exchange_rate", Float, nullable=False),
    Column("ordered_at", DateTime, nullable=False, index=True),
    *_timestamps(),
)

order_items = Table(
    "order_items",
    metadata,
    Column("order_item_id", BigInteger, primary_key=True, autoincrement=False),
    Column("order_id", BigInteger, ForeignKey("orders.order_id"), nullable=False),
    Column("product_id", BigInteger, ForeignKey("products.product_id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_cents", BigInteger, nullable=False),
    *_timestamps(),
)

returns = Table(
    "returns",
    metadata,
    Column("return_id", BigInteger, primary_key=True, autoincrement=False),
    Column("order_item_id", BigInteger, ForeignKey("order_items.order_item_id"), nullable=False),
    Column("order_id", BigInteger, ForeignKey("orders.order_id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("refund_cents", BigInteger, nullable=False),
    Column("reason", String(40), nullable=False),
    Column("returned_at", DateTime, nullable=False),
    *_timestamps(),
)

web_events = Table(
    "web_events",
    metadata,
    Column("event_id", BigInteger, primary_key=True, autoincrement=False),
    Column("session_id", String(40), nullable=False),
    Column("visitor_id", String(40), nullable=False),
    Column("customer_id", BigInteger),
    Column("event_type", String(20), nullable=False),
    Column("experiment_key", String(60), nullable=False),
    Column("experiment_variant", String(20), nullable=False),
    Column("order_id", BigInteger),
    Column("occurred_at", DateTime, nullable=False),
    Column("created_at", DateTime, nullable=False, index=True),
)

TABLES: dict[str, Table] = {t.name: t for t in metadata.sorted_tables}

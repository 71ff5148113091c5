"""The extraction contract of the internal source: what we take from each table, and how.

For each table: its key, the column that tells us a row changed (the watermark), and the Arrow
type of every column we land. Landing against a declared schema (not whatever the driver
returns) keeps Parquet files stable across SQLite and PostgreSQL and makes drift visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

TS = pa.timestamp("us")


# How a table's rows for day ds are chosen:
#   changed_at    rows whose `changed_at` falls in [ds, ds + 1 day): updated tables (versions)
#   key_watermark insert-only tables with increasing keys, by key window (extract.py): the day's
#                 rows at or below the previous extract's highest source key, and the rows above
#                 it created before ds + 1 day, so rows committed late, with an earlier
#                 timestamp, are still picked up by the next run, and none is skipped. It
#                 assumes a key is visible once a higher one is: true of SQLite's single writer;
#                 a PostgreSQL source with concurrent writers can commit a sequence value after a
#                 higher one, and a row committed that late is missed, as by any watermark read
#                 from a live primary (change data capture, e.g. logical replication, is the fix)
#   snapshot      the whole table as of the extract: small tables; rows missing from the
#                 previous snapshot are reported as hard deletes
MODES = ("changed_at", "key_watermark", "snapshot")
#
# Tables are extracted independently, so a parent can land after its children: an order placed
# at 23:55 and cancelled at 00:00 has its last change on the next day, and lands with that day's
# extract while its lines land today. We keep each partition a pure change window and let dbt
# tolerate the gap for one extract day (`relationships_settled` on stg_shop__order_items, plus a
# warn-level `relationships` that lists the waiting lines). Landing the parents with their lines
# instead would put rows changed after the day into the day's partition (breaking the watermark
# and gate 1's freshness check) and, in a backfill, copy nearly every order into two partitions.


@dataclass(frozen=True)
class TableContract:
    """How one app-DB table is extracted and landed."""

    name: str
    key: str
    changed_at: str  # the change timestamp (also the landed partition's watermark column)
    schema: pa.Schema
    mode: str = "changed_at"
    # Rows can be hard-deleted in the source (not only updated): landing reports deleted keys in
    # the manifest by a key-set diff of the lake against the source (ingestion/app_db/deletes.py).
    # Snapshot tables always report them (snapshot against snapshot). In the shop's operational
    # model only customer accounts are deleted (on the customer's request); orders are cancelled,
    # never deleted; order lines and returns are financial records kept by law; web events are
    # insert-only. A source where that is not true sets this on the table.
    hard_deletes: bool = False
    # Column classification at creation: "public", "internal" (the default) or "pii:<kind>".
    # It travels to the dbt source YAML (meta/tags) and the catalog; `governance` checks it.
    classification: dict[str, str] = field(default_factory=dict)

    def classification_of(self, column: str) -> str:
        return self.classification.get(column, "internal")

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"{self.name}: unknown extraction mode {self.mode!r}; one of {MODES}")

    @property
    def columns(self) -> list[str]:
        return self.schema.names


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(n, t) for n, t in fields])


_TIMESTAMPS = (("created_at", TS), ("updated_at", TS))

CONTRACTS: dict[str, TableContract] = {
    c.name: c
    for c in [
        TableContract(
            "customers",
            "customer_id",
            "updated_at",
            _schema(
                ("customer_id", pa.int64()),
                ("email", pa.string()),
                ("full_name", pa.string()),
                ("phone", pa.string()),
                ("street_address", pa.string()),
                ("city", pa.string()),
                ("country_code", pa.string()),
                ("birth_date", pa.date32()),
                ("marketing_opt_in", pa.bool_()),
                *_TIMESTAMPS,
            ),
            classification={
                "email": "pii:email",
                "full_name": "pii:name",
                "phone": "pii:phone",
                "street_address": "pii:address",
                "city": "internal",  # a quasi-identifier only together with the fields above
                "birth_date": "pii:birth_date",
                "country_code": "public",
            },
            hard_deletes=True,  # an account deleted on request disappears from the app DB
        ),
        TableContract(
            "products",
            "product_id",
            "updated_at",
            mode="snapshot",
            schema=_schema(
                ("product_id", pa.int64()),
                ("sku", pa.string()),
                ("product_name", pa.string()),
                ("category", pa.string()),
                ("unit_price_eur_cents", pa.int64()),
                ("is_active", pa.bool_()),
                *_TIMESTAMPS,
            ),
            classification={"sku": "public", "product_name": "public", "category": "public"},
        ),
        TableContract(
            "orders",
            "order_id",
            "updated_at",
            _schema(
                ("order_id", pa.int64()),
                ("customer_id", pa.int64()),
                ("order_status", pa.string()),
                ("channel", pa.string()),
                ("country_code", pa.string()),
                ("currency", pa.string()),
                ("eur_exchange_rate", pa.float64()),
                ("ordered_at", TS),
                *_TIMESTAMPS,
            ),
        ),
        TableContract(
            "order_items",
            "order_item_id",
            "updated_at",
            _schema(
                ("order_item_id", pa.int64()),
                ("order_id", pa.int64()),
                ("product_id", pa.int64()),
                ("quantity", pa.int32()),
                ("unit_price_cents", pa.int64()),
                *_TIMESTAMPS,
            ),
        ),
        TableContract(
            "returns",
            "return_id",
            "updated_at",
            _schema(
                ("return_id", pa.int64()),
                ("order_item_id", pa.int64()),
                ("order_id", pa.int64()),
                ("quantity", pa.int32()),
                ("refund_cents", pa.int64()),
                ("reason", pa.string()),
                ("returned_at", TS),
                *_TIMESTAMPS,
            ),
        ),
        TableContract(
            "web_events",
            "event_id",
            "created_at",
            mode="key_watermark",  # events are only ever inserted, with increasing ids
            schema=_schema(
                ("event_id", pa.int64()),
                ("session_id", pa.string()),
                ("visitor_id", pa.string()),
                ("customer_id", pa.int64()),
                ("event_type", pa.string()),
                ("experiment_key", pa.string()),
                ("experiment_variant", pa.string()),
                ("order_id", pa.int64()),
                ("occurred_at", TS),
                ("created_at", TS),
            ),
            # a cookie id linked to a person once they log in: pseudonymous personal data
            classification={"visitor_id": "pii:online_identifier"},
        ),
    ]
}

SOURCE_NAME = "shop"

"""The partner file contracts: what each partner promised to drop in `lake/inbox/<partner>/`.

A contract is the single description of a partner's files that every step reads: the file format
(CSV dialect or JSON), the accepted encodings, the exact field names, each field's type,
nullability and allowed values, the key that must be unique within a file, and each field's
classification (public / internal / pii with its kind), which the governance layer reads through
`column_classification()`. The business date of a file is part of the contract too: it is taken
from the file name (`..._YYYY-MM-DD.csv` or `..._YYYYMMDD.csv`) and becomes the lake partition `ds`.

Adding a partner = adding a `PartnerContract` to `CONTRACTS` (and a folder in the inbox).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Literal

import pyarrow as pa

from core.policies import MAX_BAD_ROW_RATIO

ColumnType = Literal["string", "integer", "decimal", "date"]
Classification = Literal["public", "internal", "pii"]

SOURCE_NAME = "partner_files"  # lake/raw/partner_files/<partner>/ds=.../

# Lineage columns added to every landed row: which file (by content) and which row it came from.
LINEAGE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("_file_sha256", pa.string(), nullable=False),
    pa.field("_file_name", pa.string(), nullable=False),
    pa.field("_file_row", pa.int64(), nullable=False),
)

# European ISO 3166 country codes a B2B reseller ships to.
EUROPE = frozenset(
    "AT BE BG CH CY CZ DE DK EE ES FI FR GB GR HR HU IE IS IT LI LT LU LV MT NL NO PL PT RO SE SI SK".split()
)


@dataclass(frozen=True)
class Column:
    """One field of a partner file: type, constraints and classification."""

    name: str
    type: ColumnType
    description: str
    classification: Classification
    pii_kind: str | None = None  # email, name, phone, ... when classification == "pii"
    nullable: bool = False
    min_value: int | Decimal | None = None
    max_value: int | Decimal | None = None
    allowed: frozenset[str] | None = None
    pattern: str | None = None  # full match; ASCII classes only ([0-9], not \d, which takes any script's digits)
    max_length: int | None = None
    not_after_file_date: bool = False  # a date column may not be later than the file's business date
    precision: int = 12  # decimal only
    scale: int = 2  # decimal only
    # Strings are single-line and may not start like a spreadsheet formula (= + - @) unless this is
    # set: free text that may span lines and is never exported as it is (dropped in dbt staging).
    multiline: bool = False

    @property
    def arrow_type(self) -> pa.DataType:
        return {
            "string": pa.string(),
            "integer": pa.int64(),
            "decimal": pa.decimal128(self.precision, self.scale),
            "date": pa.date32(),
        }[self.type]


@dataclass(frozen=True)
class PartnerContract:
    """Everything the pipeline may assume about one partner's files."""

    partner: str
    description: str
    owner: str  # who we call when the partner's files break
    format: Literal["csv", "json"]  # json = JSON lines or one JSON array of objects
    extensions: tuple[str, ...]
    encodings: tuple[str, ...]  # tried in this order; anything else is quarantined, never guessed
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # unique within a file
    delimiter: str = ","
    quotechar: str = '"'
    decimal_separator: str = "."
    date_format: str = "%Y-%m-%d"
    # Good rows of a file are loaded while bad rows are at most this share of its rows; above it
    # the whole file is quarantined (PARTNER_FILES_MAX_BAD_ROW_RATIO overrides it for all partners).
    max_bad_row_ratio: float = MAX_BAD_ROW_RATIO
    watermark_column: str | None = None  # recorded in the lake manifest
    # A file with no data rows (a header only, `[]`) never replaces a day that already holds rows:
    # it is quarantined, because an export that lost its rows looks exactly like that. Set this
    # for a partner whose empty file really means "that day has no rows any more"
    # (PARTNER_FILES_ALLOW_EMPTY_REPLACEMENT=1 sets it for all partners).
    allow_empty_replacement: bool = False
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def table(self) -> str:
        """The warehouse table: raw.partner_<partner>."""
        return f"partner_{self.partner}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def arrow_schema(self) -> pa.Schema:
        """The landed Parquet schema: the contract's fields in order, then the lineage fields."""
        fields = [pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in self.columns]
        return pa.schema(fields + list(LINEAGE_FIELDS))

    def describe(self) -> dict:
        """A JSON-ready description (for reports, docs and the governance catalog)."""
        out = asdict(self)
        for col in out["columns"]:
            for name in ("min_value", "max_value"):
                if isinstance(col[name], Decimal):
                    col[name] = str(col[name])
            if col["allowed"] is not None:
                col["allowed"] = sorted(col["allowed"])
        out["table"] = f"raw.{self.table}"
        return out


WHOLESALE_ORDERS = PartnerContract(
    partner="wholesale_orders",
    description=(
        "A B2B reseller's daily order file: one line per order line, exported from their ERP. "
        "Semicolon separated, decimal comma, often cp1252 (Windows) encoded."
    ),
    owner="partner-ops@reseller.example (ERP export), internal owner: data-engineering",
    format="csv",
    extensions=(".csv",),
    encodings=("utf-8", "cp1252"),
    delimiter=";",
    decimal_separator=",",
    key=("order_ref", "sku"),
    watermark_column="order_date",
    columns=(
        Column(
            "order_ref",
            "string",
            "The reseller's order number.",
            "internal",
            pattern=r"WO-[0-9]{6,10}",
        ),
        Column(
            "order_date",
            "date",
            "Day the reseller took the order (YYYY-MM-DD); not after the file's date.",
            "internal",
            not_after_file_date=True,
        ),
        Column("sku", "string", "Our product SKU.", "public", pattern=r"SKU-[0-9]{5}"),
        Column("quantity", "integer", "Units ordered.", "internal", min_value=1, max_value=10_000),
        Column(
            "unit_price_eur",
            "decimal",
            "Agreed net unit price in EUR, two decimals, decimal comma.",
            "internal",
            min_value=Decimal("0.01"),
            max_value=Decimal("100000.00"),
        ),
        Column("country_code", "string", "Ship-to country (ISO 3166-1 alpha-2).", "public", allowed=EUROPE),
        Column(
            "ship_to_city",
            "string",
            "Ship-to city of the reseller's business customer (not a person).",
            "internal",
            nullable=True,
            max_length=80,
        ),
    ),
    tags=("b2b", "orders"),
)

PRODUCT_REVIEWS = PartnerContract(
    partner="product_reviews",
    description=(
        "A review platform's daily export of new product reviews, JSON lines (or a JSON array), UTF-8. "
        "Contains the reviewer's e-mail address: PII."
    ),
    owner="feeds@reviews.example, internal owner: data-engineering",
    format="json",
    extensions=(".jsonl", ".ndjson", ".json"),
    encodings=("utf-8",),
    key=("review_id",),
    watermark_column="review_date",
    max_bad_row_ratio=MAX_BAD_ROW_RATIO,
    columns=(
        Column("review_id", "string", "The platform's review id.", "internal", pattern=r"RV-[0-9]{6,12}"),
        Column("sku", "string", "Our product SKU.", "public", pattern=r"SKU-[0-9]{5}"),
        Column("rating", "integer", "Stars, 1 to 5.", "public", min_value=1, max_value=5),
        Column(
            "review_date",
            "date",
            "Day the review was written (YYYY-MM-DD); not after the file's date.",
            "internal",
            not_after_file_date=True,
        ),
        Column(
            "reviewer_email",
            "string",
            "The reviewer's e-mail address.",
            "pii",
            pii_kind="email",
            pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+",
            max_length=254,
        ),
        Column(
            "review_text",
            "string",
            "Free text of the review; may mention names (treated as PII).",
            "pii",
            pii_kind="free_text",
            nullable=True,
            max_length=5_000,
            multiline=True,
        ),
    ),
    tags=("reviews",),
)

CONTRACTS: dict[str, PartnerContract] = {c.partner: c for c in (WHOLESALE_ORDERS, PRODUCT_REVIEWS)}


def column_classification() -> dict[str, dict[str, dict[str, str | None]]]:
    """Classification of every warehouse column the partner files produce, for the governance catalog.

    `{"raw.partner_product_reviews": {"reviewer_email": {"classification": "pii", "pii_kind": "email"}, ...}}`
    Lineage columns (`_file_sha256`, `_file_name`, `_file_row`) are internal.
    """
    out: dict[str, dict[str, dict[str, str | None]]] = {}
    for contract in CONTRACTS.values():
        cols = {c.name: {"classification": c.classification, "pii_kind": c.pii_kind} for c in contract.columns}
        for lineage in LINEAGE_FIELDS:
            cols[lineage.name] = {"classification": "internal", "pii_kind": None}
        out[f"raw.{contract.table}"] = cols
    return out

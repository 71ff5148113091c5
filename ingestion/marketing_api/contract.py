"""The declared contract of the marketing API: which fields each endpoint sends, and our tables.

Each endpoint's records are checked field by field against this declaration (see `drift`), then
turned into a typed Arrow table whose columns are exactly the warehouse table's. Declaring it
here, not inferring it from the response, is what makes a change on the vendor's side visible.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pyarrow as pa

SOURCE_NAME = "marketing_api"  # folder under lake/raw/

JSON_TYPES = ("string", "integer", "number", "date")


class ContractViolation(ValueError):
    """Records that match the declared fields but cannot be right (wrong day, duplicate key)."""


@dataclass(frozen=True)
class Field:
    """One field of an endpoint's records: its JSON name and type, and the column it becomes."""

    name: str
    json_type: str  # one of JSON_TYPES; "date" is a string in ISO format YYYY-MM-DD
    column: str
    arrow_type: pa.DataType


@dataclass(frozen=True)
class EndpointContract:
    """What one endpoint sends per record, and the typed table it lands as."""

    endpoint: str  # lake folder of the raw pages: lake/raw/marketing_api/<endpoint>/
    path: str  # GET path on the API
    table: str  # lake folder of the typed Parquet == warehouse table raw.<table>
    fields: tuple[Field, ...]
    date_field: str  # every record must carry the requested day here
    key: tuple[str, ...]  # unique per day
    # Rows the vendor does not send but the table must hold (FX: EUR itself at 1.0).
    implied_rows: Callable[[dt.date], list[dict]] = field(default=lambda ds: [])

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(f.column, f.arrow_type, nullable=False) for f in self.fields])

    @property
    def field_types(self) -> dict[str, str]:
        return {f.name: f.json_type for f in self.fields}

    def to_table(self, records: Iterable[dict], ds: dt.date) -> pa.Table:
        """Typed rows for day `ds`; the records must already have passed the drift check."""
        columns: dict[str, list] = {f.column: [] for f in self.fields}
        keys: set[tuple] = set()
        for record in records:
            if record[self.date_field] != ds.isoformat():
                raise ContractViolation(
                    f"{self.endpoint}: asked for {ds} but a record has {self.date_field}={record[self.date_field]!r}"
                )
            key = tuple(record[k] for k in self.key)
            if key in keys:
                # The same row on two pages means the paging is broken: do not guess which is right.
                raise ContractViolation(f"{self.endpoint} ds={ds}: duplicate record for key {key}")
            keys.add(key)
            for f in self.fields:
                value = record[f.name]
                columns[f.column].append(dt.date.fromisoformat(value) if f.json_type == "date" else value)
        for row in self.implied_rows(ds):
            if tuple(row[self._column_of(k)] for k in self.key) not in keys:
                for f in self.fields:
                    columns[f.column].append(row[f.column])
        return pa.table(columns, schema=self.schema)

    def _column_of(self, name: str) -> str:
        return next(f.column for f in self.fields if f.name == name)


SPEND = EndpointContract(
    endpoint="spend",
    path="/v1/spend",
    table="marketing_spend",
    fields=(
        Field("date", "date", "spend_date", pa.date32()),
        Field("channel", "string", "channel", pa.string()),
        Field("campaign_id", "string", "campaign_id", pa.string()),
        Field("currency", "string", "currency", pa.string()),
        Field("spend", "number", "spend", pa.float64()),
        Field("impressions", "integer", "impressions", pa.int64()),
        Field("clicks", "integer", "clicks", pa.int64()),
    ),
    date_field="date",
    key=("date", "campaign_id"),
)

FX = EndpointContract(
    endpoint="fx",
    path="/v1/fx",
    table="exchange_rates",
    fields=(
        Field("date", "date", "rate_date", pa.date32()),
        Field("currency", "string", "currency", pa.string()),
        Field("eur_per_unit", "number", "eur_rate", pa.float64()),  # EUR for 1 unit of `currency`
    ),
    date_field="date",
    key=("date", "currency"),
    # The provider quotes against EUR and never lists EUR; marts join every order currency.
    implied_rows=lambda ds: [{"rate_date": ds, "currency": "EUR", "eur_rate": 1.0}],
)

CONTRACTS: dict[str, EndpointContract] = {c.endpoint: c for c in (SPEND, FX)}

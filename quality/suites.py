"""Expectation suites as code: one builder per suite, raw suites generated from `specs`.

Builders return unsaved `great_expectations.ExpectationSuite` objects; `quality.context`
stores them in the committed GX project (`quality/gx/`) idempotently. Great Expectations is
imported inside the builders, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from quality.specs import MARTS, RAW_TABLES, RawTableSpec

if TYPE_CHECKING:
    import great_expectations as gx
    import pyarrow as pa

# Suite parameter filled at run time with the row count the landing manifest promised.
MANIFEST_ROW_COUNT = "manifest_row_count"


def raw_suite_name(table: str) -> str:
    return f"raw.{table}"


def mart_suite_name(table: str) -> str:
    return f"marts.{table}"


def pandas_type_name(arrow_type: pa.DataType) -> str:
    """The type name GX's pandas backend matches for a column loaded by `quality.loaders`.

    The loader turns integers into nullable Int64, floats and decimals into Float64, text into
    the string dtype and booleans into the nullable boolean dtype; dates stay Python dates
    (checked value by value) and timestamps stay numpy datetimes. Time zones are not expected:
    the stack stores naive UTC, and GX 1.24 matches no type name for tz-aware pandas columns.
    """
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        return "int64"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "float64"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "str"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "datetime64"
    raise ValueError(f"no quality type check defined for Arrow type {arrow_type}")


def raw_table_suite(spec: RawTableSpec) -> gx.ExpectationSuite:
    """Gate 1 suite for one landed table: schema, row count, key, required values, domains."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from ingestion.app_db.contract import CONTRACTS

    schema = CONTRACTS[spec.table].schema
    expectations: list = [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(schema.names), exact_match=True),
        gxe.ExpectTableRowCountToEqual(value={"$PARAMETER": MANIFEST_ROW_COUNT}),
    ]
    expectations += [
        gxe.ExpectColumnValuesToBeOfType(column=field.name, type_=pandas_type_name(field.type)) for field in schema
    ]
    expectations += [
        gxe.ExpectColumnValuesToNotBeNull(column=spec.key),
        gxe.ExpectColumnValuesToBeUnique(column=spec.key),
    ]
    expectations += [gxe.ExpectColumnValuesToNotBeNull(column=column) for column in spec.required]
    expectations += [
        gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(values))
        for column, values in spec.value_sets.items()
    ]
    expectations += [
        gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=bounds.min_value, max_value=bounds.max_value, strict_min=bounds.strict_min
        )
        for column, bounds in spec.ranges.items()
    ]
    expectations += [
        gxe.ExpectColumnValuesToMatchRegex(column=column, regex=pattern) for column, pattern in spec.patterns.items()
    ]
    return gx.ExpectationSuite(name=raw_suite_name(spec.table), expectations=expectations)


def fct_daily_revenue_suite() -> gx.ExpectationSuite:
    """Gate 2 suite for marts.fct_daily_revenue: the sanity a published revenue table needs."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    spec = MARTS["fct_daily_revenue"]
    money = ("gross_revenue_eur", "returns_eur", "net_revenue_eur")
    expectations: list = [
        # Extra columns may come and go with the model; these ones the dashboards rely on.
        gxe.ExpectTableColumnsToMatchSet(column_set=[*spec.columns, *spec.derived_columns], exact_match=False),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToNotBeNull(column="revenue_date"),
        gxe.ExpectColumnValuesToBeUnique(column="revenue_date"),
        *[gxe.ExpectColumnValuesToNotBeNull(column=column) for column in (*money, "orders")],
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="gross_revenue_eur",
            column_B="net_revenue_eur",
            or_equal=True,
            notes="Net revenue (gross minus returns) can never exceed gross revenue.",
        ),
        gxe.ExpectColumnValuesToBeBetween(column="gross_revenue_eur", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="returns_eur", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="orders", min_value=0),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="previous_revenue_date",
            column_B="day_before_revenue_date",
            ignore_row_if="either_value_is_missing",
            notes="No gaps: every day between the first and the last revenue_date has a row.",
        ),
    ]
    return gx.ExpectationSuite(name=mart_suite_name(spec.table), expectations=expectations)


def _raw_builder(table: str) -> Callable[[], gx.ExpectationSuite]:
    return lambda: raw_table_suite(RAW_TABLES[table])


# Every suite the gates run, by gate and table name.
SUITES: dict[str, dict[str, Callable[[], gx.ExpectationSuite]]] = {
    "gate1": {table: _raw_builder(table) for table in RAW_TABLES},
    "gate2": {"fct_daily_revenue": fct_daily_revenue_suite},
}

"""Expectation suites as code: one builder per suite, raw suites generated from `specs`.

Builders return unsaved `great_expectations.ExpectationSuite` objects; `quality.context`
stores them in the committed GX project (`quality/gx/`) idempotently. Great Expectations is
imported inside the builders, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from quality.loaders import SNAPSHOT_DAY_END
from quality.specs import MARTS, RAW_TABLES, RawTableSpec, anomaly_column, unusual_column

if TYPE_CHECKING:
    import great_expectations as gx
    import pyarrow as pa

# Suite parameters filled in at run time (quality.gates):
MANIFEST_ROW_COUNT = "manifest_row_count"  # rows the landing manifest promised
BATCH_START = "batch_start"  # the batch's first day, 00:00 (ISO timestamp)
BATCH_END = "batch_end"  # the day after its last day, 00:00: nothing may be newer
RUN_DATE = "run_date"  # gate 2: the newest day the mart must reach (None: not checked)

CRITICAL, WARNING = "critical", "warning"  # GX severities: critical blocks the gate, warning is reported


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


def is_snapshot_table(table: str) -> bool:
    """A landed table whose every day is the whole table as of that day (keys repeat across days)."""
    from ingestion.app_db.contract import CONTRACTS

    return table in CONTRACTS and CONTRACTS[table].mode == "snapshot"


def raw_table_suite(spec: RawTableSpec) -> gx.ExpectationSuite:
    """Gate 1 suite for one landed table: schema, row count, key, required values, domains."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from ingestion.app_db.contract import CONTRACTS

    contract = CONTRACTS[spec.table]
    snapshot = contract.mode == "snapshot"
    schema = contract.schema
    # A snapshot batch's rows carry the end of their day (added by the gate's loader, not landed).
    columns = [*schema.names, SNAPSHOT_DAY_END] if snapshot else list(schema.names)
    expectations: list = [
        gxe.ExpectTableColumnsToMatchSet(column_set=columns, exact_match=True),
        gxe.ExpectTableRowCountToEqual(value={"$PARAMETER": MANIFEST_ROW_COUNT}),
    ]
    expectations += [
        gxe.ExpectColumnValuesToBeOfType(column=field.name, type_=pandas_type_name(field.type)) for field in schema
    ]
    expectations += [
        gxe.ExpectColumnValuesToNotBeNull(column=spec.key),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=[SNAPSHOT_DAY_END, spec.key],
            notes="A snapshot repeats every key each day: a key appears once per day.",
        )
        if snapshot
        else gxe.ExpectColumnValuesToBeUnique(column=spec.key),
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
    expectations += _freshness_expectations(contract)
    return gx.ExpectationSuite(name=raw_suite_name(spec.table), expectations=expectations)


def _freshness_expectations(contract) -> list:
    """The batch holds the day's data: change timestamps inside [batch_start, batch_end).

    Follows how the extractor picks a day's rows (ingestion/app_db/contract.py MODES):
    - changed_at: every row changed during the day (nothing older, nothing from the future);
    - key_watermark (insert-only, late rows allowed): nothing from the future, and the newest
      row should be from the day - an older newest row means the source is lagging (warning);
    - snapshot: the whole table as of the day, so only "created before the day ended".
    """
    import great_expectations.expectations as gxe

    start, end = {"$PARAMETER": BATCH_START}, {"$PARAMETER": BATCH_END}
    column = contract.changed_at
    if contract.mode == "snapshot":
        return [
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=SNAPSHOT_DAY_END,
                column_B="created_at",
                or_equal=False,
                ignore_row_if="either_value_is_missing",
                notes="Freshness: a snapshot of the day holds no row created after the day ended.",
            )
        ]
    if contract.mode == "key_watermark":
        return [
            gxe.ExpectColumnValuesToBeBetween(
                column=column,
                max_value=end,
                strict_max=True,
                notes="Freshness: no row is newer than the batch's day (clock or extract window wrong).",
            ),
            gxe.ExpectColumnMaxToBeBetween(
                column=column,
                min_value=start,
                severity=WARNING,
                notes="Freshness: the newest row should be from the day; an older one means the source lags.",
            ),
        ]
    return [
        gxe.ExpectColumnValuesToBeBetween(
            column=column,
            min_value=start,
            max_value=end,
            strict_max=True,
            notes="Freshness: every row of the batch changed during its day (the batch's watermark window).",
        )
    ]


def fct_daily_revenue_suite() -> gx.ExpectationSuite:
    """Gate 2 suite for marts.fct_daily_revenue: the sanity a published revenue table needs.

    Everything blocks (critical) except the warning band of the anomaly check. The derived
    columns come from `quality.mart_frames`.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    spec = MARTS["fct_daily_revenue"]
    money = ("gross_revenue_eur", "returns_eur", "net_revenue_eur")
    date = spec.date_column
    expectations: list = [
        # Extra columns may come and go with the model; these ones the dashboards rely on.
        gxe.ExpectTableColumnsToMatchSet(column_set=[*spec.columns, *spec.derived_columns], exact_match=False),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToNotBeNull(column=date),
        gxe.ExpectColumnValuesToBeUnique(column=date),
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
            column_A=f"previous_{date}",
            column_B=f"day_before_{date}",
            ignore_row_if="either_value_is_missing",
            notes="No gaps: every day between the first and the last revenue_date has a row.",
        ),
        gxe.ExpectColumnValuesToBeNull(
            column=f"unloaded_{date}",
            notes="Every day present: each day of the mart was loaded into raw (run ledger); a day "
            "that was never landed shows up as a zero day, not as revenue.",
        ),
        gxe.ExpectColumnMaxToBeBetween(
            column=date,
            min_value={"$PARAMETER": RUN_DATE},
            notes="The mart reaches the run's day (by default the newest day loaded for all its sources).",
        ),
    ]
    for bounds in spec.anomalies:
        expectations += [
            gxe.ExpectColumnValuesToBeNull(
                column=anomaly_column(bounds),
                notes=f"KPI spike: {bounds.column} of a new or restated day is outside median +/- "
                f"max({bounds.block_mads:g} scaled MADs, {bounds.block_share:.0%}) of the "
                f"{bounds.window_days} days before it, published values first. Blocks publishing.",
            ),
            gxe.ExpectColumnValuesToBeNull(
                column=unusual_column(bounds),
                severity=WARNING,
                notes=f"Unusual KPI: outside median +/- max({bounds.warn_mads:g} scaled MADs, "
                f"{bounds.warn_share:.0%}) of the trailing window. Reported, does not block.",
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

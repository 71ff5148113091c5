"""A small, realistic serving file for the Superset tests: every mart the dashboards read, no pipeline.

The tables and columns are those of `dbt_project/models/marts/**` (a static test checks that every
dataset column in `superset/assets/` exists in the marts' YAML); the numbers are synthetic but
shaped like the shop's (weekly seasonality, growth, returns, a checkout experiment with a real
effect and one without). Days end yesterday, so the dashboards' relative default ranges ("the last
12 complete weeks") hold data. Deterministic for a given `end` date.

`ops.*` (the Data health dashboard's tables, `quality.health.DDL`) get a few passed and failed
rows, so those charts have something to show too.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pyarrow as pa

from governance.access_log import DDL as ACCESS_LOG_DDL
from quality.health import DDL as OPS_DDL
from serving.publish import write_marts_copy
from serving.schema import ML_DDL

DAYS = 120
# country -> (currency, EUR per unit at checkout, share of orders)
COUNTRIES = {
    "DE": ("EUR", 1.0, 0.34),
    "FR": ("EUR", 1.0, 0.18),
    "NL": ("EUR", 1.0, 0.12),
    "GB": ("GBP", 1.17, 0.16),
    "SE": ("SEK", 0.088, 0.08),
    "US": ("USD", 0.92, 0.12),
}
CHANNELS = {"web": 0.55, "mobile": 0.35, "marketplace": 0.10}
MARKETING_CHANNELS = {"web_search": 420.0, "social": 260.0, "display": 140.0, "affiliate": 90.0, "email": 35.0}
# experiment -> (control purchase rate at checkout, treatment rate): one real effect, one null
EXPERIMENTS = {"checkout_one_page": (0.58, 0.66), "product_badges": (0.61, 0.61)}


def money(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass
class ServingData:
    """The fixture's rows per table (what the tests compute expected numbers from)."""

    end: dt.date
    tables: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def days(self) -> list[dt.date]:
        return [self.end - dt.timedelta(days=DAYS - 1 - i) for i in range(DAYS)]


def _month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _add_months(month: dt.date, months: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _p_two_sided(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def build_data(end: dt.date | None = None, seed: int = 7) -> ServingData:
    """The fixture's rows, ending `end` (default: yesterday, UTC)."""
    end = end or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    rng = random.Random(seed)
    data = ServingData(end)
    days = data.days

    segments: list[dict] = []
    for index, day in enumerate(days):
        weekly = (1.0, 0.95, 0.97, 1.0, 1.1, 1.3, 1.25)[day.weekday()]
        base_orders = 110 * (1 + 0.004 * index) * weekly
        for country, (currency, rate, share) in COUNTRIES.items():
            for channel, channel_share in CHANNELS.items():
                orders = max(0, round(base_orders * share * channel_share * rng.uniform(0.7, 1.3)))
                returns_local = 0.0
                gross_local = sum(rng.uniform(35, 110) / rate for _ in range(orders))
                if index > 7 and rng.random() < 0.6:
                    returns_local = gross_local * rng.uniform(0.02, 0.16)
                if orders == 0 and returns_local == 0:
                    continue
                gross = money(gross_local * rate)
                returns = money(returns_local * rate)
                segments.append(
                    {
                        "revenue_date": day,
                        "country_code": country,
                        "channel": channel,
                        "currency": currency,
                        "gross_revenue_eur": gross,
                        "returns_eur": returns,
                        "net_revenue_eur": gross - returns,
                        "orders": orders,
                        "average_order_value_eur": money(gross / orders) if orders else None,
                        "net_revenue_local": money(gross_local - returns_local),
                        "reference_eur_exchange_rate": rate * rng.uniform(0.99, 1.01),
                        "net_revenue_eur_at_reference_rate": money((gross_local - returns_local) * rate),
                    }
                )
    data.tables["fct_daily_revenue_by_segment"] = segments

    daily: list[dict] = []
    for day in days:
        rows = [row for row in segments if row["revenue_date"] == day]
        gross = sum((row["gross_revenue_eur"] for row in rows), Decimal("0.00"))
        returns = sum((row["returns_eur"] for row in rows), Decimal("0.00"))
        orders = sum(row["orders"] for row in rows)
        daily.append(
            {
                "revenue_date": day,
                "gross_revenue_eur": gross,
                "returns_eur": returns,
                "net_revenue_eur": gross - returns,
                "orders": orders,
                "average_order_value_eur": money(gross / orders) if orders else None,
            }
        )
    data.tables["fct_daily_revenue"] = daily

    monthly: dict[tuple, dict] = {}
    for row in segments:
        key = (_month(row["revenue_date"]), row["country_code"], row["channel"], row["currency"])
        agg = monthly.setdefault(
            key,
            {
                "revenue_month": key[0],
                "country_code": key[1],
                "channel": key[2],
                "currency": key[3],
                "gross_revenue_eur": Decimal("0.00"),
                "returns_eur": Decimal("0.00"),
                "net_revenue_eur": Decimal("0.00"),
                "orders": 0,
                "net_revenue_local": Decimal("0.00"),
                "net_revenue_eur_at_reference_rate": Decimal("0.00"),
            },
        )
        for column in ("gross_revenue_eur", "returns_eur", "net_revenue_eur", "orders", "net_revenue_local"):
            agg[column] += row[column]
        agg["net_revenue_eur_at_reference_rate"] += row["net_revenue_eur_at_reference_rate"]
    for agg in monthly.values():
        agg["average_order_value_eur"] = money(agg["gross_revenue_eur"] / agg["orders"]) if agg["orders"] else None
    data.tables["fct_monthly_revenue_by_segment"] = list(monthly.values())

    activity: list[dict] = []
    for index, day_row in enumerate(daily):
        ordering = round(day_row["orders"] * 0.93)
        new = round(ordering * rng.uniform(0.3, 0.42))
        window = daily[max(0, index - 29) : index + 1]
        activity.append(
            {
                "activity_date": day_row["revenue_date"],
                "ordering_customers": ordering,
                "new_customers": new,
                "returning_customers": ordering - new,
                "active_customers_30d": round(sum(r["orders"] for r in window) * 0.74),
                "has_full_trailing_window": index >= 29,
            }
        )
    data.tables["fct_daily_customer_activity"] = activity

    # Per day x country x channel (no random draws, so the tables after it keep their numbers): every
    # segment every day, zeros included, as the mart has them. Segments sum to a little more than the
    # whole shop (a customer active in two channels counts in both), as in the real mart.
    by_segment_day = {(row["revenue_date"], row["country_code"], row["channel"]): row["orders"] for row in segments}
    active_by_segment: list[dict] = []
    for index, day in enumerate(days):
        window = days[max(0, index - 29) : index + 1]
        for country in COUNTRIES:
            for channel in CHANNELS:
                orders_that_day = by_segment_day.get((day, country, channel), 0)
                window_orders = sum(by_segment_day.get((d, country, channel), 0) for d in window)
                active_by_segment.append(
                    {
                        "activity_date": day,
                        "country_code": country,
                        "channel": channel,
                        "ordering_customers": round(orders_that_day * 0.93),
                        "active_customers_30d": round(window_orders * 0.8),
                        "has_full_trailing_window": index >= 29,
                    }
                )
    data.tables["fct_daily_active_customers_by_segment"] = active_by_segment

    months = sorted({_month(day) for day in days})
    monthly_activity = []
    for month in months:
        rows = [row for row in activity if _month(row["activity_date"]) == month]
        new = sum(row["new_customers"] for row in rows)
        active = round(sum(row["ordering_customers"] for row in rows) * 0.8)
        monthly_activity.append(
            {
                "activity_month": month,
                "active_customers": active,
                "new_customers": new,
                "returning_customers": active - new,
                "is_complete_month": _add_months(month, 1) - dt.timedelta(days=1) <= end,
            }
        )
    data.tables["fct_monthly_customer_activity"] = monthly_activity

    cohorts = []
    for cohort in months:
        size = next(row["new_customers"] for row in monthly_activity if row["activity_month"] == cohort)
        for offset in range(len([m for m in months if m >= cohort])):
            rate = 1.0 if offset == 0 else min(1.0, 0.3 * 0.8 ** (offset - 1) * rng.uniform(0.85, 1.15))
            activity_month = _add_months(cohort, offset)
            active = round(size * rate)
            cohorts.append(
                {
                    "cohort_month": cohort,
                    "months_since_first_order": offset,
                    "activity_month": activity_month,
                    "cohort_customers": size,
                    "active_customers": active,
                    "retention_rate": active / size if size else 0.0,
                    "is_complete_month": _add_months(activity_month, 1) - dt.timedelta(days=1) <= end,
                }
            )
    data.tables["fct_cohort_retention"] = cohorts

    spend = []
    for index, day in enumerate(days):
        for channel, base in MARKETING_CHANNELS.items():
            amount = money(base * (1 + 0.003 * index) * rng.uniform(0.8, 1.2))
            impressions = round(float(amount) * rng.uniform(90, 140))
            clicks = round(impressions * rng.uniform(0.008, 0.03))
            spend.append(
                {
                    "spend_date": day,
                    "marketing_channel": channel,
                    "campaigns": rng.randint(1, 4),
                    "spend_eur": amount,
                    "impressions": impressions,
                    "clicks": clicks,
                    "click_through_rate": clicks / impressions,
                    "cost_per_click_eur": (amount / clicks).quantize(Decimal("0.0001")),
                    "max_rate_age_days": 0 if day.weekday() < 5 else day.weekday() - 4,
                }
            )
    data.tables["fct_daily_marketing_spend"] = spend

    efficiency = []
    for day, day_row, activity_row in zip(days, daily, activity, strict=True):
        total = sum((row["spend_eur"] for row in spend if row["spend_date"] == day), Decimal("0.00"))
        new = activity_row["new_customers"]
        efficiency.append(
            {
                "activity_date": day,
                "marketing_spend_eur": total,
                "new_customers": new,
                "net_revenue_eur": day_row["net_revenue_eur"],
                "customer_acquisition_cost_eur": money(total / new) if new else None,
                "return_on_ad_spend": float(day_row["net_revenue_eur"]) / float(total) if total else None,
            }
        )
    data.tables["fct_daily_marketing_efficiency"] = efficiency

    funnel = []
    totals: dict[tuple[str, str], list[int]] = {}
    for day in days:
        for experiment, rates in EXPERIMENTS.items():
            for variant, purchase_rate in zip(("control", "treatment"), rates, strict=True):
                sessions = rng.randint(380, 460)
                cart = round(sessions * rng.uniform(0.27, 0.33))
                checkout = round(cart * rng.uniform(0.5, 0.56))
                purchase = round(checkout * purchase_rate * rng.uniform(0.95, 1.05))
                funnel.append(
                    {
                        "session_date": day,
                        "experiment_key": experiment,
                        "experiment_variant": variant,
                        "sessions": sessions,
                        "add_to_cart_sessions": cart,
                        "checkout_sessions": checkout,
                        "purchase_sessions": purchase,
                        "add_to_cart_rate": cart / sessions,
                        "checkout_rate": checkout / cart,
                        "purchase_rate": purchase / checkout,
                        "session_conversion_rate": purchase / sessions,
                    }
                )
                total = totals.setdefault((experiment, variant), [0, 0, 0])
                total[0] += round(sessions * 0.7)  # visitors: some visit twice
                total[1] += sessions
                total[2] += purchase
    data.tables["fct_daily_funnel"] = funnel
    data.tables["fct_experiment_results"] = _experiment_results(totals, days)
    data.tables["kpi_dictionary"] = KPI_ROWS
    # Row-level marts (dim_customers, fct_order_lines, fct_sessions) are never published.
    return data


def _experiment_results(totals: dict[tuple[str, str], list[int]], days: list[dt.date]) -> list[dict]:
    rows = []
    for experiment in EXPERIMENTS:
        n0, _, c0 = totals[(experiment, "control")]
        n1 = totals[(experiment, "treatment")][0]
        p0 = c0 / n0
        expected = (n0 + n1) / 2
        chi = ((n0 - expected) ** 2 + (n1 - expected) ** 2) / expected
        srm_p = math.erfc(math.sqrt(chi / 2))
        for variant in ("control", "treatment"):
            n, sessions, c = totals[(experiment, variant)]
            p = c / n
            is_control = variant == "control"
            pooled = (c + c0) / (n + n0)
            z = (p - p0) / math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / n0))
            se = math.sqrt(p * (1 - p) / n + p0 * (1 - p0) / n0)
            rows.append(
                {
                    "experiment_key": experiment,
                    "experiment_variant": variant,
                    "is_control": is_control,
                    "first_exposure_date": days[0],
                    "last_exposure_date": days[-1],
                    "exposed_visitors": n,
                    "sessions": sessions,
                    "converted_visitors": c,
                    "conversion_rate": p,
                    "control_conversion_rate": p0,
                    "absolute_lift": None if is_control else p - p0,
                    "relative_lift": None if is_control else (p - p0) / p0,
                    "lift_ci_lower_95": None if is_control else p - p0 - 1.959964 * se,
                    "lift_ci_upper_95": None if is_control else p - p0 + 1.959964 * se,
                    "z_score": None if is_control else z,
                    "p_value": None if is_control else _p_two_sided(z),
                    "is_significant": None if is_control else _p_two_sided(z) < 0.05,
                    "variant_count": 2,
                    "srm_chi_square": chi,
                    "srm_p_value": srm_p,
                    "has_sample_ratio_mismatch": srm_p < 0.001,
                }
            )
    return rows


KPI_COLUMNS = (
    "metric_name", "label", "description", "metric_type", "owner", "formula", "unit", "grain", "indicator_type",
    "business_question", "source_tables", "defined_in",
)  # fmt: skip
_FINANCE = "models/marts/finance/_finance__models.yml"
KPI_ROWS = [
    dict(zip(KPI_COLUMNS, values, strict=True))
    for values in [
        (
            "net_revenue_eur",
            "Net revenue excluding returns (EUR)",
            "Gross revenue of the period's non-cancelled orders minus the refunds booked in the period.",
            "simple",
            "finance-analytics@shop.example",
            "gross_revenue_eur - returns_eur",
            "EUR",
            "day (additive)",
            "lagging",
            "How much revenue did we keep after returns?",
            "fct_daily_revenue_by_segment",
            _FINANCE,
        ),
        (
            "orders",
            "Orders",
            "Number of non-cancelled orders placed in the period.",
            "simple",
            "finance-analytics@shop.example",
            "count(distinct order_id)",
            "orders",
            "day (additive)",
            "lagging",
            "How many orders did customers place?",
            "fct_daily_revenue_by_segment",
            _FINANCE,
        ),
        (
            "average_order_value_eur",
            "Average order value (EUR)",
            "Gross revenue per non-cancelled order.",
            "ratio",
            "finance-analytics@shop.example",
            "gross_revenue_eur / orders",
            "EUR per order",
            "day (ratio of sums)",
            "lagging",
            "How much does a typical order bring in?",
            "fct_daily_revenue_by_segment",
            _FINANCE,
        ),
        (
            "active_customers_30d",
            "Active customers (30 days)",
            "Customers with a non-cancelled order in the 30 days ending on the day.",
            "simple",
            "growth-analytics@shop.example",
            "count(distinct customer_id) in [day - 29, day]",
            "customers",
            "day (semi-additive)",
            "lagging",
            "How many customers are currently buying from us?",
            "fct_daily_customer_activity",
            "models/marts/customers/_customers__models.yml",
        ),
        (
            "marketing_spend_eur",
            "Marketing spend (EUR)",
            "Paid-marketing spend in the period.",
            "simple",
            "marketing-analytics@shop.example",
            "sum(spend x reference EUR rate)",
            "EUR",
            "day x channel (additive)",
            "leading",
            "How much are we investing in acquisition, and where?",
            "fct_daily_marketing_spend",
            "models/marts/marketing/_marketing__models.yml",
        ),
        (
            "session_conversion_rate",
            "Session conversion rate",
            "Share of sessions that ended in a purchase.",
            "ratio",
            "product-analytics@shop.example",
            "purchase_sessions / sessions",
            "share (0-1)",
            "day x variant",
            "leading",
            "What share of visits buys?",
            "fct_daily_funnel",
            "models/marts/product/_product__models.yml",
        ),
    ]
]


# --- writing the DuckDB file -----------------------------------------------------------------------


def _arrow_type(column: str, value: object) -> pa.DataType:
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    if isinstance(value, Decimal):
        return pa.decimal128(18, 4) if column == "cost_per_click_eur" else pa.decimal128(18, 2)
    if isinstance(value, dt.datetime):
        return pa.timestamp("us")
    if isinstance(value, dt.date):
        return pa.date32()
    return pa.string()


def _arrow_table(rows: list[dict]) -> pa.Table:
    columns = {}
    for column in rows[0]:
        sample = next((row[column] for row in rows if row[column] is not None), None)
        kind = _arrow_type(column, sample) if sample is not None else pa.float64()
        columns[column] = pa.array([row[column] for row in rows], type=kind)
    return pa.table(columns)


def write_serving_file(path: Path, data: ServingData | None = None, *, with_ops: bool = True) -> ServingData:
    """Write `data` (default: `build_data()`) to a fresh DuckDB file at `path`, swapped in atomically."""
    data = data or build_data()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.building")
    tmp.unlink(missing_ok=True)
    with duckdb.connect(str(tmp)) as con:
        con.execute("create schema marts")
        for table, rows in data.tables.items():
            con.register("fixture_rows", _arrow_table(rows))
            con.execute(f"create table marts.{table} as select * from fixture_rows")
            con.unregister("fixture_rows")
        if with_ops:
            _write_ops(con, data.end)
            _write_ml(con, data.end)
        con.execute("create schema meta")
        con.execute("create table meta.publication as select 'fixture' as run_id, now()::timestamp as published_at")
    os.replace(tmp, path)
    write_marts_copy(path)  # the analyst's SQL Lab file, as publish writes it
    return data


def _write_ops(con: duckdb.DuckDBPyConnection, end: dt.date) -> None:
    con.execute(OPS_DDL)
    checked = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(1, 0))
    # The Governance dashboard's access log: one event of each source.
    con.execute(ACCESS_LOG_DDL)
    for n, (source, actor, action, kind, name, outcome) in enumerate(
        [
            ("superset", "executive", "ChartRestApi.data", "chart", "Orders", None),
            ("superset", "analyst", "sql_lab_query", "sql_lab", "marts", "success"),
            ("airflow", "airflow_admin", "trigger", "dag", "elt_marts", None),
            ("governance", "dpo@shop.example", "dsr_erase", "data_subject_request", "dsr-erase-fixture", "completed"),
        ]
    ):
        con.execute(
            "insert into ops.access_log values (?, ?, ?, ?, ?, ?, ?, null, null, ?, ?)",
            [f"{source}:{n}", source, checked - dt.timedelta(hours=n), actor, action, kind, name, outcome, checked],
        )
    for gate, suite, table, expectation, success in [
        ("gate1", "raw.orders", "orders", "expect_column_values_to_not_be_null", True),
        ("gate1", "raw.orders", "orders", "expect_column_values_to_be_unique", True),
        ("gate1", "raw.order_items", "order_items", "expect_column_values_to_be_between", False),
        ("gate2", "marts", "fct_daily_revenue", "expect_column_values_to_not_be_null", True),
    ]:
        con.execute(
            "insert into ops.data_health (run_id, checked_at, gate, suite, table_name, expectation, column_name, "
            "success, observed_value, details, ds, severity, status) "
            "values ('fixture', ?, ?, ?, ?, ?, 'order_id', ?, '0', '', ?, 'critical', ?)",
            [checked, gate, suite, table, expectation, success, end, "passed" if success else "failed"],
        )
    for gate, suite, table, status, failed in [
        ("gate1", "raw.orders", "orders", "passed", 0),
        ("gate1", "raw.order_items", "order_items", "failed", 1),
        ("gate2", "marts", "fct_daily_revenue", "passed", 0),
    ]:
        con.execute(
            "insert into ops.gate_runs values ('fixture', ?, ?, ?, ?, ?, ?, 3, ?, 0, 1000, ?, null)",
            [checked, gate, suite, table, end, status, failed, "ok" if not failed else "1 expectation failed"],
        )
    con.execute(
        "insert into ops.quarantine values ('shop/order_items/ds=x/fixture', 'shop', 'order_items', ?, 'fixture', "
        "'held', ?, null, 12, 'expect_column_values_to_be_between', 'negative quantity', null)",
        [end, checked],
    )
    con.execute(
        "insert into ops.source_freshness values ('shop', 6, ?, ?, ?, ?, ?, 1.0, 30, 'ok', null, ?)",
        [end, checked, checked, end, checked, checked],
    )


def _write_ml(con: duckdb.DuckDBPyConnection, end: dt.date) -> None:
    """The churn model's published tables (`ml.tables`): two scorings, two versions, drift checks."""
    con.execute(ML_DDL)
    scored = [end - dt.timedelta(days=1), end]
    for as_of in scored:
        latest = as_of == end
        for n, (country, channel) in enumerate([("DE", "web"), ("DE", "marketplace"), ("FR", "mobile"), ("GB", "web")]):
            customers, risk = 300 - 40 * n, 0.55 + 0.08 * n
            con.execute(
                "insert into ml.churn_risk_segments values (?, ?, ?, ?, ?, ?, ?, 'churn-fixture-2', ?)",
                [as_of, country, channel, customers, int(customers * risk * 0.6), customers * risk, risk, latest],
            )
        for band in range(10):
            con.execute(
                "insert into ml.churn_risk_distribution values (?, ?, ?, ?, 'churn-fixture-2', ?)",
                [as_of, f"{band / 10:.1f}-{(band + 1) / 10:.1f}", band / 10, 20 + 15 * band, latest],
            )
    for n, (version, auc) in enumerate([("churn-fixture-1", 0.76), ("churn-fixture-2", 0.79)]):
        trained = end - dt.timedelta(days=37 - 7 * n)
        con.execute(
            "insert into ml.model_versions values (?, ?, ?, ?, 4000, 1200, ?, 0.11, 0.8, 'abc', 42, true, ?, 'fix')",
            [version, trained, trained - dt.timedelta(days=28), trained - dt.timedelta(days=7), auc, n == 1],
        )
    checked = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(2, 0))
    for as_of in scored:
        for feature, psi in [
            ("units_per_order_30d", 0.05),
            ("marketplace_order_share_30d", 0.31),
            ("churn_probability", 0.08),
        ]:
            con.execute(
                "insert into ml.model_drift values ('fixture', ?, ?, 'churn-fixture-2', ?, ?, 'numeric', 'trigger', ?, "
                "0.1, 0.01, 0.2, ?, 1200, 1500)",
                [checked, as_of, end - dt.timedelta(days=30), feature, psi, psi > 0.2],
            )
            con.execute(
                "insert into ops.data_health (run_id, checked_at, gate, suite, table_name, expectation, column_name, "
                "success, observed_value, details, ds, severity, status) values ('fixture', ?, 'model_drift', "
                "'ml.churn_model', 'fct_customer_churn_features', 'psi_below_threshold', ?, ?, ?, '', ?, 'warning', ?)",
                [
                    checked,
                    feature,
                    psi <= 0.2,
                    f"psi={psi:.3f} (threshold 0.2)",
                    as_of,
                    "passed" if psi <= 0.2 else "warned",
                ],
            )

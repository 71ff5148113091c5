"""The KPI marts against independent computations: SQL on the app DB, pandas, scipy, the fixture data.

None of these reuse the dbt SQL: revenue is recomputed from the operational rows, cohorts and active
customers with pandas, the A/B statistics with scipy, marketing spend from the fixture generator.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from decimal import Decimal

import pandas as pd
import pytest
from scipy import stats

from tests.dbt.conftest import DAYS
from tests.dbt.fixture_warehouse import CAMPAIGNS, reference_rate, spend_row

pytestmark = pytest.mark.slow  # builds the dbt project on a simulated shop (real dbt processes)

CENT = Decimal("0.01")


def _day(value: str) -> dt.date:
    return dt.date.fromisoformat(value[:10])


def app_db_revenue(built, by_segment: bool) -> dict[tuple, list[float]]:
    """[gross EUR, returns EUR, orders] per day (and segment), straight from the operational tables."""
    segment = ", o.country_code, o.channel, o.currency" if by_segment else ""
    out: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    with built.app_db() as con:
        for day, *rest in con.execute(
            f"select date(o.ordered_at){segment}, sum(i.quantity * i.unit_price_cents * o.eur_exchange_rate) / 100.0, "
            "count(distinct o.order_id) from orders o join order_items i on i.order_id = o.order_id "
            f"where o.order_status != 'cancelled' group by date(o.ordered_at){segment}"
        ):
            *keys, gross, orders = rest
            out[(_day(day), *keys)][0] += gross
            out[(_day(day), *keys)][2] += orders
        for day, *rest in con.execute(
            f"select date(r.returned_at){segment}, sum(r.refund_cents * o.eur_exchange_rate) / 100.0 "
            f"from returns r join orders o on o.order_id = r.order_id group by date(r.returned_at){segment}"
        ):
            *keys, refunds = rest
            out[(_day(day), *keys)][1] += refunds
    return dict(out)


def test_daily_net_revenue_equals_the_app_db(built):
    expected = app_db_revenue(built, by_segment=False)
    rows = built.query(
        "select revenue_date, gross_revenue_eur, returns_eur, net_revenue_eur, orders, average_order_value_eur "
        "from marts.fct_daily_revenue order by 1"
    )
    assert [r[0] for r in rows] == DAYS, "one row per day, none missing, none extra"
    assert sum(e[1] for e in expected.values()) > 0, "the window must include returns"
    for day, gross, returns, net, orders, aov in rows:
        e_gross, e_returns, e_orders = expected.get((day,), [0.0, 0.0, 0])
        assert orders == e_orders, day
        assert abs(gross - round(Decimal(e_gross), 2)) <= CENT, (day, gross, e_gross)
        assert abs(returns - round(Decimal(e_returns), 2)) <= CENT, (day, returns, e_returns)
        assert net == gross - returns
        assert aov == (round(gross / orders, 2) if orders else None)


def test_revenue_by_segment_and_month_equal_the_app_db(built):
    expected = app_db_revenue(built, by_segment=True)
    rows = built.query(
        "select revenue_date, country_code, channel, currency, gross_revenue_eur, returns_eur, orders "
        "from marts.fct_daily_revenue_by_segment"
    )
    published = {r[:4]: r[4:] for r in rows}
    assert set(published) == set(expected), "the same segment-days, none missing, none extra"
    for key, (gross, returns, orders) in published.items():
        e_gross, e_returns, e_orders = expected[key]
        assert orders == e_orders, key
        assert abs(float(gross) - e_gross) <= 0.005 + 1e-9, key
        assert abs(float(returns) - e_returns) <= 0.005 + 1e-9, key

    monthly: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0.0, 0, 0])
    for (day, *segment), (gross, returns, orders) in expected.items():
        month = monthly[(day.replace(day=1), *segment)]
        month[0] += gross
        month[1] += returns
        month[2] += orders
        month[3] += 1  # days rounded separately
    rows = built.query(
        "select revenue_month, country_code, channel, currency, gross_revenue_eur, net_revenue_eur, orders "
        "from marts.fct_monthly_revenue_by_segment"
    )
    assert {r[:4] for r in rows} == set(monthly)
    assert len({r[0] for r in rows}) >= 2, "the window must span two months"
    for *key, gross, net, orders in rows:
        e_gross, e_returns, e_orders, days = monthly[tuple(key)]
        assert orders == e_orders
        assert abs(float(gross) - e_gross) <= 0.005 * days + 1e-9
        assert abs(float(net) - (e_gross - e_returns)) <= 0.01 * days + 1e-9


def test_reference_rate_cross_check_uses_the_rate_in_force(built):
    """Weekend days revalue at Friday's published rate; EUR is never revalued."""
    rows = built.query(
        "select revenue_date, currency, reference_eur_exchange_rate from marts.fct_daily_revenue_by_segment "
        "where currency in ('USD', 'EUR')"
    )
    assert rows
    for day, currency, rate in rows:
        business_day = day - dt.timedelta(days=max(0, day.weekday() - 4))
        assert rate == pytest.approx(reference_rate(currency, business_day), rel=1e-12), (day, currency)


def experiment_counts(built) -> dict[str, dict[str, int]]:
    """Exposed and converted visitors and sessions per variant, from the app DB's raw events."""
    with built.app_db() as con:
        rows = con.execute(
            "select experiment_variant, count(distinct visitor_id), "
            "count(distinct case when event_type = 'purchase' then visitor_id end), count(distinct session_id) "
            "from web_events group by experiment_variant"
        ).fetchall()
    return {variant: {"n": n, "x": x, "sessions": s} for variant, n, x, s in rows}


def test_experiment_results_match_scipy(built):
    counts = experiment_counts(built)
    assert set(counts) == {"control", "treatment"}
    control, treatment = counts["control"], counts["treatment"]
    rows = built.frame("select * from marts.fct_experiment_results").set_index("experiment_variant")
    for variant, c in counts.items():
        assert rows.loc[variant, "exposed_visitors"] == c["n"]
        assert rows.loc[variant, "converted_visitors"] == c["x"]
        assert rows.loc[variant, "sessions"] == c["sessions"]
    result = rows.loc["treatment"]
    p1, p0 = treatment["x"] / treatment["n"], control["x"] / control["n"]
    assert result["conversion_rate"] == pytest.approx(p1, rel=1e-12)
    assert result["absolute_lift"] == pytest.approx(p1 - p0, rel=1e-12)
    assert result["relative_lift"] == pytest.approx((p1 - p0) / p0, rel=1e-12)

    # The pooled two-proportion z-test is the chi-square test of the 2x2 table without continuity correction.
    table = [[treatment["x"], treatment["n"] - treatment["x"]], [control["x"], control["n"] - control["x"]]]
    chi2, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    assert result["z_score"] ** 2 == pytest.approx(chi2, rel=1e-9)
    assert result["p_value"] == pytest.approx(p_value, rel=2e-7)  # erfc macro: relative error < 1.2e-7
    assert bool(result["is_significant"]) == (p_value < 0.05)

    z = stats.norm.ppf(0.975)
    se = math.sqrt(p1 * (1 - p1) / treatment["n"] + p0 * (1 - p0) / control["n"])
    assert result["lift_ci_lower_95"] == pytest.approx(p1 - p0 - z * se, rel=1e-9)
    assert result["lift_ci_upper_95"] == pytest.approx(p1 - p0 + z * se, rel=1e-9)

    srm = stats.chisquare([treatment["n"], control["n"]])
    for variant in counts:
        assert rows.loc[variant, "srm_chi_square"] == pytest.approx(srm.statistic, rel=1e-9, abs=1e-12)
        assert rows.loc[variant, "srm_p_value"] == pytest.approx(srm.pvalue, rel=2e-7)
    assert pd.isna(rows.loc["control", "p_value"]) and pd.isna(rows.loc["control", "absolute_lift"])


def test_experiment_results_match_statsmodels(built):
    """The same numbers through statsmodels' own tests (runs once statsmodels is in the environment)."""
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    counts = experiment_counts(built)
    t, c = counts["treatment"], counts["control"]
    result = built.frame("select * from marts.fct_experiment_results where experiment_variant = 'treatment'").iloc[0]
    z, p_value = proportion.proportions_ztest([t["x"], c["x"]], [t["n"], c["n"]])
    assert result["z_score"] == pytest.approx(z, rel=1e-9)
    assert result["p_value"] == pytest.approx(p_value, rel=2e-7)
    low, high = proportion.confint_proportions_2indep(t["x"], t["n"], c["x"], c["n"], method="wald", compare="diff")
    assert (result["lift_ci_lower_95"], result["lift_ci_upper_95"]) == (
        pytest.approx(low, rel=1e-9),
        pytest.approx(high, rel=1e-9),
    )


def app_db_orders(built) -> pd.DataFrame:
    with built.app_db() as con:
        frame = pd.read_sql_query(
            "select order_id, customer_id, ordered_at from orders where order_status != 'cancelled'", con
        )
    frame["ordered_at"] = pd.to_datetime(frame["ordered_at"])
    frame["ordered_date"] = frame["ordered_at"].dt.date
    frame["month"] = frame["ordered_at"].dt.to_period("M").dt.to_timestamp().dt.date
    return frame


def test_cohort_retention_matches_pandas(built):
    orders = app_db_orders(built)
    first = orders.sort_values(["ordered_at", "order_id"]).groupby("customer_id").first()["month"].rename("cohort")
    activity = orders[["customer_id", "month"]].drop_duplicates().join(first, on="customer_id")
    activity["k"] = activity.apply(
        lambda r: (r["month"].year - r["cohort"].year) * 12 + r["month"].month - r["cohort"].month, axis=1
    )
    sizes = first.value_counts()
    active = activity.groupby(["cohort", "k"]).size()
    last_month = orders["month"].max()

    rows = built.query(
        "select cohort_month, months_since_first_order, cohort_customers, active_customers, retention_rate "
        "from marts.fct_cohort_retention order by 1, 2"
    )
    expected_keys = [
        (cohort, k)
        for cohort in sorted(sizes.index)
        for k in range((last_month.year - cohort.year) * 12 + last_month.month - cohort.month + 1)
    ]
    assert [r[:2] for r in rows] == expected_keys, "every cohort x month up to the last month, zeros included"
    assert any(k >= 1 and n > 0 for _, k, _, n, _ in rows), "some customers must come back"
    for cohort, k, size, n, rate in rows:
        assert size == sizes[cohort]
        assert n == active.get((cohort, k), 0)
        assert rate == pytest.approx(n / size, rel=1e-12)


def test_new_and_active_customers_match_pandas(built):
    orders = app_db_orders(built)
    first_day = orders.groupby("customer_id")["ordered_date"].min()
    days = sorted(set(orders["ordered_date"]))
    customer_days = orders[["customer_id", "ordered_date"]].drop_duplicates()
    rows = built.query(
        "select activity_date, ordering_customers, new_customers, returning_customers, active_customers_30d "
        "from marts.fct_daily_customer_activity order by 1"
    )
    assert [r[0] for r in rows] == days
    for day, ordering, new, returning, active in rows:
        that_day = customer_days[customer_days["ordered_date"] == day]
        window = customer_days[
            (customer_days["ordered_date"] > day - dt.timedelta(days=30)) & (customer_days["ordered_date"] <= day)
        ]
        assert ordering == len(that_day)
        assert new == int((first_day == day).sum())
        assert returning == ordering - new
        assert active == window["customer_id"].nunique()


def test_active_customers_by_segment_match_pandas(built):
    """Per day x country x channel: distinct customers of that segment in the trailing 30 days, every
    day from the segment's first order on; the segments bound the whole shop from both sides."""
    with built.app_db() as con:
        orders = pd.read_sql_query(
            "select customer_id, country_code, channel, ordered_at from orders where order_status != 'cancelled'", con
        )
    orders["ordered_date"] = pd.to_datetime(orders["ordered_at"]).dt.date
    customer_days = orders[["customer_id", "country_code", "channel", "ordered_date"]].drop_duplicates()
    last_day = customer_days["ordered_date"].max()
    rows = built.query(
        "select activity_date, country_code, channel, ordering_customers, active_customers_30d "
        "from marts.fct_daily_active_customers_by_segment order by 1, 2, 3"
    )
    first_days = customer_days.groupby(["country_code", "channel"])["ordered_date"].min()
    expected_keys = sorted(
        (first + dt.timedelta(days=offset), country, channel)
        for (country, channel), first in first_days.items()
        for offset in range((last_day - first).days + 1)
    )
    assert [r[:3] for r in rows] == expected_keys, "every segment every day from its first order, zeros included"
    by_segment = {key: frame for key, frame in customer_days.groupby(["country_code", "channel"])}
    for day, country, channel, ordering, active in rows:
        segment = by_segment[(country, channel)]
        window = segment[(segment["ordered_date"] > day - dt.timedelta(days=30)) & (segment["ordered_date"] <= day)]
        assert ordering == int((segment["ordered_date"] == day).sum())
        assert active == window["customer_id"].nunique(), (day, country, channel)

    shop = dict(built.query("select activity_date, active_customers_30d from marts.fct_daily_customer_activity"))
    summed: dict[dt.date, int] = defaultdict(int)
    for day, _, _, _, active in rows:
        summed[day] += active
    assert all(shop[day] <= summed[day] for day in shop)
    # The simulated customers order in several channels: the segments over-count the whole shop.
    assert any(shop[day] < summed[day] for day in shop)


def test_marketing_spend_matches_the_fixture_api_data(built):
    """EUR spend per day and marketing channel: the latest restatement x the rate in force that day."""
    expected: dict[tuple[dt.date, str], float] = defaultdict(float)
    for spend_date in DAYS:
        latest_extract = min(spend_date + dt.timedelta(days=1), DAYS[-1])
        business_day = spend_date - dt.timedelta(days=max(0, spend_date.weekday() - 4))
        for campaign_id, (channel, currency, _) in CAMPAIGNS.items():
            spend = spend_row(spend_date, campaign_id, latest_extract)[4]
            expected[(spend_date, channel)] += spend * reference_rate(currency, business_day)
    rows = built.query("select spend_date, marketing_channel, spend_eur from marts.fct_daily_marketing_spend")
    assert {r[:2] for r in rows} == set(expected)
    for day, channel, spend_eur in rows:
        assert abs(float(spend_eur) - expected[(day, channel)]) <= 0.005 + 1e-9, (day, channel)

    efficiency = built.query(
        "select sum(marketing_spend_eur), sum(new_customers), sum(net_revenue_eur) "
        "from marts.fct_daily_marketing_efficiency"
    )[0]
    assert abs(float(efficiency[0]) - sum(expected.values())) <= 0.01 * len(expected)
    with built.app_db() as con:
        customers = con.execute(
            "select count(distinct customer_id) from orders where order_status != 'cancelled'"
        ).fetchone()[0]
    assert efficiency[1] == customers, "every acquired customer is counted once, on the day of the first order"


def test_no_direct_identifier_reaches_intermediate_or_marts(built):
    """Neither the columns nor any value of the app DB's personal data appear past staging."""
    with built.app_db() as con:
        identifiers = [
            value
            for query in (
                "select email from customers",
                "select full_name from customers",
                "select phone from customers",
                "select street_address from customers",
                "select distinct visitor_id from web_events",
            )
            for (value,) in con.execute(query)
        ]
    columns = built.query(
        "select table_schema, table_name, column_name, data_type from information_schema.columns "
        "where table_schema in ('intermediate', 'marts')"
    )
    assert columns
    forbidden = {"email", "full_name", "phone", "street_address", "birth_date", "visitor_id", "city"}
    assert not [c for c in columns if c[2] in forbidden]
    for schema, table, column, data_type in columns:
        if data_type == "VARCHAR":
            leaked = built.query(
                f'select count(*) from "{schema}"."{table}" where "{column}" in (select unnest(?))', [identifiers]
            )[0][0]
            assert leaked == 0, f"{schema}.{table}.{column} holds personal data"

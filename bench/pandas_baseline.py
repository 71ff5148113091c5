"""Baseline (b): the core KPIs in plain pandas, as an analyst would write them by hand.

Read the columns needed from the lake's Parquet, keep the latest version of each row, merge,
group. No tricks beyond reading only the needed columns: it shows what the platform saves a
user who would otherwise do this in a notebook.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _read(raw: Path, table: str, columns: list[str]) -> pd.DataFrame:
    frame = pd.read_parquet(raw / table, columns=[*columns, "ds"])
    frame["ds"] = frame["ds"].astype(str)
    return frame


def _latest(frame: pd.DataFrame, key: str, order: list[str]) -> pd.DataFrame:
    """The latest version of each row, like staging (by updated_at, then the extract day)."""
    return frame.sort_values(order).drop_duplicates(key, keep="last")


def _round2(values: pd.Series) -> pd.Series:
    """Round half away from zero, as DuckDB's round() does (numpy rounds half to even)."""
    return np.sign(values) * np.floor(np.abs(values) * 100 + 0.5) / 100


def kpis(raw: Path) -> dict[str, pd.DataFrame]:
    order_columns = ["order_id", "customer_id", "order_status", "eur_exchange_rate", "ordered_at", "updated_at"]
    orders = _latest(_read(raw, "orders", order_columns), "order_id", ["updated_at", "ds"])
    items = _latest(
        _read(raw, "order_items", ["order_item_id", "order_id", "quantity", "unit_price_cents", "updated_at"]),
        "order_item_id",
        ["updated_at", "ds"],
    )
    returns = _latest(
        _read(raw, "returns", ["return_id", "order_id", "refund_cents", "returned_at", "updated_at"]),
        "return_id",
        ["updated_at", "ds"],
    )
    customer_ids = _read(raw, "customers", ["customer_id"])["customer_id"].unique()
    event_columns = ["event_id", "session_id", "visitor_id", "event_type", "experiment_key", "experiment_variant"]
    events = _read(raw, "web_events", event_columns)
    events = events.sort_values("ds").drop_duplicates("event_id", keep="last")

    lines = items.merge(orders, on="order_id")
    lines = lines[lines["order_status"] != "cancelled"].copy()
    lines["line_amount_eur"] = lines["quantity"] * lines["unit_price_cents"] / 100.0 * lines["eur_exchange_rate"]
    lines["ordered_date"] = lines["ordered_at"].dt.floor("D")
    return {
        "daily_revenue": _daily_revenue(lines, returns, orders),
        "cohort_retention": _cohort_retention(lines, customer_ids),
        "experiment_results": _experiment_results(events),
    }


def _daily_revenue(lines: pd.DataFrame, returns: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    sales = lines.groupby("ordered_date").agg(gross=("line_amount_eur", "sum"), orders=("order_id", "nunique"))
    refunds = returns.merge(orders[["order_id", "eur_exchange_rate"]], on="order_id")
    refunds["refund_eur"] = refunds["refund_cents"] / 100.0 * refunds["eur_exchange_rate"]
    refunds["returned_date"] = refunds["returned_at"].dt.floor("D")
    refunded = refunds.groupby("returned_date")["refund_eur"].sum()
    days = sales.index.union(refunded.index)
    calendar = pd.date_range(days.min(), days.max(), freq="D")
    daily = pd.DataFrame(index=calendar)
    daily["gross_revenue_eur"] = _round2(sales["gross"].reindex(calendar, fill_value=0.0))
    daily["returns_eur"] = _round2(refunded.reindex(calendar, fill_value=0.0))
    daily["net_revenue_eur"] = (daily["gross_revenue_eur"] - daily["returns_eur"]).round(2)
    daily["orders"] = sales["orders"].reindex(calendar, fill_value=0).astype("int64")
    daily["average_order_value_eur"] = _round2(daily["gross_revenue_eur"] / daily["orders"].where(daily["orders"] > 0))
    return daily.rename_axis("revenue_date").reset_index()


def _cohort_retention(lines: pd.DataFrame, customer_ids: np.ndarray) -> pd.DataFrame:
    members = lines[lines["customer_id"].isin(customer_ids)]
    months = pd.DataFrame(
        {"customer_id": members["customer_id"], "activity_month": members["ordered_date"].dt.to_period("M")}
    ).drop_duplicates()
    cohorts = months.groupby("customer_id")["activity_month"].min().rename("cohort_month").reset_index()
    sizes = cohorts.groupby("cohort_month").size()
    active = months.merge(cohorts, on="customer_id").groupby(["cohort_month", "activity_month"]).size()
    last_order_date = lines["ordered_date"].max()
    last_month = last_order_date.to_period("M")
    rows = []
    for cohort_month, size in sizes.items():
        for offset in range((last_month - cohort_month).n + 1):
            month = cohort_month + offset
            count = int(active.get((cohort_month, month), 0))
            rows.append(
                {
                    "cohort_month": cohort_month.to_timestamp(),
                    "months_since_first_order": offset,
                    "activity_month": month.to_timestamp(),
                    "cohort_customers": int(size),
                    "active_customers": count,
                    "retention_rate": count / size,
                    "is_complete_month": month.to_timestamp(how="end").normalize() <= last_order_date,
                }
            )
    return pd.DataFrame(rows)


def _experiment_results(events: pd.DataFrame) -> pd.DataFrame:
    events = events.assign(is_purchase=(events["event_type"] == "purchase").astype("int64"))
    sessions = events.groupby("session_id").agg(
        experiment_key=("experiment_key", "min"),
        experiment_variant=("experiment_variant", "min"),
        visitor_id=("visitor_id", "min"),
        has_purchased=("is_purchase", "max"),
    )
    visitors = sessions.groupby(["experiment_key", "experiment_variant", "visitor_id"]).agg(
        sessions=("has_purchased", "size"), has_converted=("has_purchased", "max")
    )
    variants = visitors.groupby(["experiment_key", "experiment_variant"]).agg(
        exposed_visitors=("sessions", "size"), sessions=("sessions", "sum"), converted_visitors=("has_converted", "sum")
    )
    variants["conversion_rate"] = variants["converted_visitors"] / variants["exposed_visitors"]
    return variants.reset_index()


def run_pandas(raw_shop_dir: Path, out_dir: Path) -> dict[str, int]:
    """Compute the KPIs with pandas; write one Parquet file per KPI."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name, frame in kpis(raw_shop_dir).items():
        frame.to_parquet(out_dir / f"{name}.parquet", index=False)
        rows[name] = len(frame)
    return rows

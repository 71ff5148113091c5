"""The fairness check: the baselines' KPIs must equal the published marts, row for row.

The marts are read from the serving file (what dashboards show). Keys and counts must match
exactly; money may differ by at most one cent (sums of doubles in a different order can land on
the other side of a half cent before rounding), rates by 1e-9. A KPI whose mart does not exist
(yet) is compared between the two baselines only, and said so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

MONEY_TOLERANCE = 0.01
RATE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class KpiSpec:
    mart: str
    keys: tuple[str, ...]
    exact: tuple[str, ...]  # counts, flags, dates
    money: tuple[str, ...] = ()
    rates: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.keys, *self.exact, *self.money, *self.rates)


KPIS: dict[str, KpiSpec] = {
    "daily_revenue": KpiSpec(
        "marts.fct_daily_revenue",
        keys=("revenue_date",),
        exact=("orders",),
        money=("gross_revenue_eur", "returns_eur", "net_revenue_eur", "average_order_value_eur"),
    ),
    "cohort_retention": KpiSpec(
        "marts.fct_cohort_retention",
        keys=("cohort_month", "months_since_first_order"),
        exact=("activity_month", "cohort_customers", "active_customers", "is_complete_month"),
        rates=("retention_rate",),
    ),
    "experiment_results": KpiSpec(
        "marts.fct_experiment_results",
        keys=("experiment_key", "experiment_variant"),
        exact=("exposed_visitors", "sessions", "converted_visitors"),
        rates=("conversion_rate",),
    ),
}


def _normalise(frame: pd.DataFrame, spec: KpiSpec) -> pd.DataFrame:
    frame = frame[list(spec.columns)].copy()
    for column in frame.columns:
        values = frame[column]
        if column.startswith("is_"):
            frame[column] = values.astype(bool)
        elif column.endswith(("_date", "_month")):
            frame[column] = pd.to_datetime(values).dt.normalize().astype("datetime64[us]")
        elif column in spec.money or column in spec.rates:
            frame[column] = pd.to_numeric(values.astype("float64"))
        elif column in spec.keys or column in spec.exact:
            if pd.api.types.is_numeric_dtype(values):
                frame[column] = values.astype("int64")
            else:
                frame[column] = values.astype(str)
    return frame.sort_values(list(spec.keys)).reset_index(drop=True)


def read_marts(serving_path: Path) -> dict[str, pd.DataFrame | None]:
    """Each KPI's mart as a DataFrame (None where the mart does not exist)."""
    con = duckdb.connect(str(serving_path), read_only=True)
    try:
        tables = con.execute("select table_schema || '.' || table_name from information_schema.tables").fetchall()
        present = {name for (name,) in tables}
        frames: dict[str, pd.DataFrame | None] = {}
        for name, spec in KPIS.items():
            query = f"select {', '.join(spec.columns)} from {spec.mart}"
            frames[name] = con.execute(query).df() if spec.mart in present else None
        return frames
    finally:
        con.close()


def read_baseline(out_dir: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(out_dir / f"{name}.parquet") for name in KPIS}


def differences(name: str, expected: pd.DataFrame, actual: pd.DataFrame, limit: int = 5) -> list[str]:
    """Human-readable differences of `actual` from `expected` for one KPI (empty when equal)."""
    spec = KPIS[name]
    want, got = _normalise(expected, spec), _normalise(actual, spec)
    problems: list[str] = []
    if len(want) != len(got):
        problems.append(f"{name}: {len(got)} rows, expected {len(want)}")
    merged = want.merge(got, on=list(spec.keys), how="outer", suffixes=("_want", "_got"), indicator="found_in")
    for _, row in merged[merged["found_in"] != "both"].head(limit).iterrows():
        side = "missing" if row["found_in"] == "left_only" else "unexpected"
        problems.append(f"{name}: {side} row {tuple(row[k] for k in spec.keys)}")
    both = merged[merged["found_in"] == "both"]
    checks = [(c, None) for c in spec.exact] + [(c, MONEY_TOLERANCE) for c in spec.money]
    checks += [(c, RATE_TOLERANCE) for c in spec.rates]
    for column, tolerance in checks:
        a, b = both[f"{column}_want"], both[f"{column}_got"]
        if tolerance is None:
            bad = ~((a == b) | (a.isna() & b.isna()))
        else:
            bad = ~(((a - b).abs() <= tolerance + 1e-9) | (a.isna() & b.isna()))
        for _, row in both[bad].head(limit).iterrows():
            key = tuple(row[k] for k in spec.keys)
            problems.append(f"{name}.{column} at {key}: got {row[f'{column}_got']}, expected {row[f'{column}_want']}")
    return problems

"""Reading the dbt feature mart (`ml.fct_customer_churn_features`) into pandas.

The mart is point in time (dbt_project/models/ml): a row at as-of date D uses only events before
D. Here we only choose rows: labelled snapshots for training, the latest one for scoring. Reads
attach the warehouse read-only from a fresh in-memory DuckDB, so they never hold its write lock
and never reuse a cached instance of an older file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pandas as pd

FEATURE_TABLE = "ml.fct_customer_churn_features"
LABEL = "is_churned"
KEY = ("as_of_date", "customer_id")
CATEGORICAL = ("country_code", "main_channel", "experiment_variant")
NUMERIC = (
    "tenure_days",
    "days_since_last_order",
    "orders_total",
    "orders_30d",
    "orders_90d",
    "revenue_eur_total",
    "revenue_eur_90d",
    "average_order_value_eur",
    "units_per_order",
    "marketplace_order_share",
    "units_per_order_30d",
    "average_order_value_eur_30d",
    "marketplace_order_share_30d",
    "returns_90d",
    "returns_rate",
    "sessions_total",
    "sessions_30d",
    "days_since_last_session",
)
FEATURES = CATEGORICAL + NUMERIC


class FeaturesMissing(RuntimeError):
    """The feature mart is not built (run dbt) or holds no usable snapshot."""


def load_features(warehouse_path: Path, *, labelled: bool | None = None, latest: bool = False) -> pd.DataFrame:
    """Rows of the mart: `labelled=True` only complete labels, `latest=True` only the scoring snapshot."""
    where = ["true"]
    if labelled:
        where.append("has_complete_label")
    if latest:
        where.append("is_latest")
    with duckdb.connect() as con:
        con.execute(f"attach '{warehouse_path}' as wh (read_only)")
        exists = con.execute(
            "select count(*) from information_schema.tables where table_catalog = 'wh' "
            "and table_schema = 'ml' and table_name = 'fct_customer_churn_features'"
        ).fetchall()[0][0]
        if not exists:
            raise FeaturesMissing(f"{FEATURE_TABLE} is not in {warehouse_path}: run `dbt build` (elt_marts) first")
        columns = ", ".join([*KEY, "is_latest", "has_complete_label", *FEATURES, LABEL])
        frame = con.execute(
            f"select {columns} from wh.{FEATURE_TABLE} where {' and '.join(where)} order by as_of_date, customer_id"
        ).df()
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).dt.date
    return frame


def frame_hash(frame: pd.DataFrame) -> str:
    """sha256 of a frame's content in key order: the training data snapshot's identity."""
    ordered = frame.sort_values(list(KEY)).reset_index(drop=True)
    digest = hashlib.sha256()
    digest.update(",".join(ordered.columns).encode())
    digest.update(pd.util.hash_pandas_object(ordered, index=False).values.tobytes())
    return digest.hexdigest()

"""The Assets that connect the layers (data-aware scheduling instead of time offsets)."""

from __future__ import annotations

from airflow.sdk import Asset

LAKE_RAW_SHOP = Asset(name="lake_raw_shop", uri="file:///lake/raw/shop")
WAREHOUSE_RAW_SHOP = Asset(name="warehouse_raw_shop", uri="duckdb://warehouse/raw/shop")
SERVING_MARTS = Asset(name="serving_marts", uri="duckdb://serving/marts")

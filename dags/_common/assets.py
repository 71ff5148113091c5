"""The Assets that connect the layers (data-aware scheduling instead of time offsets)."""

from __future__ import annotations

from airflow.sdk import Asset

LAKE_RAW_SHOP = Asset(name="lake_raw_shop", uri="file:///lake/raw/shop")
WAREHOUSE_RAW_SHOP = Asset(name="warehouse_raw_shop", uri="duckdb://warehouse/raw/shop")
SERVING_MARTS = Asset(name="serving_marts", uri="duckdb://serving/marts")
LAKE_RAW_MARKETING_API = Asset(name="lake_raw_marketing_api", uri="file:///lake/raw/marketing_api")
WAREHOUSE_RAW_MARKETING_API = Asset(name="warehouse_raw_marketing_api", uri="duckdb://warehouse/raw/marketing_api")
LAKE_RAW_PARTNER_FILES = Asset(name="lake_raw_partner_files", uri="file:///lake/raw/partner_files")
WAREHOUSE_RAW_PARTNER_FILES = Asset(name="warehouse_raw_partner_files", uri="duckdb://warehouse/raw/partner_files")

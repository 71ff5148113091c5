"""Orchestration facts shared by the DAGs and the tooling that drives Airflow, without importing Airflow.

The DAG ids (`dags/*.py` use them as `dag_id`; `stackctl` waits for and unpauses them), the
warehouse pool every task that opens the DuckDB warehouse runs in, and the DAG tag vocabulary.
"""

from __future__ import annotations

SHOP_DAILY = "shop_daily"
MARKETING_API_DAILY = "marketing_api_daily"
ELT_MARTS = "elt_marts"
PARTNER_FILES = "partner_files"
DATA_HEALTH = "data_health"
CHURN_MODEL = "churn_model"
DATA_SUBJECT_REQUESTS = "data_subject_requests"
GOVERNANCE_MAINTENANCE = "governance_maintenance"
DATA_TESTS_FULL = "data_tests_full"

DAG_IDS = (
    SHOP_DAILY,
    MARKETING_API_DAILY,
    ELT_MARTS,
    PARTNER_FILES,
    DATA_HEALTH,
    CHURN_MODEL,
    DATA_SUBJECT_REQUESTS,
    GOVERNANCE_MAINTENANCE,
    DATA_TESTS_FULL,
)

WAREHOUSE_POOL = "duckdb_warehouse"
WAREHOUSE_POOL_SLOTS = 1  # DuckDB has a single writer per file
WAREHOUSE_POOL_DESCRIPTION = "DuckDB warehouse: one writer at a time"

# A fixed vocabulary so the UI's tag filter stays useful.
DAG_TAGS = frozenset({"ingestion", "elt", "quality", "publish", "governance", "shop"})

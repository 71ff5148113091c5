"""Orchestration facts shared by the DAGs and the tooling that drives Airflow, without importing Airflow.

The DAG ids (`dags/*.py` use them as `dag_id`; `stackctl` waits for and unpauses them), the
warehouse pool every task that opens the DuckDB warehouse runs in, the DAG tag vocabulary, and how
long one try of a task may run.
"""

from __future__ import annotations

import datetime as dt

from core.settings import env_float

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

# One try of a task longer than this is stopped by Airflow and fails (then retries, then alerts): a
# hung statement (a Spark query that never returns, a database lock never released, an upstream
# that stops answering without closing) fails the run loudly instead of holding it, and the
# warehouse pool, forever. The longest legitimate task, a full-year `dbt build` at ten million
# orders, takes about twelve minutes on two cores.
TASK_TIMEOUT_VARIABLE = "TASK_TIMEOUT_MINUTES"
DEFAULT_TASK_TIMEOUT_MINUTES = 180.0


def task_timeout() -> dt.timedelta:
    """`TASK_TIMEOUT_MINUTES` (decimal minutes, default 180) as the `execution_timeout` of every task."""
    return dt.timedelta(minutes=env_float(TASK_TIMEOUT_VARIABLE, DEFAULT_TASK_TIMEOUT_MINUTES, low=0.05))

"""
### data_tests_full: every dbt data test on whole tables, every Sunday

The daily build (`elt_marts`) runs the data tests of the large incremental models (those with a
`data_tests_window` in their YAML: the staging tables of web events, orders and order lines,
`fct_sessions`, `fct_order_lines`, `fct_customer_churn_features`) on the rows it changed only:
rows loaded since the last build whose tests all passed (dbt's `where`,
`dbt_project/macros/data_tests_window.sql`), so a day's tests cost a day. A row that was fine when
it was tested and was broken later by hand, or a test that was added since, is caught here: once a
week every data test of the project runs on the whole tables.

1. `test_all_rows` (pool `duckdb_warehouse`) - `dbt test --vars '{data_tests_scope: all}'`.
   Fails at once when any test fails (a retry would fail again), naming the failed tests; dbt's
   own output above it shows their failing rows' counts.

**When it fails**: the alert (`var/alerts.jsonl`, `ALERT_WEBHOOK_URL`) and the Data health
dashboard name the DAG. Find the failing test in the log and run it yourself to see the rows:
`.venv/pipeline/bin/python -m stackctl dbt test --select <test> --vars '{data_tests_scope: all}'`;
fix the data or the model (a `--full-refresh` of the model rebuilds it from `raw`), then clear the
task. The marts already published stay as they are.
"""

from __future__ import annotations

import datetime as dt

from _common.defaults import DEFAULT_ARGS
from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from core.orchestration import DATA_TESTS_FULL, WAREHOUSE_POOL


@dag(
    dag_id=DATA_TESTS_FULL,
    schedule=CronDataIntervalTimetable("0 4 * * 0", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,  # only the current tables matter
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["quality"],
)
def data_tests_full():
    @task(pool=WAREHOUSE_POOL)
    def test_all_rows() -> None:
        from airflow.sdk.exceptions import AirflowFailException

        from core.settings import get_settings
        from quality.data_tests import DataTestsFailed, run_whole_table_tests

        # A failed test fails again on a retry: fail at once, naming the tests. Anything else
        # (the warehouse busy, a crash) is retried as usual.
        try:
            run_whole_table_tests(get_settings())
        except DataTestsFailed as exc:
            raise AirflowFailException(str(exc)) from exc

    test_all_rows()


data_tests_full()

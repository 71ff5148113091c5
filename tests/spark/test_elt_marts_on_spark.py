"""Spark mode under Airflow's own scheduler: `elt_marts` builds the marts on the Spark cluster, hands
them to DuckDB, and gate 2 and publish serve them as in the embedded mode.

A small shop is landed and loaded headless with `MARTS_ENGINE=spark` (each load registers its days on
Spark), then a real Airflow (api-server, scheduler, dag-processor, triggerer) in that mode runs
`elt_marts`: Cosmos' producer runs one `dbt build` against the Thrift server (the DuckDB-only models
left out), `copy_spark_marts` copies the served marts into the warehouse, gate 2 audits them and
publish swaps in the serving file. The served net revenue is checked to the cent against the app DB.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest

from tests.conftest import stack_environment
from tests.revenue_truth import expected_daily_revenue
from tests.spark.conftest import SparkCluster

pytestmark = pytest.mark.slow  # Airflow and a dbt build on Spark

DAYS = [dt.date(2026, 2, 2) + dt.timedelta(days=n) for n in range(5)]
PII_KEY = "spark-airflow-key-7d21"


@pytest.fixture(scope="module")
def marts_run(spark_cluster: SparkCluster, tmp_path_factory: pytest.TempPathFactory):
    from core.dbt_cli import run_dbt
    from core.settings import get_settings
    from ingestion.simulator.run import simulate
    from pipelines.runner import run_range
    from stackctl import airflow_service, procs

    spark_cluster.reset()
    root = tmp_path_factory.mktemp("spark_airflow")
    with stack_environment(
        root,
        PII_KEY,
        MARTS_ENGINE="spark",
        AIRFLOW_ADMIN_USER="spark_admin",
        AIRFLOW_ADMIN_PASSWORD="spark-password",
        AIRFLOW_API_SECRET="spark-secret",
        AIRFLOW_PORT=str(procs.free_port()),
        **spark_cluster.env,
    ):
        settings = get_settings()
        simulate(settings.app_db_url, DAYS[0], DAYS[-1], scale=0.2, progress=False)
        run_dbt(settings, "parse", "--quiet", quiet=True)
        run_range(settings, DAYS[0], DAYS[-1], "spark-history", progress=lambda msg: None, through="load")
        airflow_service.init(settings, log=lambda msg: None)
        try:
            api = airflow_service.AirflowApi(airflow_service.start(settings, log=lambda msg: None))
            api.wait_for_dag("elt_marts")
            api.patch("/dags/elt_marts", {"is_paused": False})
            run_id = api.post("/dags/elt_marts/dagRuns", {"logical_date": None})["dag_run_id"]
            state = api.wait_for_run("elt_marts", run_id, timeout=900)
            tasks = api.get(f"/dags/elt_marts/dagRuns/{run_id}/taskInstances", limit=200)["task_instances"]
            yield settings, run_id, state, {ti["task_id"]: ti["state"] for ti in tasks}
        finally:
            airflow_service.stop(settings)


def test_elt_marts_builds_on_spark_and_publishes(marts_run):
    settings, run_id, state, tasks = marts_run
    assert state == "success", {task: s for task, s in tasks.items() if s != "success"}
    assert tasks["copy_spark_marts"] == tasks["gate_marts"] == tasks["publish"] == "success"
    assert not [task for task in tasks if "churn_features" in task]  # the DuckDB-only models are not in the graph
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        assert con.execute("select run_id from meta.publication").fetchone()[0] == run_id


def test_the_served_revenue_built_on_spark_equals_the_app_db(marts_run, spark_cluster):
    settings = marts_run[0]
    expected = expected_daily_revenue(settings.app_db_url.removeprefix("sqlite:///"))
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        rows = con.execute(
            "select revenue_date, gross_revenue_eur, returns_eur, orders from marts.fct_daily_revenue order by 1"
        ).fetchall()
    served = {day: values for day, *values in rows}
    assert sorted(served) == DAYS
    for day, (gross, returns, orders) in expected.items():
        s_gross, s_returns, s_orders = served[day]
        assert s_orders == orders, day
        assert abs(Decimal(s_gross) - gross) <= Decimal("0.01"), (day, s_gross, gross)
        assert abs(Decimal(s_returns) - returns) <= Decimal("0.01"), (day, s_returns, returns)
    # built on the cluster: Spark holds the same days
    assert len(spark_cluster.rows("select revenue_date from marts.fct_daily_revenue")) == len(DAYS)

"""The governance DAGs run under Airflow's own scheduler, and a run's state tells the truth.

One real Airflow (api-server, scheduler, dag-processor, triggerer on SQLite metadata) on a copy of
the small governance shop, with every run triggered through the REST API as the UI does:

- `data_subject_requests` exports one customer; `governance_maintenance` then collects Airflow's
  audit events (through the REST API: a task may not open Airflow's metadata DB) and the request's
  audit entries into `ops.access_log`. Both runs and every task are `success`.
- `data_health` right after the shop was loaded is `success`; once its loads are months old (the
  test dates the raw tables' `_loaded_at`, which `dbt source freshness` reads, back to the shop's
  last day), `check_freshness` fails at once (no retries), the dashboard refresh and Data Docs still
  run and succeed, and the run is `failed`.

The scheduler's cron runs are off (`use_job_schedule`): only the runs the test triggers exist.
About two minutes on 2 cores.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from pathlib import Path

import duckdb
import pytest
import requests

from ingestion.app_db.contract import CONTRACTS
from tests.conftest import stack_environment
from tests.governance.conftest import PII_KEY, SHOP_DAYS

pytestmark = pytest.mark.slow

DAGS = ("data_subject_requests", "data_health", "governance_maintenance")
ADMIN = "gov_admin"


@pytest.fixture(scope="module")
def airflow(_built_shop: Path, tmp_path_factory: pytest.TempPathFactory):
    from core.settings import get_settings
    from stackctl import airflow_service, procs

    root = tmp_path_factory.mktemp("governance-airflow") / "stack"
    shutil.copytree(_built_shop, root)  # the shop as built; other modules' requests do not matter
    with stack_environment(
        root,
        PII_KEY,
        DBT_TARGET_PATH=str(root / "dbt-target"),
        SUPERSET_SECRET_KEY="governance-tests",
        AIRFLOW_ADMIN_USER=ADMIN,
        AIRFLOW_ADMIN_PASSWORD="gov-" + os.urandom(6).hex(),
        AIRFLOW_API_SECRET="gov-secret-" + os.urandom(8).hex(),
        AIRFLOW_PORT=str(procs.free_port()),
        # Only the runs triggered here: no cron run of the hourly/daily DAGs competes with them.
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
        GOVERNANCE_ACTOR="",
        GOVERNANCE_AUDIT_LOG="",
    ):
        for name in ("GOVERNANCE_ACTOR", "GOVERNANCE_AUDIT_LOG"):
            os.environ.pop(name)
        settings = get_settings()
        airflow_service.init(settings, log=lambda msg: None)
        try:
            url = airflow_service.start(settings, log=lambda msg: None)
            api = airflow_service.AirflowApi(url)
            _wait_for_dags(api, DAGS)
            for dag_id in DAGS:
                api.patch(f"/dags/{dag_id}", {"is_paused": False})
            yield settings, api
        finally:
            airflow_service.stop(settings)


def _wait_for_dags(api, dag_ids, timeout: float = 240) -> None:
    """Until the dag-processor has parsed our DAGs (another file's import error is not ours)."""
    deadline = time.monotonic() + timeout
    missing = list(dag_ids)
    while missing and time.monotonic() < deadline:
        for dag_id in list(missing):
            try:
                api.get(f"/dags/{dag_id}")
                missing.remove(dag_id)
            except requests.HTTPError:
                pass
        time.sleep(2)
    if missing:
        errors = api.get("/importErrors").get("import_errors", [])
        raise TimeoutError(f"{missing} not parsed in {timeout:.0f}s; import errors: {errors}")


def _trigger(api, dag_id: str, **body) -> str:
    return api.post(f"/dags/{dag_id}/dagRuns", {"logical_date": None, **body})["dag_run_id"]


def _finish(api, dag_id: str, run_id: str, timeout: float = 300) -> tuple[str, dict[str, str]]:
    """The run's terminal state and its tasks' states."""
    state = api.wait_for_run(dag_id, run_id, timeout)
    tis = api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
    return state, {ti["task_id"]: ti["state"] for ti in tis}


def _customer_id(settings) -> int:
    import sqlite3

    with sqlite3.connect(settings.app_db_url.removeprefix("sqlite:///")) as con:
        return con.execute(
            "select c.customer_id from customers c where exists "
            "(select 1 from orders o where o.customer_id = c.customer_id) order by 1 limit 1"
        ).fetchone()[0]


def test_governance_dags_under_the_scheduler(airflow) -> None:
    from governance import audit

    settings, api = airflow
    customer_id = _customer_id(settings)

    # Queued together; the one-slot warehouse pool runs their tasks one at a time.
    dsr = _trigger(api, "data_subject_requests", conf={"action": "export", "customer_id": customer_id})
    healthy = _trigger(api, "data_health")  # the shop was loaded minutes ago

    assert _finish(api, "data_subject_requests", dsr) == ("success", {"run_request": "success"})
    state, tasks = _finish(api, "data_health", healthy)
    assert (state, set(tasks.values())) == ("success", {"success"}), tasks
    # No task holds the warehouse now: date the shop's loads back to its last day, months ago.
    last_load = dt.datetime.combine(SHOP_DAYS[-1] + dt.timedelta(days=1), dt.time(0, 30))
    with duckdb.connect(str(settings.warehouse_path)) as con:
        for table in CONTRACTS:
            con.execute(f"update raw.{table} set _loaded_at = ?", [last_load])
    late = _trigger(api, "data_health")
    state, tasks = _finish(api, "data_health", late)
    assert tasks["check_freshness"] == "failed" and tasks["refresh_dashboard"] == tasks["data_docs"] == "success", tasks
    assert state == "failed", "the clean-up ran and succeeded; the run must still say the check failed"
    assert tasks["all_work_succeeded"] == "upstream_failed"

    # After the request, so the access log has it and the triggers above.
    maintenance = _trigger(api, "governance_maintenance")
    state, tasks = _finish(api, "governance_maintenance", maintenance)
    assert (state, set(tasks.values())) == ("success", {"success"}), tasks

    request = next(e for e in reversed(audit.entries(settings)) if e.action == "dsr_export")
    assert (request.outcome, request.actor) == ("completed", ADMIN), "the triggering user is the requester"
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "select source, actor, action, object_name, outcome from ops.access_log where source != 'superset'"
        ).fetchall()
        anchors = con.execute("select entries from ops.audit_anchors").fetchall()
    airflow_rows = {(actor, action, name) for source, actor, action, name, _ in rows if source == "airflow"}
    for dag_id in DAGS:
        assert (ADMIN, "trigger_dag_run", dag_id) in airflow_rows, sorted(airflow_rows)
        assert (ADMIN, "patch_dag", dag_id) in airflow_rows, "the unpause is an access too"
    assert not any(action in {"running", "success"} for _, action, _ in airflow_rows), "task lifecycle is not access"
    assert {(actor, action, outcome) for _, actor, action, name, outcome in rows if name == request.request_id} == {
        (ADMIN, "dsr_export", "started"),
        (ADMIN, "dsr_export", "completed"),
    }
    assert anchors == [(len(audit.entries(settings)),)], "the audit log's head is anchored in the warehouse"
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        published = con.execute("select count(*) from ops.access_log where source != 'superset'").fetchone()[0]
    assert published == len(rows), "the Governance dashboard reads the refreshed serving copy"

"""A backfill through Airflow's own machinery: `airflow backfill create` with a running scheduler.

The engineer's way to (re)load a date range: the scheduler creates one run per day, each run
replaces its day, and the result equals what the daily runs would have published.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import duckdb
import pytest

from tests.conftest import stack_environment

pytestmark = pytest.mark.slow

# The window ends yesterday: unpausing the DAG makes the scheduler want a run for yesterday,
# and the backfill (created first) already owns that date, so no scheduled run competes.
YESTERDAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
DAY0 = YESTERDAY - dt.timedelta(days=3)
HISTORY = [DAY0, DAY0 + dt.timedelta(days=1)]
BACKFILL = [DAY0 + dt.timedelta(days=2), YESTERDAY]


@pytest.fixture(scope="module")
def running_airflow(tmp_path_factory):
    from ingestion.simulator.run import simulate
    from stackctl import airflow_service, procs
    from stackctl.dbt_cli import run_dbt
    from stackctl.pipeline import run_range
    from stackctl.settings import get_settings

    root = tmp_path_factory.mktemp("backfill")
    with stack_environment(
        root,
        "backfill-key",
        AIRFLOW_ADMIN_USER="bf_admin",
        AIRFLOW_ADMIN_PASSWORD="bf-password",
        AIRFLOW_API_SECRET="bf-secret",
        AIRFLOW_PORT=str(procs.free_port()),
    ):
        settings = get_settings()
        # The source already holds the backfill window; each day's rows stay as written that day
        # because the window's days are extracted in order before later days would change them.
        simulate(settings.app_db_url, DAY0, HISTORY[-1], progress=False)
        run_dbt(settings, "parse", "--quiet", quiet=True)
        run_range(settings, HISTORY[0], HISTORY[-1], "bf-history", progress=lambda msg: None)
        simulate(settings.app_db_url, DAY0, BACKFILL[-1], progress=False)
        airflow_service.init(settings, log=lambda msg: None)
        try:
            url = airflow_service.start(settings, log=lambda msg: None)
            yield settings, airflow_service.airflow_env(settings), airflow_service.AirflowApi(url)
        finally:
            airflow_service.stop(settings)


def test_backfill_runs_each_day_and_publishes_the_range(running_airflow):
    settings, _, api = running_airflow
    api.wait_for_dag("shop_daily")
    # The REST API is what the UI's Backfills tab calls. SQLite metadata can be briefly locked by
    # the scheduler on a loaded machine ("database is locked"): retry that, nothing else.
    for attempt in range(5):
        try:
            out = api.post(
                "/backfills",
                {
                    "dag_id": "shop_daily",
                    "from_date": f"{BACKFILL[0]}T00:00:00Z",
                    "to_date": f"{BACKFILL[-1]}T00:00:00Z",
                    # shop_daily.land depends on the previous day: Airflow asks what to do with
                    # existing runs (failed: redo them, create missing ones).
                    "reprocess_behavior": "failed",
                },
            )
            break
        except RuntimeError as exc:
            if "locked" not in str(exc) or attempt == 4:
                raise
            time.sleep(2)
    api.patch("/dags/shop_daily", {"is_paused": False})  # paused DAGs do not run backfills
    deadline = time.monotonic() + 600
    while True:
        runs = api.get("/dags/shop_daily/dagRuns", limit=20)["dag_runs"]
        states = {r["logical_date"][:10]: r["state"] for r in runs}
        if len(runs) >= len(BACKFILL) and all(s in {"success", "failed"} for s in states.values()):
            break
        assert time.monotonic() < deadline, f"backfill still running after 10 min: {states}\n{out}"
        time.sleep(3)
    assert states == {str(d): "success" for d in BACKFILL}, states
    assert {r["run_type"] for r in runs} == {"backfill"}

    # No marketing API here, so the asset condition of elt_marts is not met: trigger it by hand,
    # as an engineer would after a shop-only backfill.
    api.patch("/dags/elt_marts", {"is_paused": False})
    run = api.post("/dags/elt_marts/dagRuns", {"logical_date": None})
    while (state := api.get(f"/dags/elt_marts/dagRuns/{run['dag_run_id']}")["state"]) not in {"success", "failed"}:
        assert time.monotonic() < deadline, f"elt_marts still {state}"
        time.sleep(3)
    assert state == "success"

    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        days = [r[0] for r in con.execute("select revenue_date from marts.fct_daily_revenue order by 1").fetchall()]
        orders = con.execute("select sum(orders) from marts.fct_daily_revenue").fetchone()[0]
    assert days == HISTORY + BACKFILL
    import sqlite3

    with sqlite3.connect(settings.app_db_url.removeprefix("sqlite:///")) as con:
        expected = con.execute("select count(*) from orders where order_status != 'cancelled'").fetchone()[0]
    assert orders == expected
    assert json.loads(json.dumps(states))  # the states are plain JSON for the log


def test_repeated_wrong_passwords_are_throttled(running_airflow):
    """Runs last in this module: it locks the admin out of new logins from this address for a while."""
    import requests

    settings, env, api = running_airflow
    url = f"{api.base_url}/auth/token"

    def login(user: str, password: str, form: bool = False) -> requests.Response:
        body = {"username": user, "password": password}
        return requests.post(url, data=body, timeout=30) if form else requests.post(url, json=body, timeout=30)

    admin, password = env["AIRFLOW_ADMIN_USER"], env["AIRFLOW_ADMIN_PASSWORD"]
    assert login(admin, password).status_code == 201
    # Four wrong guesses (as JSON and as the UI's form) are answered as usual ...
    for attempt in range(4):
        assert login(admin, f"guess-{attempt}", form=attempt % 2 == 1).status_code == 401
    # ... a right password in between clears them, so a user who mistypes is not locked out ...
    assert login(admin, password).status_code == 201
    for attempt in range(5):
        assert login(admin, f"guess-{attempt}").status_code == 401
    # ... but after five wrong ones in a row even the right password is refused, with a wait.
    refused = login(admin, password)
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) > 0 and "too many failed logins" in refused.text
    # Another user from the same address is still asked for a password (401), not refused (429).
    assert login("someone_else", "wrong").status_code == 401
    # Tokens issued before keep working: throttling guards logins, not sessions.
    assert api.get("/dags/shop_daily")["dag_id"] == "shop_daily"
    assert (settings.airflow_home / "login_failures.db").exists()

"""The whole path through Airflow's own scheduler: app DB -> lake -> gate 1 -> raw -> dbt -> gate 2 -> serving.

One real Airflow (api-server, scheduler, dag-processor, triggerer, as `make run` starts them) on a
small shop. History is landed and loaded headless (the runner `make run` uses); the engineer's way to (re)load
a date range then runs the rest: a backfill of `shop_daily` created through the REST API (what the
UI's Backfills tab calls), the scheduler running one run per day, then `elt_marts` in its default
watcher mode (one `dbt build`, a task per model). The published KPI is checked, to the cent, against
a computation straight from the app DB. A rerun of a day whose source turned bad must fail at gate 1
and leave both the served numbers and the day already loaded as they were. Nothing the run wrote
holds personal data where dashboards read, or the pseudonymisation key anywhere. The vendor API's
token, given to the DAGs only as an Airflow connection, is masked in every task log although the
client logs each request's headers. The module ends with Airflow's login throttling (it locks the
admin out of new logins for a while).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import time
from decimal import Decimal

import duckdb
import pytest

from tests.conftest import stack_environment
from tests.revenue_truth import expected_daily_revenue

pytestmark = pytest.mark.slow

# The window ends yesterday: unpausing the DAG makes the scheduler want a run for yesterday,
# and the backfill (created first) already owns that date, so no scheduled run competes.
YESTERDAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
# Long enough for returns (they come days after their orders): the revenue check must see some.
DAY0 = YESTERDAY - dt.timedelta(days=7)
HISTORY = [DAY0 + dt.timedelta(days=n) for n in range(6)]
BACKFILL = [DAY0 + dt.timedelta(days=6), YESTERDAY]
PII_KEY = "e2e-pii-key-3b9d0c71f4"
MARKETING_TOKEN = "e2e-vendor-token-8c1f5a"
TERMINAL = {"success", "failed"}


@pytest.fixture(scope="module")
def vendor_api():
    """The marketing API's stand-in on 127.0.0.1 (in this process), for marketing_api_daily."""
    from ingestion.marketing_api.server import FakeMarketingApi, ServerConfig

    server = FakeMarketingApi(ServerConfig(token=MARKETING_TOKEN, rate_limit=0)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def running_airflow(tmp_path_factory, vendor_api):
    from core.dbt_cli import run_dbt
    from core.settings import get_settings
    from ingestion.simulator.run import simulate
    from pipelines.runner import run_range
    from stackctl import airflow_service, procs

    root = tmp_path_factory.mktemp("e2e")
    with stack_environment(
        root,
        PII_KEY,
        AIRFLOW_ADMIN_USER="e2e_admin",
        AIRFLOW_ADMIN_PASSWORD="e2e-password",
        AIRFLOW_API_SECRET="e2e-secret",
        AIRFLOW_PORT=str(procs.free_port()),
        # stackctl turns these into the marketing_api connection (the token as its password); the
        # client logs every request's headers, so an unmasked token would be in the task log.
        MARKETING_API_URL=vendor_api.url,
        MARKETING_API_TOKEN=MARKETING_TOKEN,
        MARKETING_API_LOG_HEADERS="1",
    ):
        settings = get_settings()
        # The source already holds the backfill window; each day's rows stay as written that day
        # because the window's days are extracted in order before later days would change them.
        simulate(settings.app_db_url, DAY0, HISTORY[-1], progress=False)
        run_dbt(settings, "parse", "--quiet", quiet=True)
        # up to the raw layer: the marts are built once, by elt_marts under the scheduler
        run_range(settings, HISTORY[0], HISTORY[-1], "e2e-history", progress=lambda msg: None, through="load")
        simulate(settings.app_db_url, DAY0, BACKFILL[-1], progress=False)
        airflow_service.init(settings, log=lambda msg: None)
        try:
            url = airflow_service.start(settings, log=lambda msg: None)
            yield settings, airflow_service.airflow_env(settings), airflow_service.AirflowApi(url)
        finally:
            airflow_service.stop(settings)


@pytest.fixture(scope="module")
def published(running_airflow):
    """The backfill of shop_daily, then elt_marts, both run by the scheduler."""
    settings, _, api = running_airflow
    api.wait_for_dag("shop_daily")
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
    api.patch("/dags/shop_daily", {"is_paused": False})  # paused DAGs do not run backfills
    deadline = time.monotonic() + 600
    while True:
        runs = api.get("/dags/shop_daily/dagRuns", limit=20)["dag_runs"]
        states = {r["logical_date"][:10]: r["state"] for r in runs}
        if len(runs) >= len(BACKFILL) and all(s in TERMINAL for s in states.values()):
            break
        assert time.monotonic() < deadline, f"backfill still running after 10 min: {states}\n{out}"
        time.sleep(3)
    # marketing_api_daily stays paused until its own test, so the asset condition of elt_marts is
    # not met: trigger it by hand, as an engineer would after a shop-only backfill.
    api.patch("/dags/elt_marts", {"is_paused": False})
    marts_run = api.post("/dags/elt_marts/dagRuns", {"logical_date": None})["dag_run_id"]
    return settings, runs, states, marts_run, api.wait_for_run("elt_marts", marts_run)


def test_backfill_runs_each_day_under_the_scheduler(published):
    _, runs, states, _, marts_state = published
    assert states == {str(d): "success" for d in BACKFILL}, states
    assert {r["run_type"] for r in runs} == {"backfill"}
    assert marts_state == "success"


def test_published_net_revenue_equals_the_app_db(published):
    settings = published[0]
    expected = expected_daily_revenue(settings.app_db_url.removeprefix("sqlite:///"))
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        rows = con.execute(
            "select revenue_date, gross_revenue_eur, returns_eur, net_revenue_eur, orders "
            "from marts.fct_daily_revenue order by 1"
        ).fetchall()
    published_days = {r[0]: r[1:] for r in rows}
    assert sorted(published_days) == HISTORY + BACKFILL, "every day, none missing, none extra"
    assert sum(e[1] for e in expected.values()) > 0, "the window must include returns"
    for day, (gross, returns, orders) in expected.items():
        p_gross, p_returns, p_net, p_orders = published_days[day]
        assert p_orders == orders, day
        assert abs(p_gross - gross) <= Decimal("0.01"), (day, p_gross, gross)
        assert abs(p_returns - returns) <= Decimal("0.01"), (day, p_returns, returns)
        assert p_net == p_gross - p_returns


def test_the_marts_run_published_and_each_day_was_loaded_once(published):
    settings, _, _, marts_run, _ = published
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        assert con.execute("select run_id from meta.publication").fetchone()[0] == marts_run
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        loads = dict(con.execute("select _ds, count(distinct _run_id) from raw.orders group by 1").fetchall())
    assert sorted(loads) == HISTORY + BACKFILL and set(loads.values()) == {1}


def test_the_serving_file_holds_no_personal_data(published):
    """What dashboards can read: no e-mail/phone shaped values, none of the customers' identifiers."""
    from governance.pii_scan import scan

    settings = published[0]
    with sqlite3.connect(settings.app_db_url.removeprefix("sqlite:///")) as con:
        known = [v for row in con.execute("select email, full_name, phone, street_address from customers") for v in row]
    assert len(known) > 50
    assert scan(settings.serving_path, known_values=known) == []


def test_the_pii_key_is_in_no_log_metadata_or_data_file(published):
    """Airflow's metadata DB and task logs, dbt's artifacts, the lake and the warehouse: no copy of the key."""
    settings = published[0]
    needle = PII_KEY.encode()
    places = [settings.airflow_home, settings.run_dir, settings.lake_dir, settings.warehouse_dir]
    places += [settings.dbt_project_dir / "target", settings.dbt_project_dir / "logs"]
    searched = [p for place in places if place.exists() for p in place.rglob("*") if p.is_file()]
    assert any(p.name == "airflow.db" for p in searched) and any(p.suffix == ".log" for p in searched)
    # dbt's own artifacts (compiled SQL included) are searched after a build in tests/dbt/test_pii_key_stays_secret.py.
    assert any(p.name == "manifest.json" for p in searched)
    assert [str(p) for p in searched if needle in p.read_bytes()] == []


def test_a_failing_gate_on_a_rerun_leaves_served_and_loaded_data_untouched(published, running_airflow):
    settings, runs, _, _, _ = published
    _, _, api = running_airflow
    day = BACKFILL[-1]
    run_id = next(r["dag_run_id"] for r in runs if r["logical_date"].startswith(str(day)))
    before = hashlib.sha256(settings.serving_path.read_bytes()).hexdigest()
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        loaded = con.execute("select count(*) from raw.order_items where _ds = ?", [day]).fetchone()[0]
    assert loaded > 0
    with sqlite3.connect(settings.app_db_url.removeprefix("sqlite:///")) as con:
        # A bug upstream rewrites the day's lines with negative prices (and touches them, so they re-extract).
        changed = con.execute(
            "update order_items set unit_price_cents = -unit_price_cents where date(created_at) = ?", [str(day)]
        ).rowcount
    assert changed > 0
    # The engineer reruns the day: Clear on the run in the UI.
    api.post(
        "/dags/shop_daily/clearTaskInstances",
        {"dag_run_id": run_id, "dry_run": False, "only_failed": False, "reset_dag_runs": True},
    )
    assert api.wait_for_run("shop_daily", run_id) == "failed"
    tis = {ti["task_id"]: ti for ti in api.get(f"/dags/shop_daily/dagRuns/{run_id}/taskInstances")["task_instances"]}
    assert tis["gate_landed"]["state"] == "failed" and tis["load"]["state"] == "upstream_failed"
    log = json.dumps(
        api.get(
            f"/dags/shop_daily/dagRuns/{run_id}/taskInstances/gate_landed/logs/{tis['gate_landed']['try_number']}",
            full_content="true",
        )
    )
    assert "gate1" in log and "unit_price_cents" in log, log[-2000:]
    assert hashlib.sha256(settings.serving_path.read_bytes()).hexdigest() == before
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select count(*) from raw.order_items where _ds = ?", [day]).fetchone()[0] == loaded
        assert con.execute("select min(unit_price_cents) from raw.order_items where _ds = ?", [day]).fetchone()[0] > 0


def test_the_weekly_whole_table_tests_catch_an_audited_row_broken_later(published, running_airflow):
    """The daily build tested each row once; data_tests_full (weekly) tests every row again."""
    settings, _, _, _, marts_state = published
    _, _, api = running_airflow
    assert marts_state == "success"
    with duckdb.connect(str(settings.warehouse_path)) as con:
        event_id, event_type = con.execute(
            "select event_id, event_type from staging.stg_shop__web_events order by event_id limit 1"
        ).fetchone()
        # an old row, audited by the daily build, broken afterwards by hand
        con.execute("update staging.stg_shop__web_events set event_type = 'teleport' where event_id = ?", [event_id])
    try:
        api.wait_for_dag("data_tests_full")
        api.patch("/dags/data_tests_full", {"is_paused": False})
        run_id = api.post("/dags/data_tests_full/dagRuns", {"logical_date": None})["dag_run_id"]
        assert api.wait_for_run("data_tests_full", run_id) == "failed"
        log = json.dumps(
            api.get(f"/dags/data_tests_full/dagRuns/{run_id}/taskInstances/test_all_rows/logs/1", full_content="true")
        )
        assert "failed on whole tables: accepted_values_stg_shop__web_events_event_type" in log, log[-2000:]
    finally:
        with duckdb.connect(str(settings.warehouse_path)) as con:
            restore = "update staging.stg_shop__web_events set event_type = ? where event_id = ?"
            con.execute(restore, [event_type, event_id])


def test_the_vendor_token_is_masked_in_every_task_log(running_airflow, vendor_api):
    """A run of marketing_api_daily under the scheduler reads the API through the `marketing_api` connection:
    every request carries the token, every header line the client logs shows it as ***."""
    settings, _, api = running_airflow
    # Its load updates the marketing Asset: no marts run may start from it while the module goes on.
    api.patch("/dags/elt_marts", {"is_paused": True})
    api.wait_for_dag("marketing_api_daily")
    day = f"{YESTERDAY}T00:00:00Z"
    run_id = api.post(
        "/dags/marketing_api_daily/dagRuns",
        {
            "logical_date": day,
            "data_interval_start": day,
            "data_interval_end": f"{YESTERDAY + dt.timedelta(days=1)}T00:00:00Z",
        },
    )["dag_run_id"]
    # Unpaused after the run for yesterday exists, so the scheduler does not add its own for that day.
    api.patch("/dags/marketing_api_daily", {"is_paused": False})
    assert api.wait_for_run("marketing_api_daily", run_id) == "success"
    assert vendor_api.requests and all(r.token_ok for r in vendor_api.requests)

    # Every task log (what the UI shows). Not the scheduler's own console (var/run): Airflow 3.3's
    # LocalExecutor echoes task logs there without its task log masker, which is why header logging
    # is for debugging only.
    logs = [p for p in (settings.airflow_home / "logs").rglob("*") if p.is_file()]
    task_logs = [p for p in logs if "dag_id=marketing_api_daily" in str(p)]
    assert any(b"'Authorization': 'Bearer ***'" in p.read_bytes() for p in task_logs), "the headers were logged"
    assert [str(p) for p in logs if MARKETING_TOKEN.encode() in p.read_bytes()] == []


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

"""The whole path through real Airflow: app DB -> lake -> gate 1 -> raw -> dbt -> gate 2 -> serving.

History is loaded headless (the runner `make run` uses), the last days run through
`airflow dags test` of `shop_daily` then `elt_marts` - Airflow's own executor of a DAG run, with
Cosmos rendering one task per dbt model - and the published KPI is checked against a
computation straight from the app DB.
Then a day with bad data must fail at gate 1 and leave the serving file exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.conftest import DAY0, stack_environment

pytestmark = pytest.mark.slow

DAYS = [DAY0 + dt.timedelta(days=n) for n in range(9)]
HEADLESS, AIRFLOW_DAYS, BAD_DAY = DAYS[:6], DAYS[6:8], DAYS[8]
E2E_PII_KEY = "e2e-pii-key-3b9d0c71f4"


def airflow(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), *args], env=env, capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"airflow {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def dag_run(env: dict, ds: dt.date, dag_id: str = "shop_daily") -> dict:
    out = airflow(env, "dags", "list-runs", dag_id, "-o", "json").stdout
    # Airflow logs a warning or two on stdout before the JSON document.
    runs = json.loads(next(line for line in reversed(out.splitlines()) if line.startswith("[")))
    found = [r for r in runs if str(r.get("logical_date", "")).startswith(str(ds))]
    assert found, f"no {dag_id} run recorded for {ds}: {runs}"
    return found[0]


def expected_daily_revenue(app_db: str) -> dict[dt.date, tuple[Decimal, Decimal, int]]:
    """Net revenue per day computed directly from the operational DB (not from our models)."""
    with sqlite3.connect(app_db) as con:
        sales = con.execute(
            "select date(o.ordered_at), sum(i.quantity * i.unit_price_cents * o.eur_exchange_rate) / 100.0, "
            "count(distinct o.order_id) from orders o join order_items i on i.order_id = o.order_id "
            "where o.order_status != 'cancelled' group by 1"
        ).fetchall()
        refunds = dict(
            con.execute(
                "select date(r.returned_at), sum(r.refund_cents * o.eur_exchange_rate) / 100.0 "
                "from returns r join orders o on o.order_id = r.order_id group by 1"
            ).fetchall()
        )
    out = {}
    for day, gross, orders in sales:
        returns = refunds.get(day, 0.0)
        out[dt.date.fromisoformat(day)] = (round(Decimal(gross), 2), round(Decimal(returns), 2), orders)
    return out


@pytest.fixture(scope="module")
def stack_env(tmp_path_factory):
    from ingestion.simulator.run import simulate
    from stackctl.airflow_service import airflow_env
    from stackctl.dbt_cli import run_dbt
    from stackctl.pipeline import run_range
    from stackctl.settings import get_settings

    root = tmp_path_factory.mktemp("stack")
    with stack_environment(
        root,
        E2E_PII_KEY,
        AIRFLOW_ADMIN_USER="e2e_admin",
        AIRFLOW_ADMIN_PASSWORD="e2e-password",
        AIRFLOW_API_SECRET="e2e-secret",
    ):
        settings = get_settings()
        # Each day is extracted after it ends, before later days change its rows (as in production).
        simulate(settings.app_db_url, DAY0, HEADLESS[-1], progress=False)
        run_dbt(settings, "parse", "--quiet", quiet=True)
        run_range(settings, HEADLESS[0], HEADLESS[-1], "e2e-history", progress=lambda msg: None)
        env = airflow_env(settings)
        env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
        # `dags test` runs one task at a time, and a watcher sensor that happens to start before
        # the dbt run would wait for it forever: here each model runs as its own dbt task. The
        # watcher mode (the default) is exercised under a real scheduler in test_backfill.py.
        env["DBT_EXECUTION_MODE"] = "local"
        airflow(env, "db", "migrate")
        airflow(env, "pools", "set", "duckdb_warehouse", "1", "warehouse writer")
        yield settings, env


@pytest.fixture(scope="module")
def airflow_runs(stack_env):
    settings, env = stack_env
    from ingestion.simulator.run import simulate

    for ds in AIRFLOW_DAYS:
        simulate(settings.app_db_url, DAY0, ds, progress=False)
        airflow(env, "dags", "test", "shop_daily", str(ds))
        assert dag_run(env, ds)["state"] == "success"
    # elt_marts is asset-scheduled (shop + marketing API); here it runs once after the last day
    # (one run per model through Cosmos takes a few minutes on 2 cores).
    airflow(env, "dags", "test", "elt_marts", str(AIRFLOW_DAYS[-1]))
    assert dag_run(env, AIRFLOW_DAYS[-1], "elt_marts")["state"] == "success"
    return settings, env


def test_published_net_revenue_equals_the_app_db(airflow_runs):
    settings, _ = airflow_runs
    expected = expected_daily_revenue(settings.app_db_url.removeprefix("sqlite:///"))
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        rows = con.execute(
            "select revenue_date, gross_revenue_eur, returns_eur, net_revenue_eur, orders "
            "from marts.fct_daily_revenue order by 1"
        ).fetchall()
    published = {r[0]: r[1:] for r in rows}
    assert sorted(published) == DAYS[:8], "every day, none missing, none extra"
    assert sum(e[1] for e in expected.values()) > 0, "the window must include returns"
    for day, (gross, returns, orders) in expected.items():
        p_gross, p_returns, p_net, p_orders = published[day]
        assert p_orders == orders, day
        assert abs(p_gross - gross) <= Decimal("0.01"), (day, p_gross, gross)
        assert abs(p_returns - returns) <= Decimal("0.01"), (day, p_returns, returns)
        assert p_net == p_gross - p_returns


def test_airflow_run_published_and_loaded_each_day_once(airflow_runs):
    settings, env = airflow_runs
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        run_id = con.execute("select run_id from meta.publication").fetchone()[0]
    assert run_id == dag_run(env, AIRFLOW_DAYS[-1], "elt_marts")["run_id"]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        loads = dict(con.execute("select _ds, count(distinct _run_id) from raw.orders group by 1").fetchall())
    assert sorted(loads) == DAYS[:8] and set(loads.values()) == {1}


def test_a_failing_gate_leaves_the_serving_file_untouched(airflow_runs):
    from ingestion.simulator.run import simulate

    settings, env = airflow_runs
    before = hashlib.sha256(settings.serving_path.read_bytes()).hexdigest()
    simulate(settings.app_db_url, DAY0, BAD_DAY, progress=False)
    with sqlite3.connect(settings.app_db_url.removeprefix("sqlite:///")) as con:
        # A bug upstream writes negative prices for the day's lines.
        changed = con.execute(
            "update order_items set unit_price_cents = -unit_price_cents where created_at >= ?", [str(BAD_DAY)]
        ).rowcount
    assert changed > 0
    result = airflow(env, "dags", "test", "shop_daily", str(BAD_DAY), check=False)
    assert dag_run(env, BAD_DAY)["state"] == "failed"
    log = result.stdout + result.stderr
    assert "gate1" in log and "unit_price_cents" in log, log[-2000:]
    assert hashlib.sha256(settings.serving_path.read_bytes()).hexdigest() == before
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select count(*) from raw.order_items where _ds = ?", [BAD_DAY]).fetchone()[0] == 0


def test_the_serving_file_holds_no_personal_data(airflow_runs):
    """What dashboards can read: no e-mail/phone shaped values, none of the customers' identifiers."""
    from governance.pii_scan import scan

    settings, _ = airflow_runs
    with sqlite3.connect(settings.app_db_url.removeprefix("sqlite:///")) as con:
        known = [v for row in con.execute("select email, full_name, phone, street_address from customers") for v in row]
    assert len(known) > 100
    assert scan(settings.serving_path, known_values=known) == []


def test_the_pii_key_is_in_no_log_metadata_or_data_file(airflow_runs):
    """Airflow's metadata DB and task logs, dbt's artifacts, the lake and the warehouse: no copy of the key."""
    settings, _ = airflow_runs
    needle = E2E_PII_KEY.encode()
    places = [
        settings.airflow_home,
        settings.run_dir,
        settings.lake_dir,
        settings.warehouse_dir,
        settings.dbt_project_dir / "target",
        settings.dbt_project_dir / "logs",
    ]
    searched = [p for place in places if place.exists() for p in place.rglob("*") if p.is_file()]
    assert any(p.name == "airflow.db" for p in searched) and any(p.suffix == ".log" for p in searched)
    assert [str(p) for p in searched if needle in p.read_bytes()] == []

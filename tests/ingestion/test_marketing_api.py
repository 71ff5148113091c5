"""The external API source against a real HTTP server on 127.0.0.1: paging, faults, drift, idempotency.

The fake vendor (`ingestion.marketing_api.server`) runs in a thread on a free port and records
every request it answers, so the tests check what the client really did on the wire (how many
requests, how long it waited, which bytes were sent), not what the client says it did.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from ingestion.lake import partition_dir
from ingestion.marketing_api import fake_data
from ingestion.marketing_api.batch import land_day, load_days
from ingestion.marketing_api.client import ClientConfig, MarketingApiAuthError, MarketingApiClient, MarketingApiError
from ingestion.marketing_api.contract import FX, SPEND
from ingestion.marketing_api.drift import SchemaDriftError
from ingestion.marketing_api.landing import page_files
from ingestion.marketing_api.server import FakeMarketingApi, ServerConfig
from ingestion.simulator.generate import eur_rate
from tests.conftest import DAY0

TOKEN = "test-token-5f2c"
DAY = DAY0 + dt.timedelta(days=1)
NEXT_DAY = DAY + dt.timedelta(days=2)
SOURCE = "marketing_api"
DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture
def start_api():
    """Start fake vendors on free ports; rate limit off unless a test turns it on."""
    servers: list[FakeMarketingApi] = []

    def start(**config) -> FakeMarketingApi:
        config = {"token": TOKEN, "rate_limit": 0, "page_size": 3, **config}
        server = FakeMarketingApi(ServerConfig(**config)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def client_config(server: FakeMarketingApi, **overrides) -> ClientConfig:
    """Short timeouts and backoff so fault tests take seconds, not minutes."""
    values = {
        "base_url": server.url,
        "token": TOKEN,
        "connect_timeout": 1.0,
        "read_timeout": 0.4,
        "backoff_base": 0.02,
        "backoff_max": 0.2,
        "requests_per_second": None,
    }
    return ClientConfig(**{**values, **overrides})


def typed_rows(settings, table: str, ds: dt.date) -> list[dict]:
    folder = partition_dir(settings.lake_raw_dir, SOURCE, table, ds)
    (file,) = folder.glob("part-*.parquet")
    return pq.read_table(file).to_pylist()


def warehouse_rows(settings, table: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(f"select * exclude (_run_id, _loaded_at) from raw.{table} order by all").fetchall()


def lake_files(settings) -> dict[str, str]:
    """Every file under lake/raw/marketing_api with its checksum (hidden temp folders included)."""
    root = settings.lake_raw_dir / SOURCE
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def hidden_folders(settings) -> list[Path]:
    return [p for p in (settings.lake_raw_dir / SOURCE).rglob(".*")]


def test_paging_returns_every_row_exactly_once(start_api):
    expected = fake_data.spend_rows(7, DAY)
    assert len(expected) > 6, "enough rows for several pages"
    for page_size in (1, 3, 100):
        api = start_api(page_size=page_size)
        with MarketingApiClient(client_config(api)) as client:
            pages = list(client.fetch_pages(SPEND.path, DAY))
        assert len(pages) == -(-len(expected) // page_size)
        assert all(len(p.records) == page_size for p in pages[:-1])
        assert [r for p in pages for r in p.records] == expected, f"page size {page_size}"
        assert pages[-1].next_cursor is None
        assert len([r for r in api.requests if r.path == SPEND.path]) == len(pages), "one request per page"


def test_a_day_lands_and_loads_with_the_declared_columns(stack, start_api):
    api = start_api()
    result = land_day(stack, DAY, "run-1", client_config(api))
    assert result["tables"]["marketing_spend"]["row_count"] == len(fake_data.spend_rows(7, DAY))
    assert result["drift"]["spend"]["issues"] == [] and result["drift"]["fx"]["issues"] == []
    load_days(stack, [DAY], "load-1")
    with duckdb.connect(str(stack.warehouse_path), read_only=True) as con:
        columns = {
            table: con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'raw' and table_name = ? order by ordinal_position",
                [table],
            ).fetchall()
            for table in ("marketing_spend", "exchange_rates")
        }
        spend_by_currency = dict(
            con.execute("select currency, count(*) from raw.marketing_spend group by 1").fetchall()
        )
    meta = [("_ds", "DATE"), ("_run_id", "VARCHAR"), ("_loaded_at", "TIMESTAMP")]
    assert columns["marketing_spend"] == [
        ("spend_date", "DATE"),
        ("channel", "VARCHAR"),
        ("campaign_id", "VARCHAR"),
        ("currency", "VARCHAR"),
        ("spend", "DOUBLE"),
        ("impressions", "BIGINT"),
        ("clicks", "BIGINT"),
        *meta,
    ]
    assert columns["exchange_rates"] == [("rate_date", "DATE"), ("currency", "VARCHAR"), ("eur_rate", "DOUBLE"), *meta]
    assert set(spend_by_currency) == {"EUR", "USD"}, "channels bill in EUR and USD, so FX matters"


def test_exchange_rates_agree_with_the_rates_on_shop_orders(stack, start_api):
    api = start_api()
    for ds in (DAY, NEXT_DAY):
        land_day(stack, ds, f"run-{ds}", client_config(api))
    load_days(stack, [DAY, NEXT_DAY], "load-1")
    rows = warehouse_rows(stack, "exchange_rates")
    assert len(rows) == 2 * 4
    for rate_date, currency, rate, ds in rows:
        assert rate_date == ds
        # The simulator fixes eur_exchange_rate on each order with eur_rate(): the marts must agree.
        assert rate == eur_rate(currency, rate_date), (currency, rate_date)
    assert {(r[1], r[2]) for r in rows if r[1] == "EUR"} == {("EUR", 1.0)}


def test_raw_pages_are_landed_byte_identical(stack, start_api):
    api = start_api(page_size=2)
    result = land_day(stack, DAY, "run-1", client_config(api))
    for contract in (SPEND, FX):
        files = page_files(stack.lake_raw_dir, SOURCE, contract.endpoint, DAY)
        sent = [r.body_sha256 for r in api.requests if r.path == contract.path and r.status == 200]
        assert [hashlib.sha256(f.read_bytes()).hexdigest() for f in files] == sent
        manifest = result["raw"][contract.endpoint]
        assert manifest["sha256"] == hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
        assert manifest["row_count"] == sum(len(json.loads(f.read_bytes())["data"]) for f in files)
        folder = partition_dir(stack.lake_raw_dir, SOURCE, contract.endpoint, DAY)
        on_disk = json.loads((folder / "_manifest.json").read_text())
        assert on_disk == manifest
        pages = json.loads((folder / "_pages.json").read_text())
        assert [p["file"] for p in pages] == [f.name for f in files]
        assert all("token" not in p["url"].lower() for p in pages)
    assert len(page_files(stack.lake_raw_dir, SOURCE, "spend", DAY)) > 1


def test_5xx_timeouts_and_dropped_connections_are_retried_to_the_same_result(stack, start_api):
    clean = start_api(page_size=2)
    land_day(stack, DAY, "clean", client_config(clean))
    expected_tables = {t: typed_rows(stack, t, DAY) for t in ("marketing_spend", "exchange_rates")}
    expected_pages = [p.read_bytes() for p in page_files(stack.lake_raw_dir, SOURCE, "spend", DAY)]

    faulty = start_api(page_size=2, error_rate=0.3, slow_rate=0.2, slow_seconds=1.0, drop_rate=0.15, fault_seed=3)
    result = land_day(stack, DAY, "faulty", client_config(faulty, max_attempts=10))
    faults = {f: sum(r.fault == f for r in faulty.requests) for f in ("error", "slow", "drop")}
    assert all(n > 0 for n in faults.values()), f"every kind of fault must have happened: {faults}"
    assert result["api"]["retries"] == sum(faults.values())
    assert {t: typed_rows(stack, t, DAY) for t in expected_tables} == expected_tables
    assert [p.read_bytes() for p in page_files(stack.lake_raw_dir, SOURCE, "spend", DAY)] == expected_pages
    assert not hidden_folders(stack)


def test_a_remote_apis_latency_delays_every_answer_and_changes_no_row(stack, start_api):
    # The stand-in can answer like an API across the internet (MARKETING_API_LATENCY_SECONDS), the
    # setting under which parallel backfills pay off (tests/cluster/backfill_speedup.py --api-latency).
    clean = start_api(page_size=2)
    land_day(stack, DAY, "clean", client_config(clean))
    expected = {t: typed_rows(stack, t, DAY) for t in ("marketing_spend", "exchange_rates")}

    remote = start_api(page_size=2, latency_seconds=0.2)
    began = time.monotonic()
    land_day(stack, DAY, "remote", client_config(remote))
    answered = [r for r in remote.requests if r.status == 200]
    assert len(answered) > 2 and time.monotonic() - began >= 0.2 * len(answered)
    assert {t: typed_rows(stack, t, DAY) for t in expected} == expected


def test_429_waits_for_retry_after(stack, start_api):
    api = start_api(rate_limit=2, page_size=2)
    client = MarketingApiClient(client_config(api))  # no client-side limit: it will be told to wait
    pages = list(client.fetch_pages(SPEND.path, DAY))
    assert [r for p in pages for r in p.records] == fake_data.spend_rows(7, DAY)
    log = api.requests
    limited = [i for i, r in enumerate(log) if r.status == 429]
    assert limited, "the burst must have hit the server's limit"
    assert client.stats.rate_limited == len(limited)
    for i in limited:
        retry_after = 1.0  # what the server sent: its window is one second
        assert log[i + 1].at - log[i].at >= retry_after - 0.01, "the client came back before Retry-After"
    assert client.stats.waited_seconds >= len(limited) * 1.0
    assert len(log) <= len(pages) + len(limited), "a 429 costs one extra request, no storm"


def test_the_client_side_limit_keeps_a_backfill_under_the_server_limit(stack, start_api):
    """Several days in a row (a client per day, as a headless backfill runs) share one request budget."""
    api = start_api(rate_limit=5, page_size=2)
    days = [DAY + dt.timedelta(days=n) for n in range(3)]
    for ds in days:
        land_day(stack, ds, f"run-{ds}", client_config(api, requests_per_second=5))
    load_days(stack, days, "load-1")
    assert len(warehouse_rows(stack, "marketing_spend")) == sum(len(fake_data.spend_rows(7, ds)) for ds in days)
    arrivals = [r.at for r in api.requests]
    assert len(arrivals) > 15
    assert not [r for r in api.requests if r.status == 429]
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
    assert busiest <= 5, f"{busiest} requests within one second"


def test_a_wrong_token_fails_at_once_without_retries(stack, start_api, monkeypatch):
    api = start_api()
    with pytest.raises(MarketingApiAuthError, match=r"HTTP 401.*MARKETING_API_TOKEN") as failure:
        land_day(stack, DAY, "run-1", client_config(api, token="not-the-token"))
    assert "\n" not in str(failure.value)
    assert [(r.status, r.token_ok) for r in api.requests] == [(401, False)], "exactly one request"
    assert lake_files(stack) == {} and not hidden_folders(stack)

    monkeypatch.delenv("MARKETING_API_TOKEN", raising=False)
    with pytest.raises(MarketingApiAuthError, match="MARKETING_API_TOKEN is not set"):
        land_day(stack, DAY, "run-2")
    assert len(api.requests) == 1


def test_a_new_field_is_tolerated_and_recorded(stack, start_api):
    api = start_api(drift="new_field")
    result = land_day(stack, DAY, "run-1", client_config(api))
    issues = result["drift"]["spend"]["issues"]
    rows = len(fake_data.spend_rows(7, DAY))
    assert issues == [
        {
            "kind": "new_field",
            "field": "conversions",
            "expected": None,
            "seen": "integer",
            "rows": rows,
            "action": "tolerated",
            "hint": None,
        }
    ]
    folder = partition_dir(stack.lake_raw_dir, SOURCE, "spend", DAY)
    assert json.loads((folder / "_drift_report.json").read_text())["issues"] == issues
    assert "conversions" in page_files(stack.lake_raw_dir, SOURCE, "spend", DAY)[0].read_text(), "raw kept as sent"
    assert list(typed_rows(stack, "marketing_spend", DAY)[0]) == SPEND.schema.names, "typed table keeps the contract"
    load_days(stack, [DAY], "load-1")
    assert len(warehouse_rows(stack, "marketing_spend")) == rows


@pytest.mark.parametrize(
    ("endpoint", "drift", "expected_issues", "reason"),
    [
        (
            "spend",
            "renamed_field",
            {
                ("missing_field", "spend", "number", "absent", "fatal"),
                ("new_field", "cost", None, "number", "tolerated"),
            },
            "field 'spend' missing in {rows} record(s) (expected number); looks renamed to 'cost'",
        ),
        (
            "spend",
            "type_change",
            {("type_change", "spend", "number", "string", "fatal")},
            "field 'spend' is string, expected number",
        ),
        (
            "fx",
            "renamed_field",
            {
                ("missing_field", "eur_per_unit", "number", "absent", "fatal"),
                ("new_field", "rate", None, "number", "tolerated"),
            },
            "field 'eur_per_unit' missing in {rows} record(s) (expected number); looks renamed to 'rate'",
        ),
    ],
)
def test_a_renamed_field_or_a_type_change_fails_and_keeps_the_last_good_day(
    stack, start_api, endpoint, drift, expected_issues, reason
):
    api = start_api()
    land_day(stack, DAY, "good", client_config(api))
    load_days(stack, [DAY], "load-good")
    before = {t: warehouse_rows(stack, t) for t in ("marketing_spend", "exchange_rates")}
    typed_before = {
        p: h for p, h in lake_files(stack).items() if p.split("/")[0] in ("marketing_spend", "exchange_rates")
    }

    api.set_faults(drift=drift, drift_endpoints=(endpoint,))
    with pytest.raises(SchemaDriftError) as failure:
        land_day(stack, DAY, "drifted", client_config(api))
    rows = len(fake_data.spend_rows(7, DAY)) if endpoint == "spend" else len(fake_data.FX_CURRENCIES)
    message = str(failure.value)
    assert "\n" not in message and f"marketing_api.{endpoint} ds={DAY}: " + reason.format(rows=rows) in message
    (report,) = failure.value.reports
    assert {(i.kind, i.field, i.expected, i.seen, i.action) for i in report.issues} == expected_issues

    # Raw pages of the drifted day are kept for inspection, with the report beside them.
    folder = partition_dir(stack.lake_raw_dir, SOURCE, endpoint, DAY)
    on_disk = json.loads((folder / "_drift_report.json").read_text())
    assert on_disk["fatal"] is True and on_disk["run_id"] == "drifted"
    assert {p.name.split("-page-")[0] for p in page_files(stack.lake_raw_dir, SOURCE, endpoint, DAY)} == {
        "part-drifted"
    }
    # The typed tables and the warehouse keep the last good version of the day.
    typed_after = {
        p: h for p, h in lake_files(stack).items() if p.split("/")[0] in ("marketing_spend", "exchange_rates")
    }
    assert typed_after == typed_before
    load_days(stack, [DAY], "load-again")
    assert {t: warehouse_rows(stack, t) for t in before} == before


def test_rerunning_a_day_replaces_it_never_appends(stack, start_api):
    api = start_api()
    for ds in (DAY, NEXT_DAY):
        land_day(stack, ds, f"run-1-{ds}", client_config(api))
    load_days(stack, [DAY, NEXT_DAY], "load-1")
    before = {t: warehouse_rows(stack, t) for t in ("marketing_spend", "exchange_rates")}
    assert all(before.values())

    land_day(stack, DAY, "run-2", client_config(api))
    load_days(stack, [DAY], "load-2")
    assert {t: warehouse_rows(stack, t) for t in before} == before
    with duckdb.connect(str(stack.warehouse_path), read_only=True) as con:
        runs = con.execute(
            "select _ds, list(distinct _run_id) from raw.marketing_spend group by 1 order by 1"
        ).fetchall()
    assert runs == [(DAY, ["load-2"]), (NEXT_DAY, ["load-1"])]
    for folder in ("spend", "fx", "marketing_spend", "exchange_rates"):
        names = {p.name for p in partition_dir(stack.lake_raw_dir, SOURCE, folder, DAY).iterdir()}
        assert all("run-2" in n for n in names if n.startswith("part-")), (folder, names)
    assert not hidden_folders(stack)


@pytest.mark.parametrize(
    ("fault", "last_error"),
    [
        ({"error_rate": 1.0}, r"last error: HTTP 50[023]"),
        ({"slow_rate": 1.0, "slow_seconds": 1.0}, r"last error: (ReadTimeout|ConnectionError).*timed out"),
    ],
)
def test_a_persistent_failure_stops_after_max_attempts_and_lands_nothing(stack, start_api, fault, last_error):
    api = start_api()
    land_day(stack, DAY, "good", client_config(api))
    lake_before = lake_files(stack)
    asked_before = len(api.requests)

    api.set_faults(**fault)
    with pytest.raises(MarketingApiError, match=r"GET .*/v1/spend\?date=2026-03-03 failed after 4 attempts") as failure:
        land_day(stack, DAY, "broken", client_config(api, max_attempts=4))
    assert "\n" not in str(failure.value)
    assert failure.match(last_error)
    assert len(api.requests) - asked_before == 4, "exactly max_attempts requests, then stop"
    assert lake_files(stack) == lake_before, "the previous day is untouched"
    assert not hidden_folders(stack), "no staging folder left behind"


def test_a_cursor_that_never_ends_is_caught(start_api):
    api = start_api(page_size=1)
    client = MarketingApiClient(client_config(api, max_pages=3))
    with pytest.raises(MarketingApiError, match="more than 3 pages"):
        list(itertools.islice(client.fetch_pages(SPEND.path, DAY), 10))
    assert len(api.requests) == 3


def _airflow(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_the_dag_lands_and_loads_a_day_and_fails_fast_on_drift(stack, start_api, tmp_path, monkeypatch):
    """`airflow dags test` (Airflow's own run of the DAG) against the fake API, then a drifted day.

    The API's URL and token reach the DAG only as the Airflow connection `marketing_api`, which
    stackctl builds from .env's variables; those are not in the run's environment. (That the token
    stays out of task logs is checked on a scheduled run, in tests/e2e/test_scheduled_e2e.py:
    `dags test` runs tasks in its own process, whose console Airflow does not mask.)"""
    from stackctl.airflow_service import airflow_connections

    api = start_api(rate_limit=10)
    home = tmp_path / "airflow"
    monkeypatch.setenv("MARKETING_API_URL", api.url)
    monkeypatch.setenv("MARKETING_API_TOKEN", TOKEN)
    monkeypatch.delenv("AIRFLOW_CONN_MARKETING_API", raising=False)
    connection = airflow_connections(stack)["AIRFLOW_CONN_MARKETING_API"]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MARKETING_API_")},
        # STACK_DATA_DIR / STACK_VAR_DIR from the `stack` fixture
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "DO_NOT_TRACK": "1",
        "PYTHONPATH": str(DAGS.parent),
        "AIRFLOW_CONN_MARKETING_API": connection,
    }
    for args in (("db", "migrate"), ("pools", "set", "duckdb_warehouse", "1", "warehouse writer")):
        assert _airflow(env, *args).returncode == 0
    dag_file = str(DAGS / "marketing_api_daily.py")

    ok = _airflow(env, "dags", "test", "marketing_api_daily", str(DAY), "-f", dag_file)
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    assert len(warehouse_rows(stack, "marketing_spend")) == len(fake_data.spend_rows(7, DAY))
    assert len(warehouse_rows(stack, "exchange_rates")) == 4
    assert api.requests and all(r.token_ok for r in api.requests), "every request carried the connection's token"

    api.set_faults(drift="type_change")
    asked = len(api.requests)
    _airflow(env, "dags", "test", "marketing_api_daily", str(NEXT_DAY), "-f", dag_file)
    alerts = [json.loads(line) for line in (stack.var_dir / "alerts.jsonl").read_text().splitlines()]
    assert [a["task_id"] for a in alerts] == ["fetch_and_land"]
    assert "field 'spend' is string, expected number" in alerts[0]["summary"]
    assert alerts[0]["try_number"] == 1, "drift is not retried"
    pages = -(-len(fake_data.spend_rows(7, NEXT_DAY)) // 3) + 1
    assert len(api.requests) - asked == pages, "one try: each page of spend and fx once, no retries"
    assert {r[-1] for r in warehouse_rows(stack, "marketing_spend")} == {DAY}, "the drifted day was not loaded"

"""Serve layer: the Superset assets deploy idempotently and every dashboard chart shows the mart's numbers.

The static tests read `superset/assets/` and `superset/superset_config.py` without a server. The
server tests start a real Superset (gunicorn from the Superset venv, via `superset.provision`) on a
free port, against a temporary home, metadata DB and serving file, as `make run` would, and stop it
at the end.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import json
import os
import secrets
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest
import yaml
from sqlalchemy.engine import make_url

from stackctl import procs
from stackctl.settings import Settings, get_settings
from superset import provision

REPO = Path(__file__).resolve().parents[2]
ASSETS = provision.ASSETS_DIR

# Tables the publish step puts in serving.duckdb that datasets may use.
PUBLISHED_MARTS = {("marts", "fct_daily_revenue")}

# (revenue_date, gross_revenue_eur, returns_eur, orders): a day with returns, a day without,
# a day with only a refund (no orders: AOV is null) and an ordinary day.
FIXTURE_DAYS = [
    (dt.date(2026, 11, 1), Decimal("1000.00"), Decimal("100.00"), 10),
    (dt.date(2026, 11, 2), Decimal("1500.50"), Decimal("0.00"), 15),
    (dt.date(2026, 11, 3), Decimal("0.00"), Decimal("25.25"), 0),
    (dt.date(2026, 11, 4), Decimal("820.30"), Decimal("50.25"), 8),
]


def _load_assets() -> dict[str, dict[str, Any]]:
    return {path.relative_to(ASSETS).as_posix(): yaml.safe_load(path.read_text()) for path in ASSETS.rglob("*.yaml")}


def _of_kind(assets: dict[str, dict[str, Any]], folder: str) -> dict[str, dict[str, Any]]:
    return {name: doc for name, doc in assets.items() if name.startswith(f"{folder}/")}


def _chart_nodes(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [node for node in dashboard["position"].values() if isinstance(node, dict) and node.get("type") == "CHART"]


def _chart_metrics(chart: dict[str, Any]) -> set[str]:
    params = chart["params"]
    names = set(params.get("metrics", [])) | ({params["metric"]} if "metric" in params else set())
    if chart.get("query_context"):
        for query in json.loads(chart["query_context"])["queries"]:
            names |= set(query["metrics"])
    return names


# --- static: the bundle is consistent ------------------------------------------------------------


def test_superset_folder_cannot_shadow_the_real_superset_package() -> None:
    # A regular package here would win over the installed `superset` in the Superset venv
    # whenever the repo root is on sys.path; a namespace package never does.
    assert not (REPO / "superset" / "__init__.py").exists()
    assert provision.__name__ == "superset.provision"


def test_every_referenced_uuid_exists_and_tables_are_published_marts() -> None:
    assets = _load_assets()
    assert assets["metadata.yaml"]["type"] == "assets"
    databases = {doc["uuid"]: doc for doc in _of_kind(assets, "databases").values()}
    datasets = {doc["uuid"]: doc for doc in _of_kind(assets, "datasets").values()}
    charts = {doc["uuid"]: doc for doc in _of_kind(assets, "charts").values()}
    dashboards = _of_kind(assets, "dashboards")
    all_uuids = [doc["uuid"] for name, doc in assets.items() if name != "metadata.yaml"]
    assert len(all_uuids) == len(set(all_uuids)), "a UUID is used twice"
    assert databases and datasets and charts and dashboards

    for name, dataset in _of_kind(assets, "datasets").items():
        assert dataset["database_uuid"] in databases, name
        assert (dataset["schema"], dataset["table_name"]) in PUBLISHED_MARTS, name
        database_name = databases[dataset["database_uuid"]]["database_name"]
        assert name == f"datasets/{database_name}/{dataset['table_name']}.yaml"

    for name, chart in _of_kind(assets, "charts").items():
        assert chart["dataset_uuid"] in datasets, name
        dataset = datasets[chart["dataset_uuid"]]
        defined = {metric["metric_name"] for metric in dataset["metrics"]}
        assert _chart_metrics(chart) <= defined, f"{name} uses a metric its dataset does not define"
        assert "datasource" not in chart["params"], f"{name} carries an environment id"
        assert chart["query_context"], f"{name} needs a saved query for GET /api/v1/chart/<id>/data/"

    placed: set[str] = set()
    for name, dashboard in dashboards.items():
        position = dashboard["position"]
        for node_id, node in position.items():
            if isinstance(node, dict):
                assert node["id"] == node_id, name
                for child in node.get("children", []):
                    assert child in position, f"{name}: {node_id} has a missing child {child}"
        nodes = _chart_nodes(dashboard)
        assert all(node["meta"]["uuid"] in charts for node in nodes), name
        chart_ids = [node["meta"]["chartId"] for node in nodes]
        assert all(isinstance(i, int) for i in chart_ids) and len(set(chart_ids)) == len(chart_ids), name
        placed |= {node["meta"]["uuid"] for node in nodes}
        for native_filter in dashboard["metadata"].get("native_filter_configuration", []):
            for target in native_filter.get("targets", []):
                if "datasetUuid" in target:
                    assert target["datasetUuid"] in datasets, name
    assert placed == set(charts), "every chart belongs on a dashboard"


def test_database_uri_is_templated_and_rendered_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ASSETS / "databases" / "serving.yaml").read_text()
    assert "${SERVING_PATH}" in text
    assert "password" not in text.lower()
    serving = tmp_path / "wh #1" / "serving.duckdb"  # YAML-special characters survive rendering
    monkeypatch.setenv("SERVING_PATH", str(serving))
    with zipfile.ZipFile(io.BytesIO(provision.build_bundle(get_settings()))) as bundle:
        names = bundle.namelist()
        database = yaml.safe_load(bundle.read("assets/databases/serving.yaml"))
        assert all("${" not in bundle.read(name).decode() for name in names)
    assert database["sqlalchemy_uri"] == f"duckdb:///{serving}"
    assert database["extra"]["engine_params"]["connect_args"] == {
        "read_only": True,
        "config": {"enable_external_access": False},
    }
    assert sorted(names) == sorted(f"assets/{p.relative_to(ASSETS).as_posix()}" for p in ASSETS.rglob("*.yaml"))


def _load_config(monkeypatch: pytest.MonkeyPatch, serving: Path) -> ModuleType:
    monkeypatch.setenv("SUPERSET_SECRET_KEY", "test-secret")
    monkeypatch.setenv("SERVING_PATH", str(serving))
    spec = importlib.util.spec_from_file_location("superset_config_under_test", provision.CONFIG_PATH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_keeps_duckdb_read_only_inside_the_warehouse_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "warehouse"
    config = _load_config(monkeypatch, warehouse / "serving.duckdb")
    validate = config.DB_SQLA_URI_VALIDATOR

    validate(make_url(f"duckdb:///{warehouse}/serving.duckdb"))
    validate(make_url("postgresql://user@localhost/db"))  # other engines are not its business
    for uri, reason in [
        (f"duckdb:///{tmp_path}/elsewhere.duckdb", "outside the warehouse folder"),
        (f"duckdb:///{warehouse}/../escape.duckdb", "outside the warehouse folder"),
        ("duckdb:///:memory:", "must point at a file"),
        (f"duckdb:///{warehouse}/serving.duckdb?enable_external_access=true", "query parameters"),
    ]:
        with pytest.raises(ValueError, match=reason):
            validate(make_url(uri))

    # Whatever a database's `extra` says, connections are read-only without external access.
    uri = make_url(f"duckdb:///{warehouse}/serving.duckdb")
    params = {"connect_args": {"read_only": False, "config": {"enable_external_access": True, "threads": 2}}}
    _, mutated = config.DB_CONNECTION_MUTATOR(uri, params, "admin", None, None)
    assert mutated["connect_args"] == {
        "read_only": True,
        "config": {"enable_external_access": False, "threads": 2},
    }
    assert {
        "read_csv",
        "read_parquet",
        "read_json",
        "glob",
        "read_text",
        "read_blob",
    } <= config.DISALLOWED_SQL_FUNCTIONS["duckdb"]
    csp = config.TALISMAN_CONFIG["content_security_policy"]
    assert not any("scarf" in source for sources in csp.values() for source in sources)


def test_config_fails_clearly_without_a_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPERSET_SECRET_KEY", raising=False)
    spec = importlib.util.spec_from_file_location("superset_config_no_key", provision.CONFIG_PATH)
    assert spec and spec.loader
    with pytest.raises(RuntimeError, match="SUPERSET_SECRET_KEY is not set"):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


# --- procs: what start()/stop() of every service rely on -------------------------------------------


def test_procs_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    # The service forks a grandchild, as gunicorn and Airflow do; stop() must end both.
    script = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    pid = procs.start("sleeper", [sys.executable, "-c", script], run_dir=tmp_path)
    try:
        deadline = time.monotonic() + 10
        while len(_group_members(pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_group_members(pid)) == 2
        assert procs.is_running("sleeper", tmp_path)
        with pytest.raises(procs.ServiceError, match="already running"):
            procs.start("sleeper", [sys.executable, "-c", script], run_dir=tmp_path)
    finally:
        assert procs.stop("sleeper", tmp_path, timeout=5)
    assert _group_members(pid) == []
    assert not procs.is_running("sleeper", tmp_path)
    assert not procs.pid_file("sleeper", tmp_path).exists()
    assert procs.stop("sleeper", tmp_path) is False


def _group_members(pgid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,stat="], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines()]
    return [int(pid) for pid, group, stat in rows if int(group) == pgid and not stat.startswith("Z")]


def test_procs_ignores_a_stale_pid_file_whose_pid_was_reused(tmp_path: Path) -> None:
    # Our own pid stands in for "some unrelated program now holding that pid".
    procs.pid_file("ghost", tmp_path).write_text(f"{os.getpid()} 1\n")
    assert not procs.is_running("ghost", tmp_path)
    assert procs.stop("ghost", tmp_path) is False  # and it was not signalled: we are still here


def test_procs_wait_for_http_reports_a_crashed_service_with_its_log(tmp_path: Path) -> None:
    port = procs.free_port()
    procs.start("crasher", [sys.executable, "-c", "print('config error: boom'); raise SystemExit(3)"], run_dir=tmp_path)
    with pytest.raises(procs.ServiceError, match=r"(?s)crasher exited before.*config error: boom"):
        procs.wait_for_http(f"http://127.0.0.1:{port}/health", timeout=30, process_name="crasher", run_dir=tmp_path)


# --- a real Superset -----------------------------------------------------------------------------


@dataclass
class Stack:
    settings: Settings
    client: provision.SupersetClient
    timings: dict[str, float]


def _write_serving_file(path: Path, days: list[tuple[dt.date, Decimal, Decimal, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    with duckdb.connect(str(tmp)) as con:
        con.execute("create schema marts")
        con.execute(
            """
            create table marts.fct_daily_revenue (
                revenue_date date, gross_revenue_eur decimal(18, 2), returns_eur decimal(18, 2),
                net_revenue_eur decimal(18, 2), orders bigint, average_order_value_eur decimal(18, 2))
            """
        )
        con.executemany(
            "insert into marts.fct_daily_revenue values (?, ?, ?, ?, ?, ?)",
            [
                (day, gross, returns, gross - returns, orders, round(gross / orders, 2) if orders else None)
                for day, gross, returns, orders in days
            ],
        )
    os.replace(tmp, path)  # as the publish step does


@pytest.fixture(scope="module")
def superset_stack(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("superset-stack")
    serving = root / "warehouse" / "serving.duckdb"
    _write_serving_file(serving, FIXTURE_DAYS)
    with pytest.MonkeyPatch.context() as env:
        env.delenv("SUPERSET_METADATA_URI", raising=False)
        for name, value in {
            "STACK_VAR_DIR": root / "var",
            "SUPERSET_HOME": root / "var" / "superset",
            "SERVING_PATH": serving,
            "SUPERSET_PORT": procs.free_port(),
            "SUPERSET_ADMIN_USER": "test_admin",
            "SUPERSET_ADMIN_PASSWORD": secrets.token_urlsafe(16),
            "SUPERSET_SECRET_KEY": secrets.token_urlsafe(32),
            "SUPERSET_WEB_WORKERS": "1",
        }.items():
            env.setenv(name, str(value))
        settings = get_settings()
        timings: dict[str, float] = {}
        try:
            began = time.monotonic()
            timings.update(provision.init_metadata(settings))
            timings["init total"] = time.monotonic() - began
            began = time.monotonic()
            provision.start(settings)
            timings["start to /health"] = time.monotonic() - began
            timings["import"] = provision.import_assets(settings)
            client = provision.SupersetClient(provision.base_url(settings), provision.admin_credentials())
            summary = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in timings.items())
            print(f"\nsuperset timings: {summary}")
            (artifacts_dir / "superset_timings.json").write_text(json.dumps(timings, indent=2) + "\n")
            yield Stack(settings, client, timings)
        finally:
            provision.stop(settings)
        assert not provision.is_running(settings)


def _count(stack: Stack, kind: str) -> dict[str, int]:
    result = stack.client.get(f"/api/v1/{kind}/", q="(columns:!(id,uuid),page_size:100)")
    return {row["uuid"]: row["id"] for row in result["result"]}


def test_init_is_skipped_once_done(superset_stack: Stack) -> None:
    assert provision.init_metadata(superset_stack.settings) == {}


def test_importing_twice_creates_no_duplicates(superset_stack: Stack) -> None:
    before = {kind: _count(superset_stack, kind) for kind in ("database", "dataset", "chart", "dashboard")}
    provision.import_assets(superset_stack.settings)
    after = {kind: _count(superset_stack, kind) for kind in ("database", "dataset", "chart", "dashboard")}
    assert after == before  # same objects, same ids: updated in place by UUID
    assets = _load_assets()
    for kind, folder in [
        ("database", "databases"),
        ("dataset", "datasets"),
        ("chart", "charts"),
        ("dashboard", "dashboards"),
    ]:
        assert set(after[kind]) == {doc["uuid"] for doc in _of_kind(assets, folder).values()}, kind


def _epoch_ms(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000


def _expected_rows(days: list[tuple[dt.date, Decimal, Decimal, int]]) -> dict[str, list[dict[str, Any]]]:
    """What each Executive KPIs chart must show, computed from the fixture rows (by chart UUID)."""
    gross = sum(d[1] for d in days)
    returns = sum(d[2] for d in days)
    orders = sum(d[3] for d in days)
    return {
        # Net revenue (EUR): net revenue excluding returns over all days
        "f89b2181-fcba-4c47-bb17-324c791f54ee": [{"total_net_revenue_eur": gross - returns}],
        # Orders
        "396d20be-2bbb-4b30-a2ae-81d6f4401b34": [{"total_orders": orders}],
        # Average order value (EUR): weighted, gross / orders, as the mart defines AOV
        "7bfda6d6-ffc1-43d3-a948-d8ad2d1bf2d9": [{"average_order_value_eur": gross / orders}],
        # Daily net revenue (EUR): one row per day, net and gross
        "eaae0f22-fe9c-412c-ad87-bff96c0fafd4": [
            {"revenue_date": _epoch_ms(day), "total_net_revenue_eur": g - r, "total_gross_revenue_eur": g}
            for day, g, r, _ in days
        ],
    }


def _dashboard_chart_data(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    dashboard = stack.client.get("/api/v1/dashboard/executive-kpis")["result"]
    chart_ids = [chart["id"] for chart in stack.client.get(f"/api/v1/dashboard/{dashboard['id']}/charts")["result"]]
    uuids = {chart_id: uuid for uuid, chart_id in _count(stack, "chart").items()}
    data = {}
    for chart_id in chart_ids:
        uuid = uuids[chart_id]
        # force: read the serving file, not the result cache
        results = stack.client.get(f"/api/v1/chart/{chart_id}/data/", force="true")["result"]
        assert [r["status"] for r in results] == ["success"], results
        data[uuid] = sorted(results[0]["data"], key=lambda row: row.get("revenue_date", 0))
    return data


def _assert_rows_match(actual: dict[str, list[dict[str, Any]]], expected: dict[str, list[dict[str, Any]]]) -> None:
    assert set(actual) == set(expected), "a dashboard chart has no expected numbers here (add them)"
    for uuid, rows in expected.items():
        assert len(actual[uuid]) == len(rows) > 0, uuid
        for got, want in zip(actual[uuid], rows, strict=True):
            assert got == {k: pytest.approx(float(v), abs=0.005) for k, v in want.items()}, uuid


def test_every_dashboard_chart_shows_the_marts_numbers(superset_stack: Stack) -> None:
    _assert_rows_match(_dashboard_chart_data(superset_stack), _expected_rows(FIXTURE_DAYS))


def test_a_published_serving_file_is_seen_without_a_restart(superset_stack: Stack) -> None:
    serving = superset_stack.settings.serving_path
    net_chart = _count(superset_stack, "chart")["f89b2181-fcba-4c47-bb17-324c791f54ee"]

    def cached_net_revenue() -> float:
        return float(
            superset_stack.client.get(f"/api/v1/chart/{net_chart}/data/")["result"][0]["data"][0][
                "total_net_revenue_eur"
            ]
        )

    newer = [*FIXTURE_DAYS, (dt.date(2026, 11, 5), Decimal("99.99"), Decimal("0.00"), 1)]
    old_total, new_total = (float(sum(d[1] - d[2] for d in days)) for days in (FIXTURE_DAYS, newer))
    try:
        assert cached_net_revenue() == pytest.approx(old_total)
        _write_serving_file(serving, newer)  # os.replace while Superset is running
        assert cached_net_revenue() == pytest.approx(old_total)  # the result cache still answers
        assert provision.clear_data_cache(superset_stack.settings) > 0
        assert cached_net_revenue() == pytest.approx(new_total)
        _assert_rows_match(_dashboard_chart_data(superset_stack), _expected_rows(newer))
    finally:
        _write_serving_file(serving, FIXTURE_DAYS)
        provision.clear_data_cache(superset_stack.settings)


def test_running_superset_refuses_duckdb_outside_the_warehouse_and_file_functions(superset_stack: Stack) -> None:
    outside = superset_stack.settings.serving_path.parent.parent / "elsewhere.duckdb"
    response = superset_stack.client.post(
        "/api/v1/database/test_connection/",
        json={
            "database_name": "probe",
            "sqlalchemy_uri": f"duckdb:///{outside}",
            "configuration_method": "sqlalchemy_form",
        },
    )
    assert response.status_code == 422
    assert "outside the warehouse folder" in response.text
    database_id = _count(superset_stack, "database")["a2b551e1-6fc1-4f39-a0ac-438103e1e733"]
    response = superset_stack.client.post(
        "/api/v1/sqllab/execute/",
        json={"database_id": database_id, "sql": "select * from read_csv('/etc/passwd')", "runAsync": False},
    )
    assert response.status_code >= 400
    assert "disallowed function" in response.text


def test_a_second_superset_on_the_same_port_gets_a_clear_error(superset_stack: Stack) -> None:
    port = superset_stack.settings.superset_port
    with pytest.raises(
        procs.PortInUseError, match=f"port {port} is already in use by another program; stop it or set SUPERSET_PORT"
    ):
        procs.ensure_port_free(port, "Superset", "SUPERSET_PORT")

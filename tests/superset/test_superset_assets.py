"""Serve layer: the Superset assets, roles and exports, statically and against a real Superset.

The static tests read `superset/assets/`, `superset/roles.yaml`, `superset/superset_config.py` and
the dbt marts' YAML without a server. The server tests share one real Superset for the module
(`tests/superset/stack.py`: gunicorn from the Superset venv on a free port, a temporary home and
metadata DB, the fixture serving file), as `make run` starts it: assets imported, roles applied.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
import yaml
from sqlalchemy.engine import make_url

from core.settings import get_settings
from serving.publish import marts_copy_path
from serving.schema import ML_TABLES as PUBLISHED_ML_TABLES
from serving.schema import PUBLISHED_OPS_TABLES
from stackctl import procs, superset_service
from superset import access, asset_files, latency, provision
from tests.superset import role_matrix
from tests.superset.serving_fixture import build_data, write_serving_file
from tests.superset.stack import USERS as stack_users
from tests.superset.stack import Stack, running_superset

REPO = Path(__file__).resolve().parents[2]
ASSETS = provision.ASSETS_DIR
MARTS_YAML = REPO / "dbt_project" / "models" / "marts"

# The columns of marts.fct_experiment_results that the experiment_verdicts virtual dataset reads.
VERDICT_SOURCE_COLUMNS = {
    "experiment_key",
    "experiment_variant",
    "is_control",
    "first_exposure_date",
    "last_exposure_date",
    "exposed_visitors",
    "converted_visitors",
    "conversion_rate",
    "absolute_lift",
    "relative_lift",
    "lift_ci_lower_95",
    "lift_ci_upper_95",
    "p_value",
    "is_significant",
    "has_sample_ratio_mismatch",
}
# Chart UUIDs of the Executive KPIs headline numbers and weekly trend (checked to the cent).
NET_REVENUE, ORDERS, AOV, WEEKLY = (
    "f89b2181-fcba-4c47-bb17-324c791f54ee",
    "396d20be-2bbb-4b30-a2ae-81d6f4401b34",
    "7bfda6d6-ffc1-43d3-a948-d8ad2d1bf2d9",
    "eaae0f22-fe9c-412c-ad87-bff96c0fafd4",
)
ANALYST_ONLY_DATASET = "fct_monthly_revenue_by_segment"  # on no dashboard: analysts only
ACTIVE_CUSTOMERS = "5fc13704-09c9-53d6-9b51-c78ade68cf73"  # Executive KPIs: active customers (30 days)
# Database UUIDs: `serving` (dashboards; admins in SQL Lab) and `marts` (the analyst's SQL Lab file).
# superset_config.py's default LOGIN_FAILURE_LIMIT ("5 per 5 minutes").
LOGIN_FAILURES = 5
# SQL Lab answers a query refused by an access check with 500 (Superset re-wraps its own 403).
REFUSED_STATUS = (403, 500)
SERVING_DB, MARTS_DB = "a2b551e1-6fc1-4f39-a0ac-438103e1e733", "21f10261-c43e-43a5-8693-75100b58f5a9"


def bundle_text(bundle: bytes, name: str) -> str:
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        return archive.read(name).decode()


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
            names |= {metric for metric in query.get("metrics") or [] if isinstance(metric, str)}
    return names


def _mart_columns() -> dict[str, set[str]]:
    """marts model -> its documented columns, from dbt_project/models/marts/**/*.yml."""
    columns: dict[str, set[str]] = {}
    for path in MARTS_YAML.rglob("*.yml"):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models") or []:
            columns[model["name"]] = {column["name"] for column in model.get("columns") or []}
    return columns


def _unpublished_marts() -> set[str]:
    """marts models that dbt keeps out of serving (`meta.publish: false`)."""
    return {
        model["name"]
        for path in MARTS_YAML.rglob("*.yml")
        for model in (yaml.safe_load(path.read_text()) or {}).get("models") or []
        if (model.get("meta") or model.get("config", {}).get("meta") or {}).get("publish") is False
    }


# --- static: the bundle is consistent ------------------------------------------------------------


def test_superset_folder_cannot_shadow_the_real_superset_package() -> None:
    # A regular package here would win over the installed `superset` in the Superset venv
    # whenever the repo root is on sys.path; a namespace package never does.
    assert not (REPO / "superset" / "__init__.py").exists()
    assert provision.__name__ == "superset.provision"


def test_every_referenced_uuid_exists_and_tables_are_published() -> None:
    assets = _load_assets()
    assert assets["metadata.yaml"]["type"] == "assets"
    databases = {doc["uuid"]: doc for doc in _of_kind(assets, "databases").values()}
    datasets = {doc["uuid"]: doc for doc in _of_kind(assets, "datasets").values()}
    charts = {doc["uuid"]: doc for doc in _of_kind(assets, "charts").values()}
    dashboards = _of_kind(assets, "dashboards")
    all_uuids = [doc["uuid"] for name, doc in assets.items() if name != "metadata.yaml"]
    assert len(all_uuids) == len(set(all_uuids)), "a UUID is used twice"
    assert databases and datasets and charts and dashboards
    marts = set(_mart_columns()) - _unpublished_marts()
    assert {"fct_order_lines", "dim_customers", "fct_sessions"} <= _unpublished_marts()

    for name, dataset in _of_kind(assets, "datasets").items():
        assert dataset["database_uuid"] in databases, name
        database_name = databases[dataset["database_uuid"]]["database_name"]
        assert name == f"datasets/{database_name}/{dataset['table_name']}.yaml"
        if dataset.get("sql"):
            # A virtual dataset reads published marts only.
            read = set(re.findall(r"\b(\w+)\.(\w+)\b", re.sub(r"--[^\n]*", "", dataset["sql"])))
            tables = {(schema, table) for schema, table in read if schema in {"marts", "ops", "meta", "raw", "main"}}
            assert tables and all(schema == "marts" and table in marts for schema, table in tables), name
        else:
            published = (
                (dataset["schema"] == "marts" and dataset["table_name"] in marts)
                or (dataset["schema"] == "ops" and dataset["table_name"] in PUBLISHED_OPS_TABLES)
                or (dataset["schema"] == "ml" and dataset["table_name"] in PUBLISHED_ML_TABLES)
            )
            assert published, f"{name}: {dataset['schema']}.{dataset['table_name']} is not published to serving"

    for name, chart in _of_kind(assets, "charts").items():
        assert chart["dataset_uuid"] in datasets, name
        dataset = datasets[chart["dataset_uuid"]]
        defined = {metric["metric_name"] for metric in dataset["metrics"]}
        assert _chart_metrics(chart) <= defined, f"{name} uses a metric its dataset does not define"
        assert not {"datasource", "slice_id", "dashboards"} & set(chart["params"]), f"{name} carries an environment id"
        assert chart["query_context"], f"{name} needs a saved query for GET /api/v1/chart/<id>/data/"
        assert '"datasource"' not in chart["query_context"], f"{name}: the query context names an environment id"

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
            assert set(native_filter.get("scope", {}).get("excluded", [])) <= set(chart_ids), name
    assert placed == set(charts), "every chart belongs on a dashboard"


def test_dataset_columns_exist_in_the_marts() -> None:
    """The dashboards rely on these mart columns: a renamed column fails here, not in front of a CEO."""
    marts = _mart_columns()
    relied_on: dict[str, set[str]] = {}
    for name, dataset in _of_kind(_load_assets(), "datasets").items():
        if dataset["schema"] != "marts":
            continue
        physical = {column["column_name"] for column in dataset["columns"] if not column.get("expression")}
        if dataset.get("sql"):
            assert "marts.fct_experiment_results" in dataset["sql"], name
            assert all(column in dataset["sql"] for column in VERDICT_SOURCE_COLUMNS), name
            relied_on.setdefault("fct_experiment_results", set()).update(VERDICT_SOURCE_COLUMNS)
            continue
        relied_on.setdefault(dataset["table_name"], set()).update(physical)
    for table, columns in relied_on.items():
        missing = columns - marts[table]
        assert not missing, f"marts.{table} has no column(s) {sorted(missing)} (dbt_project/models/marts)"


def test_native_select_filters_reach_every_chart_in_their_scope() -> None:
    """A chart in a country/channel filter's scope must have that column, or the filter silently
    skips it (the tile would then show the whole shop under a "Germany" filter)."""
    assets = _load_assets()
    datasets = {doc["uuid"]: doc for doc in _of_kind(assets, "datasets").values()}
    charts = {doc["uuid"]: doc for doc in _of_kind(assets, "charts").values()}
    for name, dashboard in _of_kind(assets, "dashboards").items():
        for native_filter in dashboard["metadata"].get("native_filter_configuration", []):
            if native_filter["filterType"] != "filter_select":
                continue
            column = native_filter["targets"][0]["column"]["name"]
            excluded = set(native_filter["scope"].get("excluded", []))
            for node in _chart_nodes(dashboard):
                if node["meta"]["chartId"] in excluded:
                    continue
                dataset = datasets[charts[node["meta"]["uuid"]]["dataset_uuid"]]
                assert column in {c["column_name"] for c in dataset["columns"]}, (
                    f"{name}: filter {native_filter['name']!r} cannot filter {node['meta']['sliceName']!r}"
                )
    executive = assets["dashboards/executive_kpis.yaml"]["metadata"]["native_filter_configuration"]
    assert all(not f["scope"].get("excluded") for f in executive), "every Executive KPI follows every filter"


def test_the_fixture_serving_file_has_every_dataset_column(tmp_path: Path) -> None:
    import duckdb

    serving = tmp_path / "serving.duckdb"
    write_serving_file(serving)
    with duckdb.connect(str(serving), read_only=True) as con:
        for name, dataset in _of_kind(_load_assets(), "datasets").items():
            if dataset.get("sql"):
                result = con.execute(f"select * from ({dataset['sql']}) limit 0")
                actual = {column[0] for column in result.description}
            else:
                rows = con.execute(
                    "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
                    [dataset["schema"], dataset["table_name"]],
                ).fetchall()
                actual = {row[0] for row in rows}
            wanted = {column["column_name"] for column in dataset["columns"] if not column.get("expression")}
            assert wanted <= actual, f"{name}: the fixture lacks {sorted(wanted - actual)}"


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
    locked = {"read_only": True, "config": {"enable_external_access": False, "lock_configuration": True}}
    assert database["extra"]["engine_params"]["connect_args"] == locked
    # The analyst's SQL Lab database: the marts-only file publish writes beside the serving file.
    marts = yaml.safe_load(bundle_text(provision.build_bundle(get_settings()), "assets/databases/marts.yaml"))
    assert marts["sqlalchemy_uri"] == f"duckdb:///{marts_copy_path(serving)}"
    assert marts["extra"]["engine_params"]["connect_args"] == locked
    assert sorted(names) == sorted(f"assets/{p.relative_to(ASSETS).as_posix()}" for p in ASSETS.rglob("*.yaml"))


def test_roles_file_names_existing_dashboards_and_datasets() -> None:
    spec = access.load_spec()
    assert {"Executive", "Analyst", "Country manager DE"} <= set(spec.roles)
    assets = _load_assets()
    slugs = {doc["slug"] for doc in _of_kind(assets, "dashboards").values()}
    tables = {f"{doc['schema']}.{doc['table_name']}" for doc in _of_kind(assets, "datasets").values()}
    for role in spec.roles.values():
        if role.dashboards and role.dashboards != ("*",):
            assert set(role.dashboards) <= slugs, role.name
        for rule in role.row_level_security:
            assert set(rule.tables) <= tables, rule.name
    databases = {doc["database_name"] for doc in _of_kind(assets, "databases").values()}
    assert all(set(role.databases) <= databases for role in spec.roles.values())
    # Only the analyst reads a database in full, and only the marts-only one (SQL Lab containment).
    assert {role.name: role.databases for role in spec.roles.values() if role.databases} == {"Analyst": ("marts",)}
    executive = spec.roles["Executive"]
    assert not {
        pair
        for pair in executive.permissions
        if "SQL" in pair[1] or pair[0] in {"can_write", "can_explore"}
        if pair[1] not in {"DashboardFilterStateRestApi", "DashboardPermalinkRestApi", "CurrentUserRestApi"}
    }
    assert not executive.base_roles, "executives get no built-in role (Gamma would bring datasets and Explore)"
    assert {user.password_env for user in spec.users} == {
        "SUPERSET_EXECUTIVE_PASSWORD",
        "SUPERSET_ANALYST_PASSWORD",
        "SUPERSET_COUNTRY_MANAGER_PASSWORD",
    }


def test_a_user_without_a_generated_password_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPERSET_EXECUTIVE_PASSWORD", raising=False)
    user = next(user for user in access.load_spec().users if user.username == "executive")
    with pytest.raises(access.AccessError, match="SUPERSET_EXECUTIVE_PASSWORD is not set"):
        user.password()


# --- static: export normalisation ----------------------------------------------------------------


def test_export_normalisation_drops_ids_retemplates_and_renumbers() -> None:
    serving = "/data/warehouse/serving.duckdb"
    chart = {
        "slice_name": "x",
        "viz_type": "table",
        "params": {"datasource": "12__table", "slice_id": 40, "dashboards": [3], "metrics": ["m"]},
        "query_context": json.dumps(
            {"datasource": {"id": 12, "type": "table"}, "form_data": {"slice_id": 40}, "queries": [{"metrics": ["m"]}]}
        ),
        "uuid": "u1",
    }
    clean = asset_files.normalise("charts", chart, {"SERVING_PATH": serving})
    assert clean["params"] == {"metrics": ["m"]}
    assert json.loads(clean["query_context"]) == {"queries": [{"metrics": ["m"]}]}

    database = {"database_name": "serving", "sqlalchemy_uri": f"duckdb:///{serving}", "password": "XXXXXXXXXX"}
    assert asset_files.normalise("databases", database, {"SERVING_PATH": serving}) == {
        "database_name": "serving",
        "sqlalchemy_uri": "duckdb:///${SERVING_PATH}",
    }

    # Instance ids 57 and 91 become layout-order handles 1 and 2, everywhere they are referenced.
    dashboard = {
        "position": {
            "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
            "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": ["CHART-b", "CHART-a"]},
            "CHART-a": {"type": "CHART", "id": "CHART-a", "meta": {"chartId": 57, "uuid": "a"}},
            "CHART-b": {"type": "CHART", "id": "CHART-b", "meta": {"chartId": 91, "uuid": "b"}},
        },
        "metadata": {
            "native_filter_configuration": [{"id": "f", "scope": {"excluded": [57]}, "chartsInScope": [91]}],
            "chart_configuration": {"91": {"id": 91, "crossFilters": {"scope": {"excluded": [57]}}}},
            "shared_label_colors": ["x"],
            "default_filters": "{}",
        },
    }
    clean = asset_files.normalise("dashboards", dashboard, {})
    assert clean["position"]["CHART-b"]["meta"]["chartId"] == 1
    assert clean["position"]["CHART-a"]["meta"]["chartId"] == 2
    assert clean["metadata"] == {
        "native_filter_configuration": [{"id": "f", "scope": {"excluded": [2]}}],
        "chart_configuration": {"1": {"id": 1, "crossFilters": {"scope": {"excluded": [2]}}}},
    }


def test_export_refuses_to_write_a_secret_and_writes_nothing(tmp_path: Path) -> None:
    exported = {
        "charts/new.yaml": {"slice_name": "new", "viz_type": "table", "params": {}, "uuid": "n1"},
        "databases/db.yaml": {
            "database_name": "db",
            "sqlalchemy_uri": "postgresql://u:hunter2-secret@h/db",
            "uuid": "d1",
        },
    }
    with pytest.raises(asset_files.AssetExportError, match="secret"):
        asset_files.write_assets(exported, tmp_path, {}, secrets=["hunter2-secret"])
    assert not list(tmp_path.rglob("*.yaml"))


# --- static: configuration -------------------------------------------------------------------------


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
        "config": {"enable_external_access": False, "lock_configuration": True, "threads": 2},
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
    assert config.FEATURE_FLAGS["DASHBOARD_RBAC"] is True
    assert config.DATA_CACHE_CONFIG["CACHE_TYPE"] == "FileSystemCache"


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


@pytest.fixture(scope="module")
def superset_stack(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[Stack]:
    with running_superset(tmp_path_factory, "superset-api") as stack:
        summary = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in stack.timings.items())
        print(f"\nsuperset timings: {summary}")
        (artifacts_dir / "superset_timings.json").write_text(json.dumps(stack.timings, indent=2) + "\n")
        yield stack


def _ids(stack: Stack, kind: str) -> dict[str, int]:
    result = stack.client.get(f"/api/v1/{kind}/", q="(columns:!(id,uuid),page_size:100)")
    return {row["uuid"]: row["id"] for row in result["result"]}


def test_init_is_skipped_once_done(superset_stack: Stack) -> None:
    assert superset_service.init_metadata(superset_stack.settings) == {}


def test_importing_twice_creates_no_duplicates(superset_stack: Stack) -> None:
    before = {kind: _ids(superset_stack, kind) for kind in ("database", "dataset", "chart", "dashboard")}
    provision.import_assets(superset_stack.settings)
    after = {kind: _ids(superset_stack, kind) for kind in ("database", "dataset", "chart", "dashboard")}
    assert after == before  # same objects, same ids: updated in place by UUID
    assets = _load_assets()
    for kind, folder in [
        ("database", "databases"),
        ("dataset", "datasets"),
        ("chart", "charts"),
        ("dashboard", "dashboards"),
    ]:
        assert set(after[kind]) == {doc["uuid"] for doc in _of_kind(assets, folder).values()}, kind


def _chart_data(stack: Stack, chart_id: int, force: bool = True) -> list[dict[str, Any]]:
    params = {"force": "true"} if force else {}
    results = stack.client.get(f"/api/v1/chart/{chart_id}/data/", **params)["result"]
    assert [r["status"] for r in results] == ["success"], results
    return list(results[0]["data"])


def test_every_dashboard_chart_returns_rows(superset_stack: Stack) -> None:
    boards = latency.dashboards(superset_stack.client)
    assert {board.slug for board in boards} == {doc["slug"] for doc in _of_kind(_load_assets(), "dashboards").values()}
    for board in boards:
        assert board.charts, board.slug
        for chart in board.charts:
            assert _chart_data(superset_stack, chart["id"]), f"{board.slug}: {chart['slice_name']} returned no rows"


def _last_complete_weeks(weeks: int = 12) -> tuple[dt.date, dt.date]:
    # Superset evaluates DATETRUNC(DATETIME('today'), WEEK) in the server's local time.
    today = dt.date.today()
    monday = today - dt.timedelta(days=today.weekday())
    return monday - dt.timedelta(weeks=weeks), monday


def _segment_sum(rows: list[dict[str, Any]], column: str, start: dt.date, end: dt.date, country: str | None = None):
    return sum(
        (r[column] for r in rows if start <= r["revenue_date"] < end and country in (None, r["country_code"])),
        Decimal("0") if column != "orders" else 0,
    )


def test_executive_kpis_show_the_marts_numbers(superset_stack: Stack) -> None:
    rows = superset_stack.data.tables["fct_daily_revenue_by_segment"]
    start, end = _last_complete_weeks()
    net = _segment_sum(rows, "net_revenue_eur", start, end)
    gross = _segment_sum(rows, "gross_revenue_eur", start, end)
    orders = _segment_sum(rows, "orders", start, end)
    ids = _ids(superset_stack, "chart")
    assert _chart_data(superset_stack, ids[NET_REVENUE]) == [{"net_revenue_eur": pytest.approx(float(net), abs=0.005)}]
    assert _chart_data(superset_stack, ids[ORDERS]) == [{"orders": orders}]
    assert _chart_data(superset_stack, ids[AOV]) == [
        {"average_order_value_eur": pytest.approx(float(gross) / orders, abs=0.005)}
    ]
    weekly = _chart_data(superset_stack, ids[WEEKLY])
    assert len(weekly) == 12
    for row in weekly:
        week = dt.datetime.fromtimestamp(row["revenue_date"] / 1000, dt.UTC).date()
        previous = week - dt.timedelta(weeks=1)
        assert row["net_revenue_eur"] == pytest.approx(
            float(_segment_sum(rows, "net_revenue_eur", week, week + dt.timedelta(weeks=1))), abs=0.01
        )
        assert row["1 week ago"] == pytest.approx(
            float(_segment_sum(rows, "net_revenue_eur", previous, week)), abs=0.01
        )


def test_a_published_serving_file_is_seen_without_a_restart(superset_stack: Stack) -> None:
    serving = superset_stack.settings.serving_path
    chart = _ids(superset_stack, "chart")[NET_REVENUE]
    start, end = _last_complete_weeks()
    newer = build_data(seed=99)

    def expected(data: Any) -> float:
        return float(_segment_sum(data.tables["fct_daily_revenue_by_segment"], "net_revenue_eur", start, end))

    def cached() -> float:
        return float(_chart_data(superset_stack, chart, force=False)[0]["net_revenue_eur"])

    try:
        assert cached() == pytest.approx(expected(superset_stack.data), abs=0.005)
        write_serving_file(serving, newer)  # os.replace while Superset is running, as publish does
        assert cached() == pytest.approx(expected(superset_stack.data), abs=0.005)  # the result cache answers
        assert provision.clear_data_cache(superset_stack.settings) > 0
        assert cached() == pytest.approx(expected(newer), abs=0.005)
        assert expected(newer) != pytest.approx(expected(superset_stack.data), abs=1)
    finally:
        write_serving_file(serving, superset_stack.data)
        provision.clear_data_cache(superset_stack.settings)


# --- export: UI edits back to YAML ----------------------------------------------------------------


def test_export_then_import_round_trips_without_a_diff(superset_stack: Stack, tmp_path: Path) -> None:
    copy = tmp_path / "assets"
    shutil.copytree(ASSETS, copy)
    before = {path: path.read_bytes() for path in copy.rglob("*.yaml")}
    result = provision.export_assets(superset_stack.settings, copy)
    assert (result.changed, result.added, result.removed) == ([], [], [])
    assert len(result.unchanged) == len(before) - 1  # every asset but metadata.yaml
    assert {path: path.read_bytes() for path in copy.rglob("*.yaml")} == before


def test_a_ui_edit_exports_as_a_one_file_reviewable_diff(superset_stack: Stack, tmp_path: Path) -> None:
    copy = tmp_path / "assets"
    shutil.copytree(ASSETS, copy)
    chart_id = _ids(superset_stack, "chart")[ORDERS]
    original = superset_stack.client.get(f"/api/v1/chart/{chart_id}")["result"]["slice_name"]
    response = superset_stack.client.put(f"/api/v1/chart/{chart_id}", json={"slice_name": "Orders (renamed in the UI)"})
    assert response.status_code == 200, response.text
    try:
        result = provision.export_assets(superset_stack.settings, copy)
    finally:
        superset_stack.client.put(f"/api/v1/chart/{chart_id}", json={"slice_name": original})
    assert (result.changed, result.added) == (["charts/orders_total.yaml"], [])
    text = (copy / "charts" / "orders_total.yaml").read_text()
    assert "slice_name: Orders (renamed in the UI)" in text
    assert text.startswith("#"), "the file's leading comment survives a rewrite"
    doc = yaml.safe_load(text)
    assert not {"datasource", "slice_id", "dashboards"} & set(doc["params"])
    assert str(superset_stack.settings.serving_path) not in "".join(p.read_text() for p in copy.rglob("*.yaml"))
    assert os.environ["SUPERSET_ADMIN_PASSWORD"] not in "".join(p.read_text() for p in copy.rglob("*.yaml"))


# --- roles, dashboards and row-level security -----------------------------------------------------


def _dashboard_chart_query(stack: Stack, slug: str, chart_uuid: str) -> dict[str, Any]:
    """The chart-data request a dashboard sends for one of its charts (saved query + dashboard context)."""
    dashboard_id = stack.client.get(f"/api/v1/dashboard/{slug}")["result"]["id"]
    chart_id = _ids(stack, "chart")[chart_uuid]
    chart = stack.client.get(f"/api/v1/chart/{chart_id}")["result"]
    query = json.loads(chart["query_context"])
    query["form_data"] = {"dashboardId": dashboard_id, "slice_id": chart_id, "viz_type": chart["viz_type"]}
    return query


def test_access_is_applied_idempotently(superset_stack: Stack) -> None:
    roles = {row["name"] for row in superset_stack.client.get("/api/v1/security/roles/", q="(page_size:100)")["result"]}
    result = provision.apply_access(superset_stack.settings)
    assert set(result.users.values()) == {"updated"} and set(result.rules.values()) == {"updated"}
    assert {
        row["name"] for row in superset_stack.client.get("/api/v1/security/roles/", q="(page_size:100)")["result"]
    } == roles
    assert {"Executive", "Analyst", "Country manager DE"} <= roles


def test_the_executive_sees_the_dashboards_and_nothing_else(superset_stack: Stack) -> None:
    executive = superset_stack.login("executive")
    visible = {row["slug"] for row in executive.get("/api/v1/dashboard/", q="(page_size:100)")["result"]}
    assert visible == {doc["slug"] for doc in _of_kind(_load_assets(), "dashboards").values()} - {"governance"}

    # Chart data through a dashboard: yes.
    response = executive.post(
        "/api/v1/chart/data", json=_dashboard_chart_query(superset_stack, "executive-kpis", ORDERS)
    )
    assert response.status_code == 200, response.text
    assert response.json()["result"][0]["data"][0]["orders"] > 0

    # SQL Lab: no.
    database_id = _ids(superset_stack, "database")["a2b551e1-6fc1-4f39-a0ac-438103e1e733"]
    response = executive.post(
        "/api/v1/sqllab/execute/", json={"database_id": database_id, "sql": "select 1", "runAsync": False}
    )
    assert response.status_code == 403
    assert executive.session.get(f"{executive.url}/sqllab/").status_code == 403

    # A dataset outside their dashboards: no, neither its rows nor its definition.
    datasets = {row["table_name"]: row["id"] for row in superset_stack.client.get(
        "/api/v1/dataset/", q="(columns:!(id,table_name),page_size:100)")["result"]}  # fmt: skip
    outside = {
        "datasource": {"id": datasets[ANALYST_ONLY_DATASET], "type": "table"},
        "queries": [{"metrics": ["net_revenue_eur"], "columns": [], "filters": []}],
        "result_format": "json",
        "result_type": "full",
    }
    assert superset_stack.client.post("/api/v1/chart/data", json=outside).status_code == 200  # the admin can
    assert executive.post("/api/v1/chart/data", json=outside).status_code == 403
    assert executive.session.get(f"{executive.url}/api/v1/dataset/{datasets[ANALYST_ONLY_DATASET]}").status_code == 403
    # ... nor a dashboard dataset outside its dashboard (no Explore, no raw datasets).
    no_context = {
        k: v for k, v in _dashboard_chart_query(superset_stack, "executive-kpis", ORDERS).items() if k != "form_data"
    }
    assert executive.post("/api/v1/chart/data", json=no_context).status_code == 403
    assert executive.session.get(f"{executive.url}/explore/?slice_id=1").status_code == 403


def test_the_analyst_runs_sql_lab_on_the_marts_only(superset_stack: Stack) -> None:
    analyst = superset_stack.login("analyst")
    databases = _ids(superset_stack, "database")

    response = _execute(analyst, databases[MARTS_DB], "select count(*) as days from marts.fct_daily_revenue")
    assert response.status_code == 200, response.text
    assert response.json()["data"] == [{"days": len(superset_stack.data.tables["fct_daily_revenue"])}]
    for sql in [
        "select * from ops.gate_runs",
        "select * from meta.publication",
        "select table_name from information_schema.tables",
        "select * from marts.fct_daily_revenue join ops.quarantine on true",
    ]:
        response = _execute(analyst, databases[MARTS_DB], sql)
        assert response.status_code in REFUSED_STATUS, (sql, response.text[:1000])
        assert "QUERY_SECURITY_ACCESS_ERROR" in response.text, sql
        assert response.json()["errors"][0]["message"].startswith("Refused: "), response.text
    # The serving database (marts *and* ops/ml/meta) runs none of the analyst's SQL.
    response = _execute(analyst, databases[SERVING_DB], "select count(*) as days from marts.fct_daily_revenue")
    assert response.status_code in REFUSED_STATUS, response.text
    assert "choose the 'marts' database" in response.json()["errors"][0]["message"]


def test_the_governance_dashboard_is_for_admins_and_analysts_only(superset_stack: Stack) -> None:
    recent_access = yaml.safe_load((ASSETS / "charts" / "governance_recent_access.yaml").read_text())["uuid"]
    query = _dashboard_chart_query(superset_stack, "governance", recent_access)
    assert superset_stack.login("executive").post("/api/v1/chart/data", json=query).status_code == 403
    assert superset_stack.login("country_manager").post("/api/v1/chart/data", json=query).status_code == 403
    seen = superset_stack.login("analyst").post("/api/v1/chart/data", json=query)
    assert seen.status_code == 200, seen.text
    assert seen.json()["result"][0]["data"], "the fixture's access log rows"


def test_the_access_log_collects_who_opened_what_and_which_query_ran(superset_stack: Stack) -> None:
    from governance import access_log

    began = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=5)
    executive = superset_stack.login("executive")
    executive.get("/api/v1/dashboard/executive-kpis")
    shown = executive.post("/api/v1/chart/data", json=_dashboard_chart_query(superset_stack, "executive-kpis", ORDERS))
    assert shown.status_code == 200, shown.text
    database_id = _ids(superset_stack, "database")[MARTS_DB]
    sql = "select count(*) as days from marts.fct_daily_revenue where 'mia.weber@example.com' <> ''"
    ran = superset_stack.login("analyst").post(
        "/api/v1/sqllab/execute/", json={"database_id": database_id, "sql": sql, "runAsync": False}
    )
    assert ran.status_code == 200, ran.text

    settings = superset_stack.settings
    events = access_log.superset_events(access_log.superset_metadata_url(settings), began)
    executive_user, analyst_user = (stack_users[who].user for who in ("executive", "analyst"))
    mine = [e for e in events if e.actor == executive_user]
    assert ("dashboard", "Executive KPIs") in {(e.object_type, e.object_name) for e in mine}, mine
    # Chart data through the API names the dataset read (the browser's requests name the chart too).
    assert "marts.fct_daily_revenue_by_segment" in {e.tables_read for e in mine}, mine
    queries = [e for e in events if e.actor == analyst_user and e.object_type == "sql_lab" and "<>" in e.detail]
    assert len(queries) == 1 and queries[0].tables_read == "marts.fct_daily_revenue"
    assert "mia.weber" not in queries[0].detail and "'?'" in queries[0].detail, "literals are redacted"

    # Into the warehouse's ops.access_log, once, however often it runs.
    first = access_log.collect(settings)
    assert access_log.collect(settings) == first and first["superset"] >= 2
    import duckdb

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        actors = {
            a for (a,) in con.execute("select distinct actor from ops.access_log where source = 'superset'").fetchall()
        }
    assert {executive_user, analyst_user} <= actors


def test_row_level_security_shows_the_country_manager_their_country_only(superset_stack: Stack) -> None:
    manager = superset_stack.login("country_manager")
    assert {row["slug"] for row in manager.get("/api/v1/dashboard/", q="(page_size:100)")["result"]} == {
        "executive-kpis"
    }
    rows = superset_stack.data.tables["fct_daily_revenue_by_segment"]
    start, end = _last_complete_weeks()
    query = _dashboard_chart_query(superset_stack, "executive-kpis", NET_REVENUE)
    seen = manager.post("/api/v1/chart/data", json=query)
    assert seen.status_code == 200, seen.text
    germany = float(_segment_sum(rows, "net_revenue_eur", start, end, country="DE"))
    everyone = float(_segment_sum(rows, "net_revenue_eur", start, end))
    assert seen.json()["result"][0]["data"] == [{"net_revenue_eur": pytest.approx(germany, abs=0.005)}]
    assert germany < everyone
    by_country = yaml.safe_load((ASSETS / "charts" / "net_revenue_by_country.yaml").read_text())["uuid"]
    seen = manager.post("/api/v1/chart/data", json=_dashboard_chart_query(superset_stack, "executive-kpis", by_country))
    assert seen.status_code == 200, seen.text
    assert [row["country_code"] for row in seen.json()["result"][0]["data"]] == ["DE"]
    # The same chart for the executive: every country.
    seen = superset_stack.login("executive").post(
        "/api/v1/chart/data", json=_dashboard_chart_query(superset_stack, "executive-kpis", by_country)
    )
    assert {row["country_code"] for row in seen.json()["result"][0]["data"]} == {"DE", "FR", "NL", "GB", "SE", "US"}


def test_active_customers_follow_the_country_manager_rls(superset_stack: Stack) -> None:
    """The active-customers tile sums the segments a viewer may see: all for the executive, DE for the
    country manager (the same row-level security as the revenue tiles)."""
    rows = superset_stack.data.tables["fct_daily_active_customers_by_segment"]

    def expected(country: str | None) -> dict[dt.date, int]:
        totals: dict[dt.date, int] = {}
        for row in rows:
            if country in (None, row["country_code"]):
                totals[row["activity_date"]] = totals.get(row["activity_date"], 0) + row["active_customers_30d"]
        return totals

    query = _dashboard_chart_query(superset_stack, "executive-kpis", ACTIVE_CUSTOMERS)
    for user, country in [("executive", None), ("country_manager", "DE")]:
        seen = superset_stack.login(user).post("/api/v1/chart/data", json=query)
        assert seen.status_code == 200, seen.text
        data = seen.json()["result"][0]["data"]
        assert len(data) >= 7 * 11, "the 12-week range, day by day"
        totals = expected(country)
        for row in data:
            day = dt.datetime.fromtimestamp(row["activity_date"] / 1000, dt.UTC).date()
            assert row["active_customers_30d"] == totals[day], (user, day)
    germany, everyone = expected("DE"), expected(None)
    assert all(germany[day] < everyone[day] for day in everyone)


# --- hardening and speed ---------------------------------------------------------------------------


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
    database_id = _ids(superset_stack, "database")["a2b551e1-6fc1-4f39-a0ac-438103e1e733"]
    response = superset_stack.client.post(
        "/api/v1/sqllab/execute/",
        json={"database_id": database_id, "sql": "select * from read_csv('/etc/passwd')", "runAsync": False},
    )
    assert response.status_code >= 400
    assert "disallowed function" in response.text


def test_chart_data_latency_is_measured_for_every_chart(superset_stack: Stack, artifacts_dir: Path) -> None:
    result = latency.measure(superset_stack.settings, runs=1, browser=False)
    charts = sum(result["dashboards"].values())
    assert len(result["chart_data"]["charts"]) == charts
    for mode in ("cache_off", "cache_on"):
        assert result["chart_data"][mode]["n"] == charts
        assert 0 < result["chart_data"][mode]["median_s"] <= result["chart_data"][mode]["p95_s"]
    (artifacts_dir / "superset_chart_latency.json").write_text(json.dumps(result, indent=2) + "\n")


def test_a_second_superset_on_the_same_port_gets_a_clear_error(superset_stack: Stack) -> None:
    port = superset_stack.settings.superset_port
    with pytest.raises(
        procs.PortInUseError, match=f"port {port} is already in use by another program; stop it or set SUPERSET_PORT"
    ):
        procs.ensure_port_free(port, "Superset", "SUPERSET_PORT")


# --- the role matrix: every role against every API probe and SQL Lab statement form ---------------


@pytest.fixture(scope="module")
def role_clients(superset_stack: Stack) -> dict[str, provision.SupersetClient]:
    """One logged-in session per role for the whole matrix (a login per case would be slow)."""
    clients = {who: superset_stack.login(who) for who in ("analyst", "executive", "country_manager")}
    return {"admin": superset_stack.client, **clients}


def _execute(client: provision.SupersetClient, database_id: int, sql: str) -> Any:
    return client.post("/api/v1/sqllab/execute/", json={"database_id": database_id, "sql": sql, "runAsync": False})


def _refused_query_id(stack: Stack, analyst: provision.SupersetClient) -> int:
    """The id of the analyst's (refused) SQL Lab query that pivots ops.gate_runs on `serving`."""
    sql = "PIVOT ops.gate_runs ON status USING count(*)"
    assert _execute(analyst, _ids(stack, "database")[SERVING_DB], sql).status_code in REFUSED_STATUS
    rows = stack.client.get("/api/v1/query/", q="(page_size:100)")["result"]
    return max(int(row["id"]) for row in rows if row["sql"] == sql)


def _api_probe(stack: Stack, clients: dict[str, provision.SupersetClient], role: str, name: str) -> Any:
    client = clients[role]
    databases = _ids(stack, "database")
    datasets = {row["table_name"]: row["id"] for row in stack.client.get(
        "/api/v1/dataset/", q="(columns:!(id,table_name),page_size:100)")["result"]}  # fmt: skip
    get = client.session.get
    url = client.url
    if name == "dashboards list":
        return get(f"{url}/api/v1/dashboard/", params={"q": "(page_size:100)"})
    if name == "governance chart data through its dashboard":
        recent = yaml.safe_load((ASSETS / "charts" / "governance_recent_access.yaml").read_text())["uuid"]
        return client.post("/api/v1/chart/data", json=_dashboard_chart_query(stack, "governance", recent))
    if name == "access log chart data without a dashboard":
        query = {
            "datasource": {"id": datasets["access_log"], "type": "table"},
            "queries": [{"columns": ["actor"], "metrics": [], "row_limit": 10}],
            "result_format": "json",
            "result_type": "full",
        }
        return client.post("/api/v1/chart/data", json=query)
    if name == "datasets list":
        return get(f"{url}/api/v1/dataset/", params={"q": "(columns:!(schema,table_name),page_size:100)"})
    if name == "access log column values":
        return get(f"{url}/api/v1/datasource/table/{datasets['access_log']}/column/actor/values/")
    if name == "access log dataset":
        return get(f"{url}/api/v1/dataset/{datasets['access_log']}")
    if name == "databases list":
        return get(f"{url}/api/v1/database/", params={"q": "(columns:!(database_name),page_size:100)"})
    if name == "sql lab on marts":
        return _execute(client, databases[MARTS_DB], "select count(*) as n from marts.fct_daily_revenue")
    if name == "sql lab on serving":
        return _execute(client, databases[SERVING_DB], "select count(*) as n from marts.fct_daily_revenue")
    if name == "chart data on a refused sql lab query":
        query_id = _refused_query_id(stack, clients["analyst"])
        query = {
            "datasource": {"id": query_id, "type": "query"},
            "queries": [
                {"columns": [], "metrics": [{"expressionType": "SQL", "sqlExpression": "count(*)", "label": "n"}]}
            ],
            "result_format": "json",
            "result_type": "full",
        }
        return client.post("/api/v1/chart/data", json=query)
    if name == "explore custom sql subquery over ops":
        metric = {"expressionType": "SQL", "sqlExpression": "(FROM ops.access_log SELECT max(actor))", "label": "m"}
        query = {
            "datasource": {"id": datasets["fct_daily_revenue"], "type": "table"},
            "queries": [{"columns": [], "metrics": [metric]}],
            "result_format": "json",
            "result_type": "full",
        }
        return client.post("/api/v1/chart/data", json=query)
    paths = {
        "saved queries": "/api/v1/saved_query/",
        "logs": "/api/v1/log/",
        "users": "/api/v1/security/users/",
        "roles": "/api/v1/security/roles/",
        "assets export": "/api/v1/assets/export/",
        "database export": f"/api/v1/database/export/?q=!({databases[SERVING_DB]})",
    }
    return get(f"{url}{paths[name]}")


@pytest.mark.parametrize("role", role_matrix.ROLES)
@pytest.mark.parametrize("probe", role_matrix.API_PROBES, ids=lambda probe: probe.name)
def test_role_matrix_api(
    superset_stack: Stack, role_clients: dict[str, provision.SupersetClient], probe: role_matrix.ApiProbe, role: str
) -> None:
    response = _api_probe(superset_stack, role_clients, role, probe.name)
    assert response.status_code == probe.expected[role], (role, probe.name, response.text[:500])
    if role != "admin" and not probe.granted_by_dashboard:
        assert not [m for m in role_matrix.LEAK_MARKERS if m in response.text], (role, probe.name)
    if probe.name == "datasets list" and role == "analyst":
        schemas = {row["schema"] for row in response.json()["result"]}
        assert schemas == {"marts"}, "the analyst lists the marts datasets only"
    if probe.name == "databases list" and response.status_code == 200:
        names = {row["database_name"] for row in response.json()["result"]}
        assert "marts" in names, names


@pytest.mark.parametrize("role", role_matrix.ROLES)
@pytest.mark.parametrize("probe", role_matrix.SQL_PROBES, ids=lambda probe: probe.name)
def test_role_matrix_sql_lab(
    superset_stack: Stack, role_clients: dict[str, provision.SupersetClient], probe: role_matrix.SqlProbe, role: str
) -> None:
    databases = _ids(superset_stack, "database")
    client = role_clients[role]
    if role == "admin":
        response = _execute(client, databases[SERVING_DB], probe.sql)
        expected = probe.admin
    elif role == "analyst":
        # On `serving` (readable in part) nothing runs, whatever the statement.
        on_serving = _execute(client, databases[SERVING_DB], probe.sql)
        assert on_serving.status_code in REFUSED_STATUS, on_serving.text[:500]
        assert "choose the 'marts' database" in on_serving.json()["errors"][0]["message"]
        assert not [m for m in role_matrix.LEAK_MARKERS if m in on_serving.text]
        response = _execute(client, databases[MARTS_DB], probe.sql)
        expected = probe.analyst
    else:
        response = _execute(client, databases[SERVING_DB], probe.sql)
        expected = role_matrix.FORBIDDEN
    text = response.text
    if role != "admin":
        assert not [m for m in role_matrix.LEAK_MARKERS if m in text], (role, probe.name, text[:500])
    if expected == role_matrix.OK:
        assert response.status_code == 200, (role, probe.name, text[:500])
        # The analyst's allowed SELECTs return rows; some admin statements (CHECKPOINT, USE) none.
        assert role == "admin" or response.json()["data"], (role, probe.name)
        if role == "admin" and probe.shows_ops:
            assert [m for m in role_matrix.LEAK_MARKERS if m in text], (probe.name, text[:500])
    elif expected == role_matrix.REFUSED:
        assert response.status_code in REFUSED_STATUS, (probe.name, text[:500])
        message = response.json()["errors"][0]["message"]
        assert message.startswith("Refused: ") and probe.refusal in message, (probe.name, message)
    elif expected == role_matrix.DB_ERROR:
        assert response.status_code >= 400, (role, probe.name, text[:500])
        assert "Refused: " not in text, "the admin is not limited by the statement allow-list"
    else:
        assert response.status_code == 403, (role, probe.name, text[:500])


def test_the_marts_database_holds_the_published_marts_only(superset_stack: Stack) -> None:
    """The containment itself, seen by the admin (whom no statement allow-list limits): whatever a
    statement on the analyst's database could name, ops/ml/meta are not in the file."""
    sql = "select schema_name || '.' || table_name as t from duckdb_tables() order by t"
    on_marts = _execute(superset_stack.client, _ids(superset_stack, "database")[MARTS_DB], sql)
    assert on_marts.status_code == 200, on_marts.text
    served_marts = {f"marts.{table}" for table in superset_stack.data.tables}
    assert {row["t"] for row in on_marts.json()["data"]} == served_marts


# --- login throttling and request limits -----------------------------------------------------------


def _throwaway_user(stack: Stack, login: str) -> provision.Credentials:
    """A user of its own (role Executive), so locking it out does not lock out the other tests."""
    roles = {
        row["name"]: row["id"] for row in stack.client.get("/api/v1/security/roles/", q="(page_size:100)")["result"]
    }
    creds = provision.Credentials(login, secrets.token_urlsafe(16))
    body = {"username": login, "first_name": login, "last_name": "Probe", "email": f"{login}@localhost.invalid"}
    response = stack.client.post(
        "/api/v1/security/users/",
        json={**body, "active": True, "roles": [roles["Executive"]], "password": creds.password},
    )
    assert response.status_code == 201, response.text
    return creds


def _rest_login(stack: Stack, login: str, password: str) -> int:
    url = f"{provision.base_url(stack.settings)}/api/v1/security/login"
    body = {"username": login, "password": password, "provider": "db", "refresh": False}
    return requests.post(url, json=body, timeout=30).status_code


def _form_login(stack: Stack, creds: provision.Credentials) -> int:
    """The browser's way in: the login page's CSRF token, then POST /login/."""
    session, url = requests.Session(), provision.base_url(stack.settings)
    token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', session.get(f"{url}/login/", timeout=30).text)
    assert token, "the login page has a CSRF token"
    form = {"username": creds.user, "password": creds.password, "csrf_token": token.group(1)}
    return session.post(f"{url}/login/", data=form, allow_redirects=False, timeout=30).status_code


def test_failed_logins_are_throttled_per_login_name(superset_stack: Stack) -> None:
    target = _throwaway_user(superset_stack, "throttle_target")
    bystander = _throwaway_user(superset_stack, "throttle_bystander")
    # Successful logins do not use up the allowance.
    assert [_rest_login(superset_stack, bystander.user, bystander.password) for _ in range(LOGIN_FAILURES + 2)] == [
        200
    ] * (LOGIN_FAILURES + 2)
    assert [_rest_login(superset_stack, target.user, "wrong-password") for _ in range(LOGIN_FAILURES)] == [
        401
    ] * LOGIN_FAILURES
    # Now even the right password is refused for the window, through the REST login and the form.
    assert _rest_login(superset_stack, target.user, target.password) == 429
    assert _rest_login(superset_stack, target.user.upper(), target.password) == 429, "the name's case does not help"
    assert _form_login(superset_stack, target) == 429
    # Another user is not locked out.
    assert _rest_login(superset_stack, bystander.user, bystander.password) == 200
    assert _form_login(superset_stack, bystander) == 302  # to the welcome page
    assert superset_stack.login("executive").get("/api/v1/me/")["result"]["username"] == stack_users["executive"].user


def test_gunicorn_refuses_oversized_request_lines_and_headers(superset_stack: Stack) -> None:
    url = f"{provision.base_url(superset_stack.settings)}/health"
    assert requests.get(url, params={"pad": "x" * 3000}, timeout=30).status_code == 200
    assert requests.get(url, params={"pad": "x" * 9000}, timeout=30).status_code == 414  # URI too long
    assert requests.get(url, headers={"X-Pad": "x" * 9000}, timeout=30).status_code == 431  # header too large

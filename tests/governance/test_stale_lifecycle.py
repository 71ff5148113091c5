"""A stale model is deprecated where its users look, its owner told, archived after the grace period, and restorable.

One model of the small shop (`fct_daily_active_customers_by_segment`, shown on the Executive KPIs
dashboard) is made stale the way `test_catalog.py` ages the shop: the report runs six weeks after
the build, with every other model built and read since. The steps run against a real Superset
(`tests/superset/stack.py`, started for this module) and on copies: of the shop's warehouse and dbt
target, of `dbt_project/` and of `superset/assets/`, so nothing committed is deprecated. The grace
period is 0 days (`STALE_GRACE_DAYS`), so archiving is due at once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml

from core.settings import Settings, get_settings
from governance import audit, catalog, lifecycle
from governance.access_log import DDL as ACCESS_LOG_DDL
from serving.publish import dbt_manifest_path, unpublished_marts
from superset import deprecation, provision
from tests.superset.stack import Stack, running_superset

REPO = Path(__file__).resolve().parents[2]
MODEL = "fct_daily_active_customers_by_segment"
PROPERTIES = Path("models/marts/customers/_customers__models.yml")
OWNER = "growth-analytics@shop.example"
CHART = "Active customers (30 days)"


@pytest.fixture(scope="module")
def superset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_superset(tmp_path_factory, "superset-lifecycle") as stack:
        yield stack


@pytest.fixture
def shop_copy(small_shop: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The shop's warehouse, dbt target and dbt project, copied: the steps write all three."""
    root = tmp_path / "shop"
    shutil.copytree(small_shop.warehouse_dir, root / "warehouse", ignore=shutil.ignore_patterns("*.wal", "serving*"))
    shutil.copytree(Path(os.environ["DBT_TARGET_PATH"]), root / "dbt-target")
    project = root / "dbt_project"
    shutil.copytree(REPO / "dbt_project", project, ignore=shutil.ignore_patterns("target*", "logs", "dbt_packages"))
    for name, value in {
        "STACK_DATA_DIR": str(root),
        "STACK_VAR_DIR": str(root / "var"),
        "DBT_TARGET_PATH": str(root / "dbt-target"),
        "DBT_PROJECT_DIR": str(project),
        "STALE_GRACE_DAYS": "1",
        "GOVERNANCE_ACTOR": "governance_maintenance",
    }.items():
        monkeypatch.setenv(name, value)
    return get_settings()


def _built_at(settings: Settings) -> dt.datetime:
    run_results = dbt_manifest_path(settings).with_name("run_results.json")
    built_at = json.loads(run_results.read_text())["metadata"]["generated_at"]
    return dt.datetime.fromisoformat(built_at.replace("Z", "+00:00")).replace(tzinfo=None)


@pytest.fixture
def aged_shop(shop_copy: Settings, superset: Stack) -> tuple[Settings, dt.date]:
    """The copy where only MODEL is stale, six weeks after its build; (settings, that day)."""
    settings = shop_copy
    assert settings.superset_port == superset.settings.superset_port
    manifest_path = dbt_manifest_path(settings)
    manifest = catalog.load_manifest(manifest_path)
    now = _built_at(settings) + dt.timedelta(days=42)
    marts = {n["name"] for n in catalog.models(manifest) if catalog._layer(n) == "marts"}
    published = marts - unpublished_marts(manifest_path)
    # Everything else was rebuilt, and every other published mart read on a dashboard, yesterday.
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(ACCESS_LOG_DDL)
        con.execute(catalog.BUILDS_DDL)
        for node in catalog.models(manifest):
            if node["name"] == MODEL:
                continue
            con.execute(
                "insert into ops.model_builds values (?, 'rebuilt-since', ?, 'success')",
                [node["unique_id"], now - dt.timedelta(days=1)],
            )
            if node["name"] in published:
                con.execute(
                    "insert into ops.access_log values (?, 'superset', ?, 'executive', 'ChartDataRestApi.data', "
                    "'chartdata', null, ?, null, null, ?)",
                    [f"superset:log:{node['name']}", now - dt.timedelta(days=1), f"marts.{node['name']}", now],
                )
    catalog.write_stale_report(settings, now=now, days=30)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert [r[0] for r in con.execute("select name from ops.stale_assets").fetchall()] == [MODEL]
    return settings, now.date()


def _dbt_ls(settings: Settings) -> list[str]:
    """The models `dbt ls` lists in the project copy (what an analyst sees)."""
    dbt = Path(sys.executable).with_name("dbt")
    project = settings.dbt_project_dir
    listed = subprocess.run(
        [
            *(str(dbt), "ls", "--quiet", "--resource-type", "model", "--output", "name"),
            *("--project-dir", str(project), "--profiles-dir", str(project)),
            *("--target-path", str(project / "target"), "--log-path", str(project / "logs")),
        ],
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "False", "DO_NOT_TRACK": "1"},
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    return listed.stdout.split()


def _titles(client: provision.SupersetClient, kind: str, field: str) -> set[str]:
    return {row[field] for row in client.get(f"/api/v1/{kind}/", q=f"(columns:!({field}),page_size:100)")["result"]}


def _dataset(client: provision.SupersetClient) -> dict | None:
    found = client.get("/api/v1/dataset/", q=f"(filters:!((col:table_name,opr:eq,value:{MODEL})))")["result"]
    return client.get(f"/api/v1/dataset/{found[0]['id']}")["result"] if found else None


def _chart(client: provision.SupersetClient) -> dict | None:
    found = client.get("/api/v1/chart/", q=f"(filters:!((col:slice_name,opr:eq,value:'{CHART}')))")["result"]
    return client.get(f"/api/v1/chart/{found[0]['id']}")["result"] if found else None


def _model_yaml(settings: Settings) -> dict:
    document = yaml.safe_load((settings.dbt_project_dir / PROPERTIES).read_text())
    return next(m for m in document["models"] if m["name"] == MODEL)


@pytest.mark.slow
def test_a_stale_model_is_deprecated_then_archived_then_restored(
    aged_shop: tuple[Settings, dt.date], superset: Stack, tmp_path: Path
) -> None:
    settings, today = aged_shop
    client = superset.client
    assets = tmp_path / "assets"
    shutil.copytree(provision.ASSETS_DIR, assets)
    presentation = deprecation.SupersetPresentation(settings, assets_dir=assets)
    manifest = catalog.load_manifest(dbt_manifest_path(settings))
    properties = settings.dbt_project_dir / PROPERTIES
    before = properties.read_text().splitlines()
    archive_day = today + dt.timedelta(days=1)  # STALE_GRACE_DAYS=1

    # Day 1. Deprecated in the model's own YAML (a small diff), and on its Superset dataset and chart.
    day1 = lifecycle.run_daily(settings, manifest, presentation, today=today)
    assert [item.split(" ", 1)[0] for item in day1.deprecated] == [MODEL] and day1.archived == []
    entry = _model_yaml(settings)
    assert entry["deprecation_date"] == archive_day
    marker = {**entry.get("meta", {}), **entry.get("config", {}).get("meta", {})}["deprecated"]
    assert (marker["since"], marker["archive_on"]) == (str(today), str(archive_day))
    assert "not built for 42 days" in marker["reason"]
    after = properties.read_text().splitlines()
    assert [line for line in before if line not in after] == [], "only lines added"
    assert len(after) - len(before) <= 10
    warning = json.loads(_dataset(client)["extra"] or "{}")["warning_markdown"]
    assert f"Deprecated** since {today}" in warning and str(archive_day) in warning
    assert _chart(client)["description"].startswith(deprecation.WARNING_START + "**Deprecated**")

    # The owner was told, through the alert path, and the report says so.
    alerts = [json.loads(line) for line in (settings.var_dir / "alerts.jsonl").read_text().splitlines()]
    notice = next(a for a in alerts if a.get("kind") == "stale_asset_deprecated")
    assert notice["owner"] == OWNER and notice["summary"].startswith(f"to {OWNER}: {MODEL} is deprecated")
    assert str(archive_day) in notice["summary"]
    report = (settings.var_dir / "governance" / "stale_assets.md").read_text()
    assert f"- {MODEL} (owner {OWNER}): archive on {archive_day}" in report

    # Day 2, the grace period over: exported, removed from Superset and the assets, the model disabled.
    day2 = lifecycle.run_daily(settings, manifest, presentation, today=archive_day)
    archive_id = f"{archive_day}/{MODEL}"
    assert day2.deprecated == [] and [item.split(":", 1)[0] for item in day2.archived] == [MODEL]
    assert f"restore {archive_id}" in (settings.var_dir / "governance" / "stale_assets.md").read_text()
    folder = settings.var_dir / "governance" / "archive" / archive_id
    with zipfile.ZipFile(folder / "superset.zip") as bundle:
        exported = [yaml.safe_load(bundle.read(name)) for name in bundle.namelist() if "/metadata" not in name]
    assert {"Executive KPIs", CHART, MODEL} <= {
        d.get("dashboard_title") or d.get("slice_name") or d.get("table_name") for d in exported
    }
    assert "Executive KPIs" not in _titles(client, "dashboard", "dashboard_title")
    assert CHART not in _titles(client, "chart", "slice_name")
    assert _dataset(client) is None
    assert not (assets / "datasets" / "serving" / f"{MODEL}.yaml").exists()
    assert (folder / "assets" / "datasets" / "serving" / f"{MODEL}.yaml").exists()
    assert _model_yaml(settings)["config"]["enabled"] is False
    assert MODEL not in _dbt_ls(settings)

    # Restored from the archive: back in Superset without the warnings, the model enabled again.
    restored = lifecycle.restore(settings, archive_id, presentation, today=archive_day)
    assert restored["enabled"] is True
    assert "Executive KPIs" in _titles(client, "dashboard", "dashboard_title")
    assert "warning_markdown" not in json.loads(_dataset(client)["extra"] or "{}")
    assert not (_chart(client)["description"] or "").startswith(deprecation.WARNING_START)
    assert (assets / "datasets" / "serving" / f"{MODEL}.yaml").exists()
    entry = _model_yaml(settings)
    assert "deprecation_date" not in entry and "enabled" not in entry.get("config", {})
    assert "deprecated" not in {**entry.get("meta", {}), **entry.get("config", {}).get("meta", {})}
    assert MODEL in _dbt_ls(settings)

    # Every step is in the audit log, which still verifies.
    assert [e.action for e in audit.entries(settings)] == [
        "asset_deprecated",
        "asset_owner_told",
        "asset_warning_shown",
        "asset_archived",
        "asset_removed",
        "asset_disabled",
        "asset_enabled",
        "asset_restored",
    ]
    assert audit.verify(settings).ok


def test_restore_of_an_unknown_archive_is_one_line_and_exit_2(shop_copy: Settings, capsys) -> None:
    from governance.__main__ import main

    assert main(["catalog", "restore", "2026-01-01/no_such_model"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no archive '2026-01-01/no_such_model'") and "\n" not in err


def _alerts(settings: Settings) -> list[dict]:
    path = settings.var_dir / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_new_stack_or_a_stopped_pipeline_deprecates_nothing(shop_copy: Settings) -> None:
    settings = shop_copy
    manifest = catalog.load_manifest(dbt_manifest_path(settings))
    built = _built_at(settings)
    projects_yaml = {p: p.read_text() for p in (settings.dbt_project_dir / "models").rglob("*.yml")}

    # The day of the first build: every published mart is "not read" (nobody could have yet).
    catalog.write_stale_report(settings, now=built, days=30)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select count(*) from ops.stale_assets where reason like 'not read%'").fetchone()[0] > 0
    result = lifecycle.deprecate(settings, manifest, None, today=built.date())
    assert (result.deprecated, result.notes, _alerts(settings)) == ([], [], [])

    # Six weeks without any build: the pipeline stopped, the models were not abandoned. One alert.
    catalog.write_stale_report(settings, now=built + dt.timedelta(days=42), days=30)
    result = lifecycle.deprecate(settings, manifest, None, today=(built + dt.timedelta(days=42)).date())
    assert result.deprecated == [] and "the pipeline looks stopped" in result.notes[0]
    assert [a["kind"] for a in _alerts(settings)] == ["stale_assets_outage"]
    assert {p: p.read_text() for p in projects_yaml} == projects_yaml
    assert audit.entries(settings) == []


def test_a_model_still_used_by_another_is_not_disabled(shop_copy: Settings) -> None:
    settings = shop_copy
    manifest = catalog.load_manifest(dbt_manifest_path(settings))
    path = settings.dbt_project_dir / "models/marts/finance/_finance__models.yml"
    catalog.write_stale_report(settings, now=_built_at(settings) + dt.timedelta(days=42), days=30)
    today = dt.date(2027, 2, 1)
    lifecycle.mark_deprecated(path, "fct_daily_revenue", since=today, archive_on=today, reason="not read")
    marked = path.read_text()

    result = lifecycle.archive_due(settings, manifest, None, today=today)
    assert result.archived == []
    assert result.waiting == ["fct_daily_revenue: still used by model.shop_analytics.fct_daily_marketing_efficiency"]
    assert path.read_text() == marked, "left enabled: disabling it would break dbt parse"
    assert audit.entries(settings) == []


def test_a_deprecated_model_built_again_or_kept_by_its_owner_is_deprecated_no_more(shop_copy: Settings) -> None:
    settings = shop_copy
    manifest = catalog.load_manifest(dbt_manifest_path(settings))
    path = settings.dbt_project_dir / "models/marts/finance/_finance__models.yml"
    original = path.read_text()
    today = _built_at(settings).date()
    for model in ("fct_order_lines", "fct_daily_revenue"):
        lifecycle.mark_deprecated(path, model, since=today, archive_on=today, reason="not built for 31 days")
    with lifecycle._model_entry(path, "fct_daily_revenue") as entry:
        lifecycle._meta(entry)["keep"] = True  # the owner's answer to the notice
    assert path.read_text() != original

    # fct_order_lines was built today (not stale); fct_daily_revenue was not read (stale), but kept.
    catalog.write_stale_report(settings, now=_built_at(settings), days=30)
    result = lifecycle.run_daily(settings, manifest, None, today=today)
    assert result.archived == [] and sorted(result.notes) == [
        "fct_daily_revenue: kept by its owner (meta.keep), its deprecation is lifted",
        "fct_order_lines: no longer stale, its deprecation is lifted",
    ]
    assert [m.name for m in lifecycle.deprecated_models(settings.dbt_project_dir)] == []
    added = [line.strip() for line in path.read_text().splitlines() if line not in original.splitlines()]
    assert added == ["keep: true"], "only the owner's line is left"
    assert [e.action for e in audit.entries(settings)] == ["asset_deprecation_lifted"] * 2

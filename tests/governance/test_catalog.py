"""The catalog stays complete (CI fails on an unowned or undocumented asset) and stale assets are reported.

Completeness reads dbt's manifest of the project as it is now, plus the columns the marts really
have once built (the small shop), so a column missing from the YAML is caught too.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import duckdb

from core.settings import Settings
from governance import catalog
from governance.access_log import DDL as ACCESS_LOG_DDL
from serving.publish import dbt_manifest_path


def _built_columns(settings: Settings) -> dict[str, set[str]]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "select table_name, column_name from information_schema.columns where table_schema = 'marts'"
        ).fetchall()
    columns: dict[str, set[str]] = {}
    for table, column in rows:
        columns.setdefault(table, set()).add(column)
    return columns


def test_every_model_and_source_has_an_owner_and_a_description(dbt_manifest: Path, small_shop: Settings) -> None:
    manifest = catalog.load_manifest(dbt_manifest)
    built = _built_columns(small_shop)
    assert "fct_daily_revenue" in built
    findings = catalog.completeness(manifest, built)
    by_layer: dict[str, list[str]] = {}
    for finding in findings:
        by_layer.setdefault(finding.layer, []).append(str(finding))
    assert findings == [], "the catalog is incomplete:\n" + "\n".join(
        f"{layer}:\n  " + "\n  ".join(items) for layer, items in sorted(by_layer.items())
    )


def test_a_missing_owner_description_or_column_doc_fails_the_check(dbt_manifest: Path) -> None:
    manifest = copy.deepcopy(catalog.load_manifest(dbt_manifest))
    node = manifest["nodes"]["model.shop_analytics.fct_daily_revenue"]
    node["meta"].pop("owner", None)
    node["config"]["meta"].pop("owner", None)
    node["columns"]["orders"]["description"] = ""
    manifest["nodes"]["model.shop_analytics.stg_shop__orders"]["description"] = " "
    source = next(s for s in manifest["sources"].values() if s["name"] == "orders")
    source["meta"].pop("owner", None)
    source["source_meta"].pop("owner", None)
    found = {str(f) for f in catalog.completeness(manifest, {"fct_daily_revenue": {"orders", "undocumented_col"}})}
    assert found == {
        "model.shop_analytics.fct_daily_revenue (marts): no owner (meta.owner)",
        "model.shop_analytics.fct_daily_revenue (marts): column orders has no description",
        "model.shop_analytics.fct_daily_revenue (marts): column undocumented_col has no description",
        "model.shop_analytics.stg_shop__orders (staging): no description",
        f"{source['unique_id']} (source): no owner (meta.owner)",
    }


def test_the_stale_asset_report_lists_what_nobody_builds_or_reads(small_shop: Settings) -> None:
    settings = small_shop
    manifest_path = dbt_manifest_path(settings)
    built_at = json.loads(manifest_path.with_name("run_results.json").read_text())["metadata"]["generated_at"]
    now = dt.datetime.fromisoformat(built_at.replace("Z", "+00:00")).replace(tzinfo=None)
    # A dashboard read fct_daily_revenue yesterday (a collected Superset event).
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(ACCESS_LOG_DDL)
        con.execute(
            "insert into ops.access_log values ('superset:log:1', 'superset', ?, 'executive', 'ChartDataRestApi.data', "
            "'chartdata', null, 'marts.fct_daily_revenue', null, null, ?)",
            [now - dt.timedelta(days=1), now],
        )

    report = catalog.write_stale_report(settings, now=now, days=30)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        stale = dict(con.execute("select name, reason from ops.stale_assets").fetchall())
    assert "fct_daily_revenue" not in stale, "built today and read yesterday"
    assert "not read" in stale["fct_daily_revenue_by_segment"], "published, nobody read it"
    assert "fct_order_lines" not in stale, "not published: only its builds count, and it was built today"
    assert not any("not built" in reason or "never" in reason for reason in stale.values())
    assert "| fct_daily_revenue_by_segment | marts | finance-analytics@shop.example |" in report.read_text()

    # Six weeks without a build: every model is stale, the report names each with its owner.
    later = catalog.write_stale_report(settings, now=now + dt.timedelta(days=42), days=30)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        reasons = dict(con.execute("select name, reason from ops.stale_assets").fetchall())
        models = con.execute("select count(distinct unique_id) from ops.model_builds").fetchone()[0]
    assert len(reasons) == models and all("not built for 42 days" in r for r in reasons.values())
    assert later.read_text().count("not built for 42 days") == models

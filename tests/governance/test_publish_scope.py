"""Publish leaves the row-level marts (dbt `meta.publish: false`) in the warehouse, read from dbt's real manifest."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from core.settings import get_settings
from quality import record_results, validate_marts
from serving.publish import PublishRefused, publish, unpublished_marts
from tests.serving.conftest import DAYS, revenue_warehouse

# The stack's DuckDB limits for the sessions under test; the files they open are the tests' own.
SETTINGS = get_settings()


def test_the_manifest_marks_every_row_level_mart_unpublished(dbt_manifest: Path) -> None:
    unpublished = unpublished_marts(dbt_manifest)
    assert {"fct_order_lines", "dim_customers", "fct_sessions"} <= unpublished
    nodes = json.loads(dbt_manifest.read_text())["nodes"].values()
    # Every mart keyed by a person (customer or visitor) is among them.
    for node in nodes:
        if node["resource_type"] == "model" and node["schema"] == "marts":
            if {"customer_id", "visitor_hash", "email_hash"} & set(node["columns"]):
                assert node["name"] in unpublished, f"marts.{node['name']} is row-level personal data"


def test_publish_skips_unpublished_marts_and_publishes_what_gate_2_audited(
    tmp_path: Path, dbt_manifest: Path, docs: Path
) -> None:
    warehouse = revenue_warehouse(tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table marts.fct_order_lines as select 1 as order_item_id, 42 as customer_id")
    unserved = unpublished_marts(dbt_manifest)
    result = validate_marts(warehouse, "run-1", ds=DAYS[-1], docs=docs, settings=SETTINGS, unserved=unserved)
    record_results(warehouse, result, settings=SETTINGS)
    assert result.success, result.reason
    serving = tmp_path / "serving.duckdb"
    published = publish(warehouse, serving, "run-1", manifest_path=dbt_manifest, settings=SETTINGS)
    assert "marts.fct_daily_revenue" in published.tables and "marts.fct_order_lines" not in published.tables
    with duckdb.connect() as con:
        con.execute(f"attach '{serving}' as s (read_only)")
        tables = {
            t for (t,) in con.execute("select table_name from duckdb_tables() where schema_name = 'marts'").fetchall()
        }
    assert tables == {"fct_daily_revenue"}
    # Gate 2 fingerprinted the marts publish serves: an unpublished one changed after the audit
    # (never hashed: at ten million orders these row-level tables are most of the marts' rows) is
    # not what is published, a published one changed stops the publication.
    with duckdb.connect(str(warehouse)) as con:
        con.execute("insert into marts.fct_order_lines values (2, 43)")
    publish(warehouse, serving, "run-1", manifest_path=dbt_manifest, settings=SETTINGS)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update marts.fct_daily_revenue set orders = orders + 1 where revenue_date = ?", [DAYS[0]])
    with pytest.raises(PublishRefused, match="the marts changed since gate 2 audited them"):
        publish(warehouse, serving, "run-1", manifest_path=dbt_manifest, settings=SETTINGS)
    # A gate 2 that fingerprinted every mart (no manifest) does not match a publication that
    # leaves some out: refused, not published unaudited.
    result = validate_marts(warehouse, "run-2", ds=DAYS[-1], docs=docs, settings=SETTINGS)
    record_results(warehouse, result, settings=SETTINGS)
    with pytest.raises(PublishRefused, match="the marts changed since gate 2 audited them"):
        publish(warehouse, serving, "run-2", manifest_path=dbt_manifest, settings=SETTINGS)


def test_without_a_manifest_publish_refuses(tmp_path: Path) -> None:
    with pytest.raises(PublishRefused, match="no dbt manifest"):
        unpublished_marts(tmp_path / "missing" / "manifest.json")

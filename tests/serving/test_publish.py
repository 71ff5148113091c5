"""Publish copies only what gate 2 audited, plus the data-health tables, and never touches the served
file when it refuses. Real gate runs (GX), real DuckDB files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from core.settings import get_settings
from quality import record_results, validate_marts
from serving.publish import PublishRefused, publication, publish, publish_health
from serving.schema import ML_TABLES, PUBLISHED_OPS_TABLES
from tests.serving.conftest import DAYS, revenue_warehouse

# The stack's DuckDB limits for the sessions under test; the files they open are the tests' own.
SETTINGS = get_settings()


def audit(warehouse: Path, run_id: str, docs: Path, serving: Path | None = None):
    """Gate 2 and its record, as the pipeline's gate_marts step does."""
    result = validate_marts(warehouse, run_id, ds=DAYS[-1], serving_path=serving, docs=docs, settings=SETTINGS)
    record_results(warehouse, result, settings=SETTINGS)
    return result


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def served(serving: Path, sql: str) -> list[tuple]:
    with duckdb.connect() as con:
        con.execute(f"attach '{serving}' as s (read_only)")
        con.execute("use s")
        return con.execute(sql).fetchall()


@pytest.fixture
def paths(tmp_path) -> tuple[Path, Path]:
    return revenue_warehouse(tmp_path / "warehouse.duckdb"), tmp_path / "serving.duckdb"


def test_publish_copies_the_audited_marts_and_the_health_tables_only(paths, docs):
    warehouse, serving = paths
    result = audit(warehouse, "run-1", docs)
    assert result.success, result.reason
    published = publish(warehouse, serving, "run-1", settings=SETTINGS)
    assert published.marts_fingerprint == result.fingerprint
    tables = served(serving, "select table_schema || '.' || table_name from information_schema.tables order by 1")
    assert [t for (t,) in tables] == sorted(
        ["marts.fct_daily_revenue", "meta.publication", "meta.published_tables"]
        + [f"ops.{t}" for t in PUBLISHED_OPS_TABLES]
        + [f"ml.{t}" for t in ML_TABLES]
    ), "no raw tables (PII), no other ops tables (run ledger), no per-customer predictions"
    meta = publication(serving)
    assert meta["run_id"] == "run-1" and meta["marts_fingerprint"] == result.fingerprint
    assert served(serving, "select count(*), min(net_revenue_eur) from marts.fct_daily_revenue") == [(20, 1001)]
    # The gate's own rows are published for the Data health dashboard.
    assert served(serving, "select gate, status from ops.gate_runs") == [("gate2", "passed")]


def test_publish_refuses_marts_nobody_audited(paths):
    warehouse, serving = paths
    with pytest.raises(PublishRefused, match="no gate 2 audit recorded for run 'run-1'"):
        publish(warehouse, serving, "run-1", settings=SETTINGS)
    assert not serving.exists()


def test_publish_refuses_a_run_whose_gate_2_failed(paths, docs):
    warehouse, serving = paths
    audit(warehouse, "good", docs)
    publish(warehouse, serving, "good", settings=SETTINGS)
    before = digest(serving)
    with duckdb.connect(str(warehouse)) as con:  # a build that lost a day of loads
        con.execute("delete from ops.run_ledger where ds = ?", [DAYS[5]])
    assert not audit(warehouse, "bad", docs).success
    with pytest.raises(PublishRefused, match=r"gate 2 failed for run 'bad': .*unloaded_revenue_date"):
        publish(warehouse, serving, "bad", settings=SETTINGS)
    assert digest(serving) == before and publication(serving)["run_id"] == "good"


def test_publish_refuses_marts_changed_after_the_audit(paths, docs):
    warehouse, serving = paths
    assert audit(warehouse, "run-1", docs).success
    revenue_warehouse(warehouse, version=2)  # dbt ran again between gate 2 and publish
    with pytest.raises(PublishRefused, match="the marts changed since gate 2 audited them"):
        publish(warehouse, serving, "run-1", settings=SETTINGS)
    assert not serving.exists()
    assert not list(serving.parent.glob(".serving-*")), "no staging file left behind"


def test_publish_health_refreshes_ops_and_keeps_the_served_marts(paths, docs):
    warehouse, serving = paths
    audit(warehouse, "run-1", docs)
    publish(warehouse, serving, "run-1", settings=SETTINGS)
    marts_before = served(serving, "select * from marts.fct_daily_revenue order by 1")
    # The next build is bad: gate 2 fails, the failure is recorded, nothing is published ...
    revenue_warehouse(warehouse, version=2)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from ops.run_ledger where ds = ?", [DAYS[3]])
    failed = audit(warehouse, "run-2", docs, serving)
    assert not failed.success
    # ... but the Data health tables in serving show it, next to the last good marts.
    refreshed = publish_health(warehouse, serving, "health-1", settings=SETTINGS)
    assert refreshed.run_id == "run-1"
    assert served(serving, "select * from marts.fct_daily_revenue order by 1") == marts_before
    meta = publication(serving)
    assert (meta["run_id"], meta["health_run_id"]) == ("run-1", "health-1")
    assert served(serving, "select run_id, status from ops.gate_runs order by checked_at") == [
        ("run-1", "passed"),
        ("run-2", "failed"),
    ]


def test_publish_health_before_any_publication_does_nothing(paths):
    warehouse, serving = paths
    assert publish_health(warehouse, serving, "health", settings=SETTINGS).tables == {}
    assert not serving.exists()


def test_published_tables_carry_their_fingerprint(paths, docs):
    from quality.fingerprint import schema_fingerprint

    warehouse, serving = paths
    audit(warehouse, "run-1", docs)
    publish(warehouse, serving, "run-1", settings=SETTINGS)
    with duckdb.connect() as con:
        con.execute(f"attach '{serving}' as s (read_only)")
        recomputed = schema_fingerprint(con, "s", "marts")
        rows = con.execute(
            "select p.marts_fingerprint, t.row_count from s.meta.publication p, s.meta.published_tables t "
            "where t.table_name = 'fct_daily_revenue'"
        ).fetchall()
    assert rows == [(recomputed, 20)]

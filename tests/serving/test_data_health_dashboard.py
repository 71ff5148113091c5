"""The Data health dashboard in a real Superset, on a serving file the real gates, quarantine
(a gate-1 batch and a partner file), freshness check and publish wrote; and dashboard queries that
keep succeeding while publish swaps the file underneath them.

Superset runs from its own venv (gunicorn on 127.0.0.1, a temporary home), as `make run` starts it.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import yaml

from core.settings import Settings, get_settings
from ingestion.app_db.contract import CONTRACTS
from ingestion.lake import write_partition
from ingestion.partner_files import samples
from ingestion.partner_files.process import inbox_dir, process_inbox
from quality import quarantine, record_results, validate_landed_batch, validate_marts
from quality.freshness import FreshnessBreach, check_freshness
from serving.publish import publish, publish_health
from stackctl import procs, superset_service
from superset import provision
from tests.serving.conftest import DAYS, revenue_warehouse

pytestmark = pytest.mark.slow

ASSETS = provision.ASSETS_DIR
BAD_DAY = DAYS[-1] + dt.timedelta(days=1)


def _assets(prefix: str) -> dict[str, dict[str, Any]]:
    return {p.name: yaml.safe_load(p.read_text()) for p in (ASSETS / "charts").glob(f"{prefix}*.yaml")}


CHARTS = {doc["slice_name"]: doc["uuid"] for doc in _assets("data_health_").values()}


# The shop's raw tables were last loaded when BAD_DAY ended.
COMPLETE = dt.datetime.combine(BAD_DAY + dt.timedelta(days=1), dt.time())
SHOP_SOURCES = Path(__file__).resolve().parents[2] / "dbt_project/models/staging/shop/_shop__sources.yml"


def _shop_loaded_at(settings: Settings, loaded_at: dt.datetime) -> None:
    """Give every raw table of the shop one row loaded at `loaded_at` (what `dbt source freshness` reads)."""
    with duckdb.connect(str(settings.warehouse_path)) as con:
        for table in CONTRACTS:
            con.execute(f"create table if not exists raw.{table} (_ds date)")
            con.execute(f"alter table raw.{table} add column if not exists _ds date")
            con.execute(f"alter table raw.{table} add column if not exists _loaded_at timestamp")
            con.execute(f"insert into raw.{table} (_ds, _loaded_at) values (?, ?)", [BAD_DAY, loaded_at])


def _land_and_gate(settings: Settings, table: str, rows: dict[str, list], run_id: str) -> None:
    """Land a batch for BAD_DAY, run gate 1 on it, record it, quarantine it if it fails."""
    schema = CONTRACTS[table].schema
    batch = pa.RecordBatch.from_pydict(rows, schema=schema)
    manifest = write_partition(settings.lake_raw_dir, "shop", table, BAD_DAY, [batch], schema, run_id)
    folder = settings.lake_raw_dir / "shop" / table / f"ds={BAD_DAY}"
    result = validate_landed_batch(table, [folder / manifest.file], run_id, str(BAD_DAY))
    record_results(settings.warehouse_path, result, settings=settings)
    if not result.success:
        quarantine.quarantine_partition(settings, manifest, result)


def _order_items(prices: list[int]) -> dict[str, list]:
    stamp = dt.datetime.combine(BAD_DAY, dt.time(10))
    n = len(prices)
    return {
        "order_item_id": list(range(1, n + 1)),
        "order_id": list(range(1, n + 1)),
        "product_id": [1] * n,
        "quantity": [1] * n,
        "unit_price_cents": prices,
        "created_at": [stamp] * n,
        "updated_at": [stamp] * n,
    }


def _data_health_assets(folder: Path) -> Path:
    """This dashboard's files and the database they use (the full bundle is tests/superset's)."""
    names = ["metadata.yaml", "databases/serving.yaml", "dashboards/data_health.yaml"]
    names += [f"charts/{name}" for name in _assets("data_health_")]
    names += [f"datasets/serving/{t}.yaml" for t in ("data_health", "gate_runs", "quarantine", "source_freshness")]
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text((ASSETS / name).read_text())
    return folder


@dataclass
class Health:
    settings: Settings
    client: provision.SupersetClient
    chart_ids: dict[str, int]
    partner_file_id: str  # the partner file the inbox held, as ops.quarantine names it
    partner_file_reason: str


def _hold_partner_file(settings: Settings) -> tuple[str, str]:
    """A partner file with a wrong header, held whole by the inbox run: (its quarantine id, its reason)."""
    sample = samples.build("orders_wrong_header", BAD_DAY)
    samples.drop(inbox_dir(settings), sample.partner, sample.file_name, sample.data)
    (held,) = process_inbox(settings, "partner-1", settle_seconds=0, today=BAD_DAY + dt.timedelta(days=1)).files
    assert held.outcome == "quarantined" and held.quarantine_id and held.reason
    return f"partner_files/{held.quarantine_id}", held.reason


@pytest.fixture(scope="module")
def health(tmp_path_factory: pytest.TempPathFactory, gx_project) -> Iterator[Health]:
    root = tmp_path_factory.mktemp("data-health")
    with pytest.MonkeyPatch.context() as env:
        env.delenv("SUPERSET_METADATA_URI", raising=False)
        for name in (
            "APP_DB_URL",
            "LAKE_DIR",
            "WAREHOUSE_DIR",
            "WAREHOUSE_PATH",
            "SERVING_PATH",
            "GX_DOCS_DIR",
            "ALERT_WEBHOOK_URL",
        ):
            env.delenv(name, raising=False)
        for name, value in {
            "STACK_DATA_DIR": root,
            "STACK_VAR_DIR": root / "var",
            "SUPERSET_HOME": root / "var" / "superset",
            "SUPERSET_PORT": procs.free_port(),
            "SUPERSET_ADMIN_USER": "health_admin",
            "SUPERSET_ADMIN_PASSWORD": secrets.token_urlsafe(16),
            "SUPERSET_SECRET_KEY": secrets.token_urlsafe(32),
            "SUPERSET_WEB_WORKERS": "1",
            "PII_HASH_KEY": secrets.token_hex(16),  # dbt's profile loads the key for every command
        }.items():
            env.setenv(name, str(value))
        settings = get_settings()
        # What the pipeline leaves behind: a published day, a bad batch held (and one superseded),
        # a partner file held, a late source.
        revenue_warehouse(settings.warehouse_path)
        audited = validate_marts(
            settings.warehouse_path, "elt-1", serving_path=settings.serving_path, settings=settings
        )
        record_results(settings.warehouse_path, audited, settings=settings)
        publish(settings.warehouse_path, settings.serving_path, "elt-1", settings=settings)
        _land_and_gate(settings, "order_items", _order_items([1999, -5, 250]), "shop-1")
        _land_and_gate(settings, "order_items", _order_items([1999, 250, 250]), "shop-2")  # re-landed, fixed
        partner_file_id, partner_file_reason = _hold_partner_file(settings)
        _shop_loaded_at(settings, COMPLETE)
        with pytest.raises(FreshnessBreach):
            # dbt finds the shop's loads months old by the wall clock. The check also rebuilds ops.quarantine.
            check_freshness(settings, alert=False)
        publish_health(settings.warehouse_path, settings.serving_path, "health-1", settings=settings)
        try:
            superset_service.init_metadata(settings, log=lambda message: None)
            superset_service.start(settings, log=lambda message: None)
            provision.import_assets(settings, assets_dir=_data_health_assets(root / "assets"), log=lambda m: None)
            client = provision.SupersetClient(provision.base_url(settings), provision.admin_credentials())
            listed = client.get("/api/v1/chart/", q="(columns:!(id,uuid),page_size:100)")["result"]
            ids = {row["uuid"]: row["id"] for row in listed}
            yield Health(
                settings,
                client,
                {name: ids[uuid] for name, uuid in CHARTS.items()},
                partner_file_id,
                partner_file_reason,
            )
        finally:
            superset_service.stop(settings)


def chart_rows(health: Health, name: str) -> list[dict[str, Any]]:
    response = health.client.session.get(
        f"{health.client.url}/api/v1/chart/{health.chart_ids[name]}/data/", params={"force": "true"}, timeout=60
    )
    assert response.status_code == 200, response.text[:500]
    results = response.json()["result"]
    assert [r["status"] for r in results] == ["success"], results
    return results[0]["data"]


def test_the_dashboard_has_every_data_health_chart(health):
    dashboard = health.client.get("/api/v1/dashboard/data-health")["result"]
    charts = health.client.get(f"/api/v1/dashboard/{dashboard['id']}/charts")["result"]
    assert {c["slice_name"] for c in charts} == set(CHARTS)


def test_held_batches_and_late_sources(health):
    # The batch gate 1 holds and the partner file the inbox holds: one quarantine.
    assert chart_rows(health, "Batches held in quarantine") == [{"held_batches": 2}]
    assert chart_rows(health, "Sources late or missing") == [{"sources_late_or_missing": 1}]


def test_quarantined_batches_say_why(health):
    rows = {row["quarantine_id"]: row for row in chart_rows(health, "Quarantined batches")}
    assert set(rows) == {f"shop/order_items/ds={BAD_DAY}/shop-1", health.partner_file_id}
    row = rows[f"shop/order_items/ds={BAD_DAY}/shop-1"]
    assert row["status"] == "held"
    assert row["failed_expectations"] == "expect_column_values_to_be_between(unit_price_cents)"
    assert "observed 1 of 3 unexpected, e.g. [-5]" in row["reason"]
    partner_file = rows[health.partner_file_id]
    assert (partner_file["status"], partner_file["failed_expectations"]) == ("held", "header")
    assert partner_file["reason"] == health.partner_file_reason and "qty" in partner_file["reason"]


def test_failed_gate_runs_are_listed_with_their_reason(health):
    rows = chart_rows(health, "Failed and warned gate runs")
    assert [(r["gate"], r["suite"], r["status"], r["run_id"]) for r in rows] == [
        ("gate1", "raw.order_items", "failed", "shop-1")
    ]
    assert rows[0]["reason"].startswith(f"gate1 raw.order_items ds={BAD_DAY} FAILED 1 of")


def test_gate_results_per_day_count_every_run(health):
    rows = chart_rows(health, "Gate results per day")
    assert len(rows) == 1  # everything ran today
    counts = {k: v for k, v in rows[0].items() if k != "checked_at"}
    assert counts == {"failed": 1, "passed": 2}


def test_freshness_per_source_is_live(health):
    (row,) = chart_rows(health, "Freshness per source")
    assert (row["source"], row["status"], row["status_now"]) == ("shop", "late", "late")
    # Every table of the shop was last loaded when BAD_DAY ended: the age counts from there.
    expected_age = (dt.datetime.now(dt.UTC).replace(tzinfo=None) - COMPLETE).total_seconds() / 3600
    assert abs(row["age_hours_now"] - expected_age) < 0.5
    (shop,) = yaml.safe_load(SHOP_SOURCES.read_text())["sources"]
    assert row["sla_hours"] == shop["freshness"]["error_after"]["count"]  # the dbt source's error_after, hours


def test_dashboard_queries_never_fail_while_publish_swaps_the_file(health):
    settings = health.settings
    seen: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def query_loop() -> None:
        while not stop.is_set():
            try:
                seen.append(chart_rows(health, "Batches held in quarantine")[0]["held_batches"])
            except AssertionError as error:
                errors.append(str(error)[:300])

    def set_held(double: bool) -> None:
        # Between publications the warehouse's quarantine table says 2 or 4 items are held.
        with duckdb.connect(str(settings.warehouse_path)) as con:
            con.execute("delete from ops.quarantine where run_id = 'extra'")
            if double:
                con.execute(
                    "insert into ops.quarantine select quarantine_id || '-extra', source, table_name, ds, 'extra', "
                    "status, quarantined_at, resolved_at, row_count, failed_expectations, reason, resolution "
                    "from ops.quarantine where status = 'held'"
                )

    reader = threading.Thread(target=query_loop)
    reader.start()
    try:
        for n in range(8):
            set_held(n % 2 == 0)
            publish_health(settings.warehouse_path, settings.serving_path, f"health-loop-{n}", settings=settings)
            time.sleep(0.3)
    finally:
        stop.set()
        reader.join(timeout=120)
    assert errors == []
    assert set(seen) == {2, 4}, f"{len(seen)} queries saw {sorted(set(seen))}"

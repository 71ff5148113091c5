"""Freshness SLAs: a source that stops arriving raises an alert (file and webhook), is recorded in
ops.source_freshness and fails the check. Real lake writer, loader and a real HTTP webhook."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import duckdb
import pytest

from core.settings import Settings
from ingestion.app_db.batch import load_days
from ingestion.app_db.contract import CONTRACTS
from ingestion.lake import write_partition
from quality.freshness import FreshnessBreach, check_freshness, compute_freshness

REPO = Path(__file__).resolve().parents[2]
DAYS = [dt.date(2026, 3, 1), dt.date(2026, 3, 2)]
END_OF_LAST_DAY = dt.datetime(2026, 3, 3)


def land(settings: Settings, days: list[dt.date], tables=tuple(CONTRACTS), source: str = "shop") -> None:
    """Land (quiet, empty) batches through the real lake writer."""
    for day in days:
        for table in tables:
            schema = CONTRACTS[table].schema if table in CONTRACTS else CONTRACTS["orders"].schema
            write_partition(settings.lake_raw_dir, source, table, day, [], schema, f"run-{day}")


@pytest.fixture
def landed(stack: Settings) -> Settings:
    land(stack, DAYS)
    load_days(stack, DAYS, "load-run")
    return stack


def by_source(rows) -> dict:
    return {r.source: r for r in rows}


def test_a_source_landed_last_night_is_fresh(landed):
    (shop,) = compute_freshness(landed, now=END_OF_LAST_DAY + dt.timedelta(hours=10))
    assert (shop.source, shop.status, shop.tables) == ("shop", "ok", len(CONTRACTS))
    assert shop.last_landed_ds == DAYS[-1] and shop.data_complete_at == END_OF_LAST_DAY
    assert shop.age_hours == 10.0 and shop.sla_hours == 30.0
    assert shop.last_loaded_ds == DAYS[-1] and shop.last_loaded_at is not None
    assert shop.lagging_tables is None


def test_a_source_that_stopped_arriving_is_late(landed):
    (shop,) = compute_freshness(landed, now=END_OF_LAST_DAY + dt.timedelta(hours=31))
    assert shop.status == "late" and shop.age_hours == 31.0
    assert shop.summary == "shop: complete up to 2026-03-02, 31.0 h old (SLA 30 h, late)"


def test_one_table_missing_its_day_holds_the_source_back(landed):
    land(landed, [DAYS[-1] + dt.timedelta(days=1)], tables=[t for t in CONTRACTS if t != "order_items"])
    (shop,) = compute_freshness(landed, now=END_OF_LAST_DAY + dt.timedelta(hours=20))
    assert shop.last_landed_ds == DAYS[-1]
    assert shop.lagging_tables == "order_items (2026-03-02)"


def test_expected_and_configured_sources_are_missing_until_they_land(stack, monkeypatch):
    monkeypatch.setenv("FRESHNESS_SLA_HOURS", "shop=12, marketing_api=48")
    land(stack, DAYS, tables=["orders"], source="partner_files")
    rows = by_source(compute_freshness(stack, now=END_OF_LAST_DAY))
    assert {s: (r.status, r.sla_hours) for s, r in rows.items()} == {
        "shop": ("missing", 12.0),
        "marketing_api": ("missing", 48.0),
        "partner_files": ("ok", 30.0),  # discovered in the lake, default SLA
    }
    monkeypatch.setenv("FRESHNESS_SLA_HOURS", "shop")
    with pytest.raises(ValueError, match="expected source=hours"):
        compute_freshness(stack)


class Webhook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Webhook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook(monkeypatch) -> Iterator[list[dict]]:
    server = http.server.HTTPServer(("127.0.0.1", 0), Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Webhook.received = []
    monkeypatch.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_address[1]}/hook")
    try:
        yield Webhook.received
    finally:
        server.shutdown()
        server.server_close()


def test_a_breach_alerts_records_and_raises(landed, webhook):
    with pytest.raises(FreshnessBreach, match=r"freshness SLA breached: shop: complete up to 2026-03-02, 50\.0 h old"):
        check_freshness(landed, now=END_OF_LAST_DAY + dt.timedelta(hours=50))
    alerts = [json.loads(line) for line in (landed.var_dir / "alerts.jsonl").read_text().splitlines()]
    assert [(a["check"], a["source"], a["status"], a["age_hours"]) for a in alerts] == [
        ("freshness", "shop", "late", 50.0)
    ]
    assert webhook == [{"text": ":red_circle: freshness: shop: complete up to 2026-03-02, 50.0 h old (SLA 30 h, late)"}]
    with duckdb.connect(str(landed.warehouse_path), read_only=True) as con:
        assert con.execute("select source, status, age_hours, last_landed_ds from ops.source_freshness").fetchall() == [
            ("shop", "late", 50.0, DAYS[-1])
        ]


def test_a_fresh_source_is_recorded_without_alerts(landed, webhook):
    rows = check_freshness(landed, now=END_OF_LAST_DAY + dt.timedelta(hours=1))
    assert [r.status for r in rows] == ["ok"]
    assert webhook == [] and not (landed.var_dir / "alerts.jsonl").exists()
    with duckdb.connect(str(landed.warehouse_path), read_only=True) as con:
        assert con.execute("select status from ops.source_freshness").fetchall() == [("ok",)]


def test_cli_exit_status_says_whether_sources_are_fresh(landed):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "quality", "freshness", *args],
            cwd=REPO,
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=120,
        )

    # Day 2026-03-02 ended months before the machine's clock: late, by the wall clock.
    late = cli("--no-alert")
    assert late.returncode == 1, late.stderr
    assert late.stdout.startswith("freshness SLA breached: shop: complete up to 2026-03-02")
    assert not (landed.var_dir / "alerts.jsonl").exists()
    alerted = cli()
    assert alerted.returncode == 1
    assert "freshness: shop" in (landed.var_dir / "alerts.jsonl").read_text()

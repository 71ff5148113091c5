"""Freshness SLAs, defined once in the dbt source YAMLs: the real `dbt source freshness` judges the
warehouse's raw tables; a source past its error_after raises an alert (file and webhook), is
recorded in ops.source_freshness and fails the check; a fresh one passes, a warn is only recorded.
Real lake writer, loader, dbt and a real HTTP webhook."""

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
import pyarrow as pa
import pytest
import yaml

from core.settings import Settings
from ingestion.app_db.contract import CONTRACTS
from ingestion.lake import write_partition
from ingestion.warehouse import load_source_days
from quality.freshness import FreshnessBreach, check_freshness

REPO = Path(__file__).resolve().parents[2]
STAGING = REPO / "dbt_project" / "models" / "staging"
DAY = dt.date(2026, 3, 2)
FIXTURE_SCHEMA = pa.schema([pa.field("id", pa.int64())])


def source_spec(source: str) -> dict:
    (path,) = STAGING.glob(f"*/_{source}__sources.yml")
    (spec,) = yaml.safe_load(path.read_text())["sources"]
    return spec


def sla_hours(source: str) -> tuple[float, float]:
    """(warn_after, error_after) in hours, as the dbt source YAML says: the tests follow the YAML."""
    freshness = source_spec(source)["freshness"]
    assert {freshness[k]["period"] for k in ("warn_after", "error_after")} == {"hour"}
    return float(freshness["warn_after"]["count"]), float(freshness["error_after"]["count"])


def checked_tables(source: str) -> list[str]:
    """The source's tables with an SLA (`freshness: null` switches one off)."""
    return sorted(t["name"] for t in source_spec(source)["tables"] if t.get("freshness", {}) is not None)


def load_tables(settings: Settings, source: str, tables: dict[str, float]) -> None:
    """Land and load `tables` through the real lake writer and loader, then give each one row
    loaded the given number of hours ago (the fixture data: `_loaded_at` is what dbt measures)."""
    for table in tables:
        schema = CONTRACTS[table].schema if source == "shop" else FIXTURE_SCHEMA
        write_partition(settings.lake_raw_dir, source, table, DAY, [], schema, f"run-{DAY}")
    load_source_days(settings, source, list(tables), [DAY], "load-run")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        for table, hours_ago in tables.items():
            con.execute(
                f'insert into raw."{table}" (_ds, _run_id, _loaded_at) values (?, ?, ?)',
                [DAY, "fixture", now - dt.timedelta(hours=hours_ago)],
            )


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


def test_the_dbt_slas_decide_stale_sources_breach_fresh_ones_pass(stack, webhook):
    _, shop_error = sla_hours("shop")
    _, api_error = sla_hours("marketing_api")
    partner_warn, partner_error = sla_hours("partner")
    # A weekend without partner files must not alert: the partner SLA is longer than a normal one.
    assert partner_warn > 72 and partner_error > partner_warn
    load_tables(stack, "shop", dict.fromkeys(CONTRACTS, 1.0))
    # One marketing table stopped arriving, the other did not: the source is late, the table named.
    late = api_error + 4
    load_tables(stack, "marketing_api", {"marketing_spend": late, "exchange_rates": 2.0})
    # Friday's partner file on a Monday noon: past warn_after, short of error_after.
    load_tables(stack, "partner_files", {"partner_wholesale_orders": (partner_warn + partner_error) / 2})

    with pytest.raises(FreshnessBreach) as breach:
        check_freshness(stack)

    assert [b.source for b in breach.value.breaches] == ["marketing_api"]
    assert str(breach.value).startswith(f"freshness SLA breached: marketing_api: loaded {late:.1f} h ago")
    assert f"error after {api_error:g} h: late; marketing_spend (late, {late:.1f} h)" in str(breach.value)
    alerts = [json.loads(line) for line in (stack.var_dir / "alerts.jsonl").read_text().splitlines()]
    assert [(a["check"], a["source"], a["status"], a["sla_hours"]) for a in alerts] == [
        ("freshness", "marketing_api", "late", api_error)
    ]
    assert webhook == [{"text": f":red_circle: {alerts[0]['summary']}"}]
    with duckdb.connect(str(stack.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "select source, status, tables, round(age_hours), sla_hours, last_landed_ds, lagging_tables "
            "from ops.source_freshness order by source"
        ).fetchall()
    assert rows == [
        ("marketing_api", "late", 2, round(late), api_error, DAY, f"marketing_spend (late, {late:.1f} h)"),
        ("partner", "warn", 1, round((partner_warn + partner_error) / 2), partner_error, DAY, None),
        ("shop", "ok", len(checked_tables("shop")), 1, shop_error, DAY, None),
    ]
    # dbt's own artifact says the same, in the check's own target folder (Cosmos' target is untouched).
    verdicts = json.loads((stack.var_dir / "dbt_freshness" / "sources.json").read_text())["results"]
    assert {r["unique_id"].split(".", 2)[2]: r["status"] for r in verdicts} == {
        **{f"shop.{t}": "pass" for t in checked_tables("shop")},
        "marketing_api.marketing_spend": "error",
        "marketing_api.exchange_rates": "pass",
        "partner.partner_wholesale_orders": "warn",
    }

    # The late table's next load lands: the next check passes by itself, records it and alerts no one.
    load_tables(stack, "marketing_api", {"marketing_spend": 0.5})
    rows = check_freshness(stack)
    assert {r.source: r.status for r in rows} == {"marketing_api": "ok", "partner": "warn", "shop": "ok"}
    assert len((stack.var_dir / "alerts.jsonl").read_text().splitlines()) == 1 and len(webhook) == 1
    with duckdb.connect(str(stack.warehouse_path), read_only=True) as con:
        assert con.execute("select status from ops.source_freshness where source = 'marketing_api'").fetchall() == [
            ("ok",)
        ]


def test_cli_fails_when_the_shop_never_loaded(stack):
    """Nothing loaded: the shop's tables are missing (a partner that never delivered is not)."""
    cli = subprocess.run(
        [sys.executable, "-m", "quality", "freshness", "--no-alert"],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert cli.returncode == 1, cli.stdout[-2000:] + cli.stderr[-2000:]
    breach = next(line for line in cli.stdout.splitlines() if line.startswith("freshness SLA breached"))
    assert breach.startswith("freshness SLA breached: shop: nothing loaded (")
    assert "missing" in breach and "marketing_api" not in breach and "partner" not in breach
    assert not (stack.var_dir / "alerts.jsonl").exists()
    with duckdb.connect(str(stack.warehouse_path), read_only=True) as con:
        assert con.execute("select source, status, tables from ops.source_freshness").fetchall() == [
            ("shop", "missing", 0)
        ]


def test_the_retired_python_slas_are_refused_with_a_pointer(stack, monkeypatch):
    monkeypatch.setenv("FRESHNESS_SLA_HOURS", "partner_files=120")
    with pytest.raises(ValueError, match=r"FRESHNESS_SLA_HOURS is no longer read: .*_<source>__sources\.yml"):
        check_freshness(stack)

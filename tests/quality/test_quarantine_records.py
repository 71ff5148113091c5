"""One quarantine: gate-1 batches and partner files held side by side, in one listing, one CLI and
`ops.quarantine` (what the Data health dashboard reads).

Real partner files through the real inbox run (the helpers of tests/ingestion/test_partner_files.py),
a real gate-1 failure (GX) on a landed batch, a real DuckDB warehouse.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from core.settings import Settings
from ingestion.app_db.contract import CONTRACTS
from ingestion.lake import write_partition
from ingestion.partner_files.process import inbox_dir
from quality import quarantine, validate_landed_batch
from quality import quarantine_records as records
from tests.ingestion.test_partner_files import DAY, drop, inbox_files, run, warehouse
from tests.quality.conftest import DS, good_rows

REPO = Path(__file__).resolve().parents[2]
BATCH_ID = f"shop/order_items/ds={DS}/shop-1"


@pytest.fixture
def pf(stack, monkeypatch):
    """As in the partner-file tests: the isolated stack, the partner-file knobs at their defaults."""
    for name in ("PARTNER_FILES_MAX_BAD_ROW_RATIO", "PARTNER_FILES_FAULT", "ALERT_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PARTNER_FILES_SETTLE_SECONDS", "0")
    return stack


def hold_bad_batch(settings: Settings, docs: Path) -> str:
    """A landed order_items batch with a negative price, failed by gate 1 and quarantined."""
    rows = good_rows("order_items")
    rows["unit_price_cents"] = [1999, -5, 250]
    schema = pa.schema([f for f in CONTRACTS["order_items"].schema if f.name in rows])
    manifest = write_partition(
        settings.lake_raw_dir,
        "shop",
        "order_items",
        DS,
        [pa.RecordBatch.from_pydict(rows, schema=schema)],
        schema,
        "shop-1",
    )
    folder = settings.lake_raw_dir / "shop" / "order_items" / f"ds={DS}"
    result = validate_landed_batch("order_items", [folder / manifest.file], "shop-1", DS, docs=docs)
    assert not result.success
    return quarantine.quarantine_partition(settings, manifest, result).quarantine_id


def test_a_held_partner_file_is_listed_with_the_gate1_batches_and_reaches_ops_quarantine(pf, docs):
    assert hold_bad_batch(pf, docs) == BATCH_ID
    whole = drop(pf, "orders_wrong_header")
    partial = drop(pf, "reviews_bad_rating")
    outcomes = {f.file_name: f for f in run(pf).files}
    held, held_rows = outcomes[whole.file_name], outcomes[partial.file_name]
    whole_id, rows_id = f"partner_files/{held.quarantine_id}", f"partner_files/{held_rows.quarantine_id}"

    found = {r.id: r for r in records.records(pf, quarantine.HELD)}
    assert set(found) == {BATCH_ID, whole_id, rows_id}
    file = found[whole_id]
    assert (file.kind, file.source, file.table, file.ds, file.run_id, file.status) == (
        "partner_file",
        "partner_files",
        "wholesale_orders",
        DAY,
        "run-1",
        "held",
    )
    assert file.reason == held.reason and file.failed_checks == "header" and file.row_count == whole.rows
    assert file.what == f"wholesale_orders/{whole.file_name}"
    bad_rows = found[rows_id]
    assert (bad_rows.failed_checks, bad_rows.row_count) == ("range(rating)", 1)
    batch = found[BATCH_ID]
    assert (batch.kind, batch.failed_checks) == ("gate1_batch", "expect_column_values_to_be_between(unit_price_cents)")
    # Gate 1's own listing is what it was: its batches only.
    assert [e.quarantine_id for e in quarantine.list_entries(pf)] == [BATCH_ID]
    # Every id resolves, the partner tools' short ids and checksum prefixes too.
    assert records.find(pf, held.quarantine_id).id == whole_id
    assert records.find(pf, held.sha256[:8]).id == whole_id
    assert records.find(pf, "shop/order_items").id == BATCH_ID

    # The sync gate 1, the freshness check and the CLI use writes both kinds.
    assert quarantine.sync_table(pf) == 3
    assert warehouse(
        pf,
        "select quarantine_id, source, table_name, ds, status, reason, failed_expectations, row_count "
        "from ops.quarantine where source = 'partner_files' order by quarantine_id",
    ) == sorted(
        [
            (whole_id, "partner_files", "wholesale_orders", DAY, "held", held.reason, "header", whole.rows),
            (rows_id, "partner_files", "product_reviews", DAY, "held", held_rows.reason, "range(rating)", 1),
        ]
    )
    assert warehouse(pf, "select quarantine_id, failed_expectations from ops.quarantine where source = 'shop'") == [
        (BATCH_ID, "expect_column_values_to_be_between(unit_price_cents)")
    ]


def test_a_replaced_day_and_a_dismissed_file_say_how_they_were_closed(pf):
    partial = drop(pf, "reviews_bad_rating")
    first = run(pf, "run-1").files[0]
    drop(pf, "reviews_good")  # a corrected re-send for the same day replaces it
    later = run(pf, "run-2").files[0]
    assert later.outcome == "loaded"
    drop(pf, "orders_wrong_header", DAY + dt.timedelta(days=1))
    dismissed = run(pf, "run-3").files[0]
    records.dismiss_partner_file(pf, records.find(pf, dismissed.quarantine_id), "the partner withdrew the file")

    found = {r.id: r for r in records.records(pf)}
    replaced = found[f"partner_files/{first.quarantine_id}"]
    assert replaced.status == "superseded" and replaced.resolution.endswith(later.file_name)
    assert replaced.resolved_at is not None and replaced.ds == DAY and partial.file_name in replaced.what
    closed = found[f"partner_files/{dismissed.quarantine_id}"]
    assert (closed.status, closed.resolution) == ("dismissed", "dismissed: the partner withdrew the file")
    assert records.records(pf, quarantine.HELD) == []


def test_one_cli_lists_shows_and_releases_both_kinds(pf, docs, tmp_path):
    hold_bad_batch(pf, docs)
    sample = drop(pf, "orders_wrong_header")
    held = run(pf).files[0]
    partner_id = f"partner_files/{held.quarantine_id}"
    env = {**os.environ, "GX_DOCS_DIR": str(tmp_path / "cli-docs")}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "quality", "quarantine", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    listed = cli("list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert sorted(line.split()[1] for line in lines) == sorted([BATCH_ID, partner_id])
    assert all(line.startswith("held       ") for line in lines)
    assert any(held.reason in line for line in lines)
    listed_records = {r["id"]: r for r in json.loads(cli("list", "--json").stdout)}
    assert (listed_records[partner_id]["kind"], listed_records[partner_id]["what"]) == (
        "partner_file",
        f"wholesale_orders/{sample.file_name}",
    )

    shown = cli("show", held.quarantine_id)  # the id as the partner tools print it
    assert shown.returncode == 0 and shown.stdout.startswith(f"# Partner file held in quarantine: `{sample.file_name}`")
    as_json = json.loads(cli("show", partner_id, "--json").stdout)
    assert (as_json["kind"], as_json["status"], as_json["sha256"]) == ("partner_file", "held", held.sha256)
    assert cli("show", "shop/order_items").stdout.startswith(f"# Quarantined: shop.order_items ds={DS}")

    refused = cli("patch", partner_id, "--sql", "update batch set qty = 1")
    assert refused.returncode == 2 and f"quarantine release {partner_id}" in refused.stderr
    assert cli("dismiss", "shop/order_items", "--note", "no").returncode == 2

    released = cli("release", partner_id)
    assert released.returncode == 0, released.stdout + released.stderr
    assert released.stdout.startswith(f"released {partner_id} to {inbox_dir(pf) / 'wholesale_orders'}")
    assert inbox_files(pf) == [sample.file_name]
    assert [line.split()[1] for line in cli("list").stdout.splitlines()] == [BATCH_ID]
    (line,) = cli("list", "--all", "--kind", "partner_file").stdout.splitlines()
    assert line.startswith(f"released   {partner_id} ")
    # The release rebuilt ops.quarantine: the dashboard sees it released.
    assert warehouse(pf, "select status from ops.quarantine where quarantine_id = ?", [partner_id]) == [("released",)]

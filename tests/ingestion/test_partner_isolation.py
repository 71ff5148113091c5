"""Partner files: one failing file never stops the run, and the explicit escapes from the policies work.

Real files, a real ledger and warehouse: a file whose processing fails for a reason nobody
planned for (its archive path is taken by a folder) is quarantined as an internal error while the
next file loads; the empty-file policy can be lifted explicitly; a file held under a safe name
(its own was too long) can be released and loads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ingestion.partner_files import samples
from ingestion.partner_files.ledger import Ledger
from ingestion.partner_files.process import archive_path, inbox_dir, ledger_path, load_landed, process_inbox
from ingestion.partner_files.quarantine import quarantine_root
from tests.conftest import DAY0

REPO = Path(__file__).resolve().parents[2]
TODAY = DAY0 + dt.timedelta(days=3)


@pytest.fixture
def pf(stack, monkeypatch):
    for name in (
        "PARTNER_FILES_MAX_BAD_ROW_RATIO",
        "PARTNER_FILES_FAULT",
        "ALERT_WEBHOOK_URL",
        "PARTNER_FILES_ALLOW_EMPTY_REPLACEMENT",
    ):
        monkeypatch.delenv(name, raising=False)
    return stack


def _run(settings, run_id: str):
    summary = process_inbox(settings, run_id, settle_seconds=0, today=TODAY)
    load_landed(settings, run_id)
    return {f.file_name: f for f in summary.files}


def _rows(settings, table: str) -> int:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(f"select count(*) from raw.{table}").fetchone()[0]


def test_an_unexpected_failure_quarantines_that_file_and_the_run_goes_on(pf):
    broken = samples.build("orders_good", DAY0)
    good = samples.build("reviews_good", DAY0)
    sha = hashlib.sha256(broken.data).hexdigest()
    archive_path(pf, broken.partner, sha, broken.file_name).mkdir(parents=True)  # the archive cannot be written
    first = samples.drop(inbox_dir(pf), broken.partner, broken.file_name, broken.data)
    os.utime(first, (1, 1))  # processed first
    samples.drop(inbox_dir(pf), good.partner, good.file_name, good.data)

    outcomes = _run(pf, "run-1")

    held = outcomes[broken.file_name]
    assert held.outcome == "quarantined" and "internal error" in held.reason, held
    assert outcomes[good.file_name].outcome == "loaded"
    assert _rows(pf, "partner_product_reviews") == good.rows
    entry = Ledger(ledger_path(pf)).get(sha)
    assert entry.status == "quarantined" and "IsADirectoryError" in entry.reason
    folder = quarantine_root(pf) / held.quarantine_id
    assert (folder / broken.file_name).read_bytes() == broken.data, "the file is held, not lost"
    alerts = (pf.var_dir / "alerts.jsonl").read_text()
    assert broken.file_name in alerts
    assert not any(inbox_dir(pf).rglob("*.csv"))


def test_the_empty_file_policy_can_be_lifted_explicitly(pf, monkeypatch):
    loaded = samples.build("orders_good", DAY0)
    samples.drop(inbox_dir(pf), loaded.partner, loaded.file_name, loaded.data)
    _run(pf, "run-1")
    header_only = loaded.data.split(b"\r\n", 1)[0] + b"\r\n"

    samples.drop(inbox_dir(pf), loaded.partner, loaded.file_name, header_only)
    held = _run(pf, "run-2")[loaded.file_name]
    assert held.outcome == "quarantined"
    assert f"no data rows; day {DAY0} already holds {loaded.rows} rows" in held.reason
    assert _rows(pf, "partner_wholesale_orders") == loaded.rows

    monkeypatch.setenv("PARTNER_FILES_ALLOW_EMPTY_REPLACEMENT", "1")
    samples.drop(inbox_dir(pf), loaded.partner, loaded.file_name, header_only + b"\r\n")  # new bytes
    emptied = _run(pf, "run-3")[loaded.file_name]
    assert (emptied.outcome, emptied.rows_in) == ("loaded", 0)
    assert _rows(pf, "partner_wholesale_orders") == 0


def test_a_file_held_under_a_safe_name_can_be_released_and_loads(pf):
    sample = samples.build("orders_good", DAY0)
    long_name = f"wholesale_orders_{DAY0}_" + "r" * 220 + ".csv"
    folder = inbox_dir(pf) / sample.partner
    folder.mkdir(parents=True, exist_ok=True)
    (folder / long_name).write_bytes(sample.data)

    held = _run(pf, "run-1")[long_name]
    reason = json.loads((quarantine_root(pf) / held.quarantine_id / "reason.json").read_text())
    assert reason["file_error"]["code"] == "file_name" and "252 bytes long" in reason["file_error"]["message"]
    assert len(reason["held_as"]) < 100 and reason["held_as"].endswith(".csv")

    released = subprocess.run(
        [sys.executable, "-m", "ingestion.partner_files", "release", held.quarantine_id],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert released.returncode == 0, released.stderr
    loaded = _run(pf, "run-2")[reason["held_as"]]
    assert (loaded.outcome, loaded.rows_loaded, loaded.ds) == ("loaded", sample.rows, str(DAY0))

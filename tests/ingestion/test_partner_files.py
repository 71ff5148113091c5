"""Partner files dropped in the inbox: real files, a real ledger, real Parquet and a real DuckDB.

Each test drops files the way a partner would (written under a dot name, then renamed), runs the
same functions the `partner_files` DAG runs, and checks the result where it lands: the inbox, the
lake partitions and archive, the quarantine folders (reason.json, REPORT.md, the held bytes), the
ledger and the warehouse tables. Crashes are real process deaths (os._exit at a fault point in a
child process), and the last test runs the DAG itself through `airflow dags test`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from core.policies import MAX_BAD_ROW_RATIO
from ingestion.lake import partition_dir
from ingestion.partner_files import samples
from ingestion.partner_files.contracts import CONTRACTS, column_classification
from ingestion.partner_files.ledger import Ledger
from ingestion.partner_files.process import (
    archive_path,
    inbox_dir,
    ledger_path,
    load_landed,
    process_inbox,
)
from ingestion.partner_files.quarantine import quarantine_root
from tests.conftest import DAY0

REPO = Path(__file__).resolve().parents[2]
DAY = DAY0
TODAY = DAY0 + dt.timedelta(days=3)  # the processing day the tests pretend it is


@pytest.fixture
def pf(stack, monkeypatch):
    """The isolated stack with the partner-file knobs at their defaults and no alert webhook."""
    for name in ("PARTNER_FILES_MAX_BAD_ROW_RATIO", "PARTNER_FILES_FAULT", "ALERT_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PARTNER_FILES_SETTLE_SECONDS", "0")
    return stack


def drop(settings, kind: str, day: dt.date = DAY, file_name: str | None = None) -> samples.Sample:
    sample = samples.build(kind, day)
    samples.drop(inbox_dir(settings), sample.partner, file_name or sample.file_name, sample.data)
    return sample


def run(settings, run_id: str = "run-1"):
    summary = process_inbox(settings, run_id, settle_seconds=0, today=TODAY)
    for f in summary.files:
        assert f.rows_in == f.rows_loaded + f.rows_quarantined, f
    return summary


def only(summary):
    assert len(summary.files) == 1, summary.files
    return summary.files[0]


def warehouse(settings, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def inbox_files(settings) -> list[str]:
    return sorted(p.name for p in inbox_dir(settings).rglob("*") if p.is_file())


def reason_of(settings, outcome) -> dict:
    return json.loads((quarantine_root(settings) / outcome.quarantine_id / "reason.json").read_text())


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ingestion.partner_files", *args],
        cwd=REPO,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- good files --------------------------------------------------------------------------------


def test_good_cp1252_csv_loads_every_row_with_its_accents(pf):
    sample = drop(pf, "orders_good")
    with pytest.raises(UnicodeDecodeError):
        sample.data.decode("utf-8")  # really a Windows-1252 file, not UTF-8
    text = sample.data.decode("cp1252")
    sent_cities = {line.split(";")[6] for line in text.splitlines()[1:]}
    assert any(not c.isascii() for c in sent_cities)

    outcome = only(run(pf))
    load_landed(pf, "run-1")

    assert (outcome.outcome, outcome.rows_in, outcome.rows_loaded, outcome.ds) == ("loaded", 40, 40, str(DAY))
    assert inbox_files(pf) == []
    assert archive_path(pf, "wholesale_orders", outcome.sha256, sample.file_name).read_bytes() == sample.data
    rows = warehouse(pf, "select ship_to_city, unit_price_eur from raw.partner_wholesale_orders where _ds = ?", [DAY])
    assert len(rows) == 40
    assert {r[0] for r in rows} == sent_cities  # München, Besançon ... decoded, not mangled
    sent_prices = {line.split(";")[4] for line in text.splitlines()[1:]}
    assert {f"{r[1]:.2f}".replace(".", ",") for r in rows} == sent_prices  # decimal comma read right
    entry = Ledger(ledger_path(pf)).get(outcome.sha256)
    assert (entry.status, entry.encoding, entry.rows_loaded) == ("loaded", "cp1252", 40)
    landed = pq.read_table(
        next(partition_dir(pf.lake_raw_dir, "partner_files", "wholesale_orders", DAY).glob("*.parquet"))
    )
    assert landed.num_rows == 40 and set(landed.column("_file_sha256").to_pylist()) == {outcome.sha256}


def test_json_array_and_json_lines_both_load(pf):
    drop(pf, "reviews_array")
    drop(pf, "reviews_good", DAY + dt.timedelta(days=1))
    outcomes = {f.file_name: f for f in run(pf).files}
    load_landed(pf, "run-1")
    assert {f.outcome for f in outcomes.values()} == {"loaded"}
    assert warehouse(pf, "select _ds, count(*) from raw.partner_product_reviews group by 1 order by 1") == [
        (DAY, 12),
        (DAY + dt.timedelta(days=1), 30),
    ]


# --- exactly once ------------------------------------------------------------------------------


def test_the_same_bytes_dropped_again_are_a_duplicate_and_not_loaded_twice(pf):
    sample = drop(pf, "orders_good")
    first = only(run(pf, "run-1"))
    load_landed(pf, "run-1")
    samples.drop(inbox_dir(pf), sample.partner, "wholesale_orders_2026-03-02_resent.csv", sample.data)

    second = only(run(pf, "run-2"))
    load_landed(pf, "run-2")

    assert first.outcome == "loaded"
    assert second.outcome == "duplicate" and second.sha256 == first.sha256
    assert "already loaded" in second.reason
    assert inbox_files(pf) == []
    assert warehouse(pf, "select count(*), min(_run_id), max(_run_id) from raw.partner_wholesale_orders") == [
        (40, "run-1", "run-1")
    ]
    ledger = Ledger(ledger_path(pf))
    assert len(ledger.entries()) == 1
    assert [(r[2], r[5]) for r in ledger.receipts()] == [
        (sample.file_name, "processed"),
        ("wholesale_orders_2026-03-02_resent.csv", "duplicate"),
    ]
    mirrored = warehouse(pf, "select outcome, count(*) from ops.partner_file_receipts group by 1 order by 1")
    assert mirrored == [("duplicate", 1), ("processed", 1)]


def test_a_later_file_for_the_same_day_replaces_it(pf):
    drop(pf, "orders_partly_bad_under")
    first = only(run(pf, "run-1"))
    load_landed(pf, "run-1")
    fixed = drop(pf, "orders_good")
    second = only(run(pf, "run-2"))
    load_landed(pf, "run-2")

    assert (first.outcome, second.outcome) == ("loaded_partial", "loaded")
    rows = warehouse(pf, "select count(*), count(distinct _file_sha256) from raw.partner_wholesale_orders")
    assert rows == [(fixed.rows, 1)]
    ledger = Ledger(ledger_path(pf))
    assert ledger.get(first.sha256).status == "superseded"
    assert ledger.get(first.sha256).superseded_by == second.sha256
    listed = cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []  # the superseded file's held rows need no action


# --- file-level faults -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["orders_wrong_header", "orders_extra_column", "reviews_drift"])
def test_wrong_header_quarantines_the_whole_file_with_a_reason(pf, kind):
    sample = drop(pf, kind)
    outcome = only(run(pf))
    load_landed(pf, "run-1")

    assert (outcome.outcome, outcome.rows_loaded, outcome.rows_quarantined) == ("quarantined", 0, sample.rows)
    folder = quarantine_root(pf) / outcome.quarantine_id
    reason = json.loads((folder / "reason.json").read_text())
    assert reason["file_error"]["code"] == "header"
    assert reason["sha256"] == outcome.sha256 and reason["partner"] == sample.partner
    assert reason["decision"] == "quarantined"
    assert (folder / sample.file_name).read_bytes() == sample.data
    report = (folder / "REPORT.md").read_text()
    bad_name = {"orders_wrong_header": "qty", "orders_extra_column": "discount_pct", "reviews_drift": "stars"}[kind]
    assert bad_name in report and "release" in report
    assert not partition_dir(pf.lake_raw_dir, "partner_files", sample.partner, DAY).exists()
    assert inbox_files(pf) == []
    alerts = (pf.var_dir / "alerts.jsonl").read_text()
    assert sample.file_name in alerts


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("reviews_cp1252", "not utf-8: byte 0xe8"),  # reviews accept UTF-8 only
        ("orders_utf16", "control character U+0000"),  # orders accept cp1252, but this is UTF-16
    ],
)
def test_a_file_not_in_an_accepted_encoding_is_quarantined_not_guessed(pf, kind, problem):
    sample = drop(pf, kind)
    outcome = only(run(pf))
    reason = reason_of(pf, outcome)
    assert outcome.outcome == "quarantined"
    assert reason["file_error"]["code"] == "encoding" and problem in reason["file_error"]["message"]
    assert reason["encoding"] is None
    assert outcome.rows_quarantined == sample.rows


def _truncated_json_array(day: dt.date) -> samples.Sample:
    full = samples.build("reviews_array", day)
    cut = full.data.rstrip()[:-1] + b"\n"  # the closing bracket never arrived
    return samples.Sample(full.partner, full.file_name, cut, full.rows, expect="quarantined", fault="truncated")


@pytest.mark.parametrize("kind", ["orders_truncated", "orders_unbalanced_quote", "reviews_truncated", "json_array"])
def test_a_truncated_file_is_detected_and_held_whole(pf, kind):
    sample = _truncated_json_array(DAY) if kind == "json_array" else samples.build(kind, DAY)
    samples.drop(inbox_dir(pf), sample.partner, sample.file_name, sample.data)
    outcome = only(run(pf))
    reason = reason_of(pf, outcome)
    assert outcome.outcome == "quarantined"
    assert reason["file_error"]["code"] == "truncated", reason["file_error"]
    assert outcome.rows_loaded == 0
    if kind != "json_array":  # an unparseable array has no countable rows
        assert outcome.rows_in == sample.rows


# --- row-level faults and the policy ------------------------------------------------------------


def test_a_partly_bad_file_under_the_threshold_loads_good_rows_and_holds_the_bad_ones(pf):
    sample = drop(pf, "orders_partly_bad_under")
    outcome = only(run(pf))
    load_landed(pf, "run-1")

    n_bad = len(sample.bad_rows)
    assert (outcome.outcome, outcome.rows_loaded, outcome.rows_quarantined) == (
        "loaded_partial",
        sample.rows - n_bad,
        n_bad,
    )
    reason = reason_of(pf, outcome)
    assert sorted({e["row"] for e in reason["row_errors"]}) == list(sample.bad_rows)
    assert all(e["column"] and e["line"] == e["row"] + 1 for e in reason["row_errors"])
    assert reason["policy"] == {"max_bad_row_ratio": MAX_BAD_ROW_RATIO, "bad_row_ratio": n_bad / sample.rows}
    held = (quarantine_root(pf) / outcome.quarantine_id / "bad_rows.csv").read_bytes().decode("cp1252")
    sent = sample.data.decode("cp1252").splitlines()
    assert held.splitlines() == [sent[0]] + [sent[row] for row in sample.bad_rows]
    loaded_rows = {r[0] for r in warehouse(pf, "select _file_row from raw.partner_wholesale_orders")}
    assert loaded_rows == set(range(1, sample.rows + 1)) - set(sample.bad_rows)


def test_a_partly_bad_file_over_the_threshold_is_quarantined_whole(pf, monkeypatch):
    sample = drop(pf, "orders_partly_bad_over")
    outcome = only(run(pf, "run-1"))
    reason = reason_of(pf, outcome)
    assert (outcome.outcome, outcome.rows_loaded, outcome.rows_quarantined) == ("quarantined", 0, sample.rows)
    assert sorted({e["row"] for e in reason["row_errors"]}) == list(sample.bad_rows)
    assert reason["policy"]["bad_row_ratio"] > reason["policy"]["max_bad_row_ratio"]
    assert not partition_dir(pf.lake_raw_dir, "partner_files", "wholesale_orders", DAY).exists()

    # The threshold is configuration: at 20% the same content loads its good rows.
    monkeypatch.setenv("PARTNER_FILES_MAX_BAD_ROW_RATIO", "0.2")
    cli_release = cli("release", outcome.sha256[:12])
    assert cli_release.returncode == 0, cli_release.stderr
    again = only(run(pf, "run-2"))
    assert (again.outcome, again.rows_loaded) == ("loaded_partial", sample.rows - len(sample.bad_rows))


def test_json_lines_with_a_bad_rating_hold_that_row(pf):
    sample = drop(pf, "reviews_bad_rating")
    outcome = only(run(pf))
    load_landed(pf, "run-1")
    reason = reason_of(pf, outcome)
    assert (outcome.outcome, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded_partial", 29, 1)
    [error] = reason["row_errors"]
    assert (error["row"], error["line"], error["column"], error["code"], error["value"]) == (
        7,
        7,
        "rating",
        "range",
        "7",
    )
    assert warehouse(pf, "select count(*), max(rating), min(rating) from raw.partner_product_reviews") == [(29, 5, 1)]
    held = (quarantine_root(pf) / outcome.quarantine_id / "bad_rows.jsonl").read_text().splitlines()
    assert [json.loads(line)["rating"] for line in held] == [7]
    assert sample.rows == 30


def test_pii_values_never_reach_the_reports(pf, monkeypatch):
    monkeypatch.setenv("PARTNER_FILES_MAX_BAD_ROW_RATIO", "0.5")
    good = samples.build("reviews_good", DAY)
    lines = good.data.decode().splitlines()
    record = json.loads(lines[2])
    record["reviewer_email"] = "anna.schmidt-at-mail.example"  # malformed: a row error on a PII column
    lines[2] = json.dumps(record)
    samples.drop(inbox_dir(pf), good.partner, good.file_name, ("\n".join(lines) + "\n").encode())
    outcome = only(run(pf))
    folder = quarantine_root(pf) / outcome.quarantine_id
    [error] = reason_of(pf, outcome)["row_errors"]
    assert (error["row"], error["column"], error["code"]) == (3, "reviewer_email", "pattern")
    assert error["value"] == "<redacted email>"
    for report in ("reason.json", "REPORT.md"):
        assert "anna.schmidt-at-mail" not in (folder / report).read_text()
    classes = column_classification()["raw.partner_product_reviews"]
    assert classes["reviewer_email"] == {"classification": "pii", "pii_kind": "email"}


@pytest.mark.parametrize("kind", sorted(samples.KINDS))
def test_every_row_is_either_loaded_or_quarantined(pf, kind):
    """rows in = loaded + quarantined for every kind of file, and the counts match what was sent."""
    sample = drop(pf, kind)
    outcome = only(run(pf))
    load_landed(pf, "run-1")
    assert outcome.outcome == sample.expect
    assert outcome.rows_in == sample.rows
    assert outcome.rows_loaded + outcome.rows_quarantined == sample.rows
    assert outcome.rows_quarantined >= len(sample.bad_rows)
    entry = Ledger(ledger_path(pf)).get(outcome.sha256)
    assert (entry.rows_in, entry.rows_loaded, entry.rows_quarantined) == (
        outcome.rows_in,
        outcome.rows_loaded,
        outcome.rows_quarantined,
    )
    if outcome.rows_loaded:
        table = CONTRACTS[sample.partner].table
        assert warehouse(pf, f"select count(*) from raw.{table}") == [(outcome.rows_loaded,)]
    if outcome.rows_quarantined:
        counts = reason_of(pf, outcome)["counts"]
        assert counts["rows_in"] == counts["rows_loaded"] + counts["rows_quarantined"]


# --- release -----------------------------------------------------------------------------------


def test_release_after_fixing_loads_the_file(pf):
    sample = drop(pf, "orders_wrong_header")
    held = only(run(pf, "run-1"))
    listed = cli("list")
    assert listed.returncode == 0 and held.quarantine_id in listed.stdout and "qty" in listed.stdout

    # The engineer fixes the header in the quarantine folder and releases it.
    fixed_path = quarantine_root(pf) / held.quarantine_id / sample.file_name
    fixed_path.write_bytes(fixed_path.read_bytes().replace(b";qty;", b";quantity;", 1))
    released = cli("release", held.quarantine_id)
    assert released.returncode == 0, released.stderr
    assert inbox_files(pf) == [sample.file_name]
    assert "nothing held" in cli("list").stdout

    loaded = only(run(pf, "run-2"))
    load_landed(pf, "run-2")
    assert (loaded.outcome, loaded.rows_loaded) == ("loaded", sample.rows)
    assert warehouse(pf, "select count(*) from raw.partner_wholesale_orders where _ds = ?", [DAY]) == [(sample.rows,)]
    marker = json.loads((quarantine_root(pf) / held.quarantine_id / "RELEASED.json").read_text())
    assert marker["changed"] is True and marker["sha256_released"] == loaded.sha256
    assert Ledger(ledger_path(pf)).get(held.sha256).status == "released"
    assert cli("release", held.quarantine_id).returncode == 1  # nothing left to release
    unknown = cli("release", "wholesale_orders/2000-01-01/no-such-file")  # a typo is a bad argument
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and unknown.stderr.startswith("error: ")
    bad_day = cli("samples", "--day", "2026-13-01")
    assert bad_day.returncode == 2 and "'2026-13-01' is not a date (YYYY-MM-DD)" in bad_day.stderr


def test_a_misplaced_file_is_quarantined_and_released_to_the_right_partner(pf):
    good = samples.build("orders_good", DAY)
    samples.drop(inbox_dir(pf), "acme_corp", good.file_name, good.data)
    (inbox_dir(pf) / "wholesale_orders").mkdir(parents=True, exist_ok=True)
    in_progress = inbox_dir(pf) / "wholesale_orders" / ".upload.csv.part"
    in_progress.write_bytes(b"order_ref;")
    nested = inbox_dir(pf) / "wholesale_orders" / "extra"
    nested.mkdir()
    (nested / "notes.txt").write_text("not a delivery")
    outcomes = {f.file_name: f for f in run(pf, "run-1").files}
    held = outcomes[good.file_name]
    assert held.outcome == "quarantined" and reason_of(pf, held)["file_error"]["code"] == "unknown_partner"
    assert outcomes["extra"].outcome == "quarantined"  # a folder is not a delivery: moved aside whole
    assert (quarantine_root(pf) / outcomes["extra"].quarantine_id / "notes.txt").exists()
    assert in_progress.exists()  # a dot file is an upload in progress: left alone
    assert inbox_files(pf) == [in_progress.name]

    released = cli("release", held.quarantine_id, "--partner", "wholesale_orders")
    assert released.returncode == 0, released.stderr
    loaded = only(run(pf, "run-2"))
    assert (loaded.partner, loaded.outcome, loaded.rows_loaded) == ("wholesale_orders", "loaded", good.rows)


# --- crashes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "rerun_outcome"),
    [("after_archive", "loaded"), ("after_land", "loaded"), ("after_ledger", "cleared")],
)
def test_a_crash_mid_file_is_completed_by_the_next_run_without_duplicates(pf, fault, rerun_outcome):
    sample = drop(pf, "orders_good")
    crashed = cli("process", "--no-load", "--run-id", "doomed", env={**os.environ, "PARTNER_FILES_FAULT": fault})
    assert crashed.returncode == 137, crashed.stdout + crashed.stderr
    assert inbox_files(pf) == [sample.file_name]  # still there: the next run redoes it
    ledger = Ledger(ledger_path(pf))
    [entry] = ledger.entries()
    assert entry.status == ("landed" if fault == "after_ledger" else "processing")

    rerun = only(run(pf, "run-2"))
    load_landed(pf, "run-2")
    assert rerun.outcome == rerun_outcome
    assert inbox_files(pf) == []
    assert warehouse(pf, "select count(*), count(distinct _file_row) from raw.partner_wholesale_orders") == [(40, 40)]
    assert len(list(partition_dir(pf.lake_raw_dir, "partner_files", "wholesale_orders", DAY).glob("*.parquet"))) == 1
    assert len(list(archive_path(pf, "wholesale_orders", entry.sha256, "x.csv").parent.iterdir())) == 1
    [entry] = ledger.entries()
    assert (entry.status, entry.rows_loaded) == ("loaded", 40)
    assert run(pf, "run-3").files == []


def test_a_crash_between_warehouse_commit_and_ledger_reloads_the_same_days(pf):
    drop(pf, "orders_good")
    crashed = cli("process", "--run-id", "doomed", env={**os.environ, "PARTNER_FILES_FAULT": "after_load"})
    assert crashed.returncode == 137, crashed.stdout + crashed.stderr
    before = warehouse(pf, "select * exclude (_run_id, _loaded_at) from raw.partner_wholesale_orders order by all")
    [entry] = Ledger(ledger_path(pf)).entries()
    assert entry.status == "landed"  # the warehouse has the rows, the ledger does not know yet

    result = load_landed(pf, "run-2")
    after = warehouse(pf, "select * exclude (_run_id, _loaded_at) from raw.partner_wholesale_orders order by all")
    assert result.files == 1 and after == before and len(after) == 40
    assert Ledger(ledger_path(pf)).get(entry.sha256).status == "loaded"
    assert load_landed(pf, "run-3").files == 0


# --- contracts and samples ---------------------------------------------------------------------


def test_contracts_classify_every_column_and_samples_are_deterministic():
    for contract in CONTRACTS.values():
        for col in contract.columns:
            assert col.classification in ("public", "internal", "pii"), col
            assert (col.classification == "pii") == (col.pii_kind is not None), col
        assert set(contract.key) <= set(contract.column_names)
    assert set(column_classification()) == {"raw.partner_wholesale_orders", "raw.partner_product_reviews"}
    for kind in samples.KINDS:
        assert samples.build(kind, DAY).data == samples.build(kind, DAY).data
    assert samples.build("orders_good", DAY).data != samples.build("orders_good", DAY + dt.timedelta(days=1)).data


# --- the DAG -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_dag_picks_up_dropped_files_and_loads_them(pf, tmp_path):
    """`airflow dags test partner_files` with files waiting: sensor -> process -> load, for real."""
    for kind in ("orders_good", "reviews_bad_rating"):
        drop(pf, kind)
    home = tmp_path / "airflow"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW_CONN_PARTNER_INBOX": json.dumps({"conn_type": "fs", "extra": {"path": str(inbox_dir(pf))}}),
        "PYTHONPATH": str(REPO),
        "DO_NOT_TRACK": "1",
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    result = subprocess.run(
        [airflow, "dags", "test", "partner_files"], env=env, capture_output=True, text=True, timeout=300
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "state=success" in output, output[-4000:]
    assert inbox_files(pf) == []
    assert warehouse(pf, "select count(*) from raw.partner_wholesale_orders") == [(40,)]
    assert warehouse(pf, "select count(*) from raw.partner_product_reviews") == [(29,)]
    assert warehouse(pf, "select status, count(*) from ops.partner_file_ledger group by 1") == [("loaded", 2)]
    # the bad review rows were held: the Data health dashboard's table shows them after this run
    assert warehouse(pf, "select source, table_name, status from ops.quarantine") == [
        ("partner_files", "product_reviews", "held")
    ]

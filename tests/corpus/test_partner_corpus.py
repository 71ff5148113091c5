"""The partner-file bad-input corpus, processed in one run: every case gets its verdict, the run goes on.

The whole corpus (`partner_corpus.CASES`: encodings, empty and header-only files, truncation,
binary and oversized files, duplicates, hostile names and dates, CSV injection, broken and nested
JSON, links, FIFOs, sockets ...) is dropped into one inbox after a baseline run has loaded a few
days, then processed by one `process_inbox` call and loaded, for real (files, worker process,
ledger, Parquet, DuckDB). Each case is then checked on its own against that single result: its
outcome, the reason, rows in = loaded + quarantined, the ledger, the alert, and the warehouse rows
it left. Good files dropped after all the hostile ones must still be loaded in the same run.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from core.settings import Settings, get_settings
from ingestion.partner_files import samples
from ingestion.partner_files.inbox import INBOX_ROOT_PARTNER, display_name
from ingestion.partner_files.ledger import Ledger
from ingestion.partner_files.process import FileOutcome, inbox_dir, ledger_path, load_landed, process_inbox
from ingestion.partner_files.quarantine import quarantine_root
from tests.conftest import stack_environment
from tests.corpus.partner_corpus import (
    BASELINE,
    CASES,
    EMPTIED_ORDERS,
    EMPTIED_REVIEWS,
    MAX_BYTES,
    MAX_SECONDS,
    SAME_NAME,
    SECRET_MARKER,
    SENTINELS,
    TODAY,
    Case,
    day,
    materialize,
    secret_file,
)

RUN_TIMEOUT = 120.0  # the corpus run takes seconds; a blocked run (a FIFO opened) is cut off here


@dataclass
class CorpusRun:
    settings: Settings
    root: Path
    secret: Path
    paths: dict[str, Path]
    outcomes: dict[tuple[str, str], FileOutcome]
    baseline: dict[str, FileOutcome]
    seconds: float
    blocked: bool
    error: BaseException | None
    alerts: list[dict] = field(default_factory=list)
    wh_before: dict[tuple, int] = field(default_factory=dict)
    wh_after: dict[tuple, int] = field(default_factory=dict)

    def outcome(self, case: Case) -> FileOutcome:
        key = (case.partner or INBOX_ROOT_PARTNER, display_name(case.fs_name))
        assert self.error is None, f"the corpus run failed: {self.error!r}"
        assert key in self.outcomes, f"no outcome for {key}; the run reported {sorted(self.outcomes)}"
        return self.outcomes[key]

    def reason(self, outcome: FileOutcome) -> dict:
        assert outcome.quarantine_id, outcome
        return json.loads((quarantine_root(self.settings) / outcome.quarantine_id / "reason.json").read_text())


def _warehouse_rows(settings: Settings) -> dict[tuple, int]:
    """Rows per (table, day, file) in the raw partner tables."""
    out: dict[tuple, int] = {}
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        for table in ("partner_wholesale_orders", "partner_product_reviews"):
            rows = con.execute(f"select _ds, _file_sha256, count(*) from raw.{table} group by all").fetchall()
            out.update({(table, str(ds), sha): n for ds, sha, n in rows})
    return out


def _run_with_cutoff(
    settings: Settings, fifos: list[Path]
) -> tuple[list[FileOutcome], float, bool, BaseException | None]:
    """process_inbox in a thread: a run that blocks (on a FIFO) is reported, then released."""
    result: dict[str, object] = {}

    def target() -> None:
        try:
            result["summary"] = process_inbox(settings, "corpus", settle_seconds=0, today=TODAY)
        except BaseException as exc:  # reported by the tests, not raised in a thread
            result["error"] = exc

    began = time.monotonic()
    thread = threading.Thread(target=target, name="corpus-run", daemon=True)
    thread.start()
    thread.join(RUN_TIMEOUT)
    blocked = thread.is_alive()
    if blocked:  # open each FIFO for writing once, so a reader stuck on it gets EOF and the run ends
        for fifo in fifos:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        thread.join(RUN_TIMEOUT)
    seconds = time.monotonic() - began
    summary = result.get("summary")
    files = summary.files if summary is not None else []  # type: ignore[attr-defined]
    return files, seconds, blocked, result.get("error")  # type: ignore[return-value]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> CorpusRun:
    root = tmp_path_factory.mktemp("partner-corpus")
    variables = {"PARTNER_FILES_MAX_BYTES": str(MAX_BYTES), "PARTNER_FILES_MAX_SECONDS": str(MAX_SECONDS)}
    with stack_environment(root, "corpus-key", **variables):
        for name in (
            "PARTNER_FILES_MAX_BAD_ROW_RATIO",
            "PARTNER_FILES_FAULT",
            "PARTNER_FILES_ALLOW_EMPTY_REPLACEMENT",
            "PARTNER_FILES_MAX_NAME_BYTES",
            "PARTNER_FILES_MAX_JSON_DEPTH",
            "PARTNER_FILES_MAX_AGE_DAYS",
            "ALERT_WEBHOOK_URL",
        ):
            os.environ.pop(name, None)
        settings = get_settings()
        inbox = inbox_dir(settings)
        for partner, name, data in BASELINE:
            samples.drop(inbox, partner, name, data)
        baseline = process_inbox(settings, "baseline", settle_seconds=0, today=TODAY)
        load_landed(settings, "baseline")
        wh_before = _warehouse_rows(settings)

        secret = secret_file(root)
        paths: dict[str, Path] = {}
        oldest = time.time() - 100_000  # drop order = processing order: the hostile cases first
        for i, case in enumerate(CASES):
            paths[case.id] = materialize(case, inbox, secret)
            os.utime(paths[case.id], (oldest + i, oldest + i), follow_symlinks=False)
        for j, (partner, name, data) in enumerate(SENTINELS):
            path = samples.drop(inbox, partner, name, data)
            os.utime(path, (oldest + len(CASES) + j,) * 2)
        fifos = [paths[c.id] for c in CASES if c.special == "fifo"]
        files, seconds, blocked, error = _run_with_cutoff(settings, fifos)
        if error is None:
            load_landed(settings, "corpus")
        alerts_file = settings.var_dir / "alerts.jsonl"
        alerts = [json.loads(line) for line in alerts_file.read_text().splitlines()] if alerts_file.exists() else []
        return CorpusRun(
            settings=settings,
            root=root,
            secret=secret,
            paths=paths,
            outcomes={(f.partner, f.file_name): f for f in files},
            baseline={f.file_name: f for f in baseline.files},
            seconds=seconds,
            blocked=blocked,
            error=error,
            alerts=alerts,
            wh_before=wh_before,
            wh_after=_warehouse_rows(settings),
        )


def test_the_corpus_is_broad():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_case_gets_its_verdict(corpus: CorpusRun, case: Case):
    out = corpus.outcome(case)
    assert out.outcome == case.outcome, out
    assert out.rows_in == out.rows_loaded + out.rows_quarantined, out
    if case.rows_in is not None:
        assert out.rows_in == case.rows_in, out
    if case.rows_loaded is not None:
        assert out.rows_loaded == case.rows_loaded, out
    loaded_here = sum(n for (_, _, sha), n in corpus.wh_after.items() if sha == out.sha256)
    if case.outcome in ("loaded", "loaded_partial"):
        assert loaded_here == out.rows_loaded, "the warehouse holds exactly the rows loaded"
    elif case.outcome == "quarantined":
        assert loaded_here == 0, "nothing of a quarantined file reaches the warehouse"
    if case.outcome == "duplicate":
        assert case.reason and case.reason in (out.reason or ""), out
        return
    if case.special == "directory":
        assert out.quarantine_id and (quarantine_root(corpus.settings) / out.quarantine_id / "notes.csv").exists()
        return
    entry = Ledger(ledger_path(corpus.settings)).get(out.sha256)
    assert entry is not None and entry.status in ("loaded", "quarantined"), entry
    assert entry.status == ("quarantined" if case.outcome == "quarantined" else "loaded"), entry
    if case.outcome == "loaded":
        return
    reason = corpus.reason(out)
    assert reason["counts"]["rows_in"] == reason["counts"]["rows_loaded"] + reason["counts"]["rows_quarantined"]
    file_error = reason["file_error"]
    codes = {file_error["code"]} if file_error else {e["code"] for e in reason["row_errors"]}
    messages = " | ".join(
        [
            out.reason or "",
            *([file_error["message"]] if file_error else []),
            *(e["message"] for e in reason["row_errors"]),
        ]
    )
    if case.code is not None:
        assert case.code in codes, (codes, messages)
    for expected in ([case.reason] if case.reason else []) + list(case.notes.get("reasons", ())):
        assert expected in messages, messages
    if "codes" in case.notes:
        assert codes == case.notes["codes"], codes
    assert any(out.file_name in a["summary"] and a.get("quarantine_id") == out.quarantine_id for a in corpus.alerts), (
        "the alert names the file"
    )


def test_the_run_finishes_in_time_and_is_never_blocked(corpus: CorpusRun):
    assert corpus.error is None, repr(corpus.error)
    assert not corpus.blocked, "the run blocked (on the FIFO?) and had to be released"
    assert corpus.seconds < 60, corpus.seconds


def test_good_files_dropped_after_the_corpus_are_loaded_in_the_same_run(corpus: CorpusRun):
    for partner, name, data in SENTINELS:
        out = corpus.outcomes[(partner, name)]
        expected = data.count(b"\n") - (1 if partner == "wholesale_orders" else 0)
        assert (out.outcome, out.rows_loaded) == ("loaded", expected), out


def test_nothing_is_left_behind_in_the_inbox_or_processing_in_the_ledger(corpus: CorpusRun):
    inbox = inbox_dir(corpus.settings)
    left = [p for p in inbox.rglob("*") if not p.is_dir() or p.is_symlink()]
    assert left == [], left
    entries = Ledger(ledger_path(corpus.settings)).entries()
    assert [e.file_name for e in entries if e.status == "processing"] == []
    assert all(e.rows_in == e.rows_loaded + e.rows_quarantined for e in entries if e.rows_in is not None)


def test_a_file_without_rows_never_replaces_a_loaded_day(corpus: CorpusRun):
    for table, ds in (
        ("partner_wholesale_orders", day(EMPTIED_ORDERS)),
        ("partner_product_reviews", day(EMPTIED_REVIEWS)),
    ):
        before = {k: n for k, n in corpus.wh_before.items() if k[:2] == (table, str(ds))}
        after = {k: n for k, n in corpus.wh_after.items() if k[:2] == (table, str(ds))}
        assert before and after == before, (table, ds)


def test_the_same_name_with_new_content_replaces_the_day(corpus: CorpusRun):
    old = corpus.baseline[f"wholesale_orders_{day(SAME_NAME)}.csv"]
    assert Ledger(ledger_path(corpus.settings)).get(old.sha256).status == "superseded"
    rows = {k: n for k, n in corpus.wh_after.items() if k[:2] == ("partner_wholesale_orders", str(day(SAME_NAME)))}
    assert list(rows.values()) == [22] and old.sha256 not in {k[2] for k in rows}


def test_links_never_leak_what_they_point_at(corpus: CorpusRun):
    lake = corpus.settings.lake_dir
    leaked = [p for p in lake.rglob("*") if p.is_file() and SECRET_MARKER.encode() in p.read_bytes()]
    assert leaked == [], leaked
    assert SECRET_MARKER.encode() in corpus.secret.read_bytes(), "the target is left as it was"
    assert stat.S_IMODE(corpus.secret.stat().st_mode) == 0o600
    assert not os.path.lexists(corpus.paths["symlink_to_secret"])


def test_everything_written_to_the_lake_and_quarantine_is_private(corpus: CorpusRun):
    roots = [corpus.settings.lake_raw_dir / "partner_files", quarantine_root(corpus.settings)]
    loose = []
    for root in roots:
        for path in [root, *root.rglob("*")]:
            if path.is_symlink():
                continue
            mode = stat.S_IMODE(path.lstat().st_mode)
            if mode & 0o077:
                loose.append(f"{path.relative_to(corpus.root)} {mode:o}")
    assert loose == [], loose


def test_held_names_and_folders_are_bounded_and_safe(corpus: CorpusRun):
    root = quarantine_root(corpus.settings)
    for path in root.rglob("*"):
        assert len(os.fsencode(path.name)) <= 120, path.name
        assert path.resolve().is_relative_to(root.resolve()) or path.is_symlink(), path
    out = corpus.outcome(next(c for c in CASES if c.id == "over_long_name"))
    reason = corpus.reason(out)
    held = root / out.quarantine_id / reason["held_as"]
    assert held.read_bytes() == next(c for c in CASES if c.id == "over_long_name").data


def test_an_oversized_file_is_moved_to_quarantine_unread(corpus: CorpusRun):
    out = corpus.outcome(next(c for c in CASES if c.id == "oversized_orders"))
    reason = corpus.reason(out)
    held = quarantine_root(corpus.settings) / out.quarantine_id / reason["held_as"]
    assert held.stat().st_size == MAX_BYTES + 1
    assert reason["sha256_of"].startswith("the inbox entry")


def test_quotes_and_delimiters_inside_fields_load_as_sent(corpus: CorpusRun):
    case = next(c for c in CASES if c.id == "quotes_in_fields")
    with duckdb.connect(str(corpus.settings.warehouse_path), read_only=True) as con:
        cities = {r[0] for r in con.execute("select ship_to_city from raw.partner_wholesale_orders").fetchall()}
    assert case.notes["cities"] <= cities


def test_every_case_sends_its_own_bytes():
    """Only the duplicate cases may share content (the ledger would call the others duplicates too)."""
    seen: dict[bytes, str] = {data: f"baseline {name}" for _, name, data in BASELINE}
    for case in CASES:
        if case.data is None or case.outcome == "duplicate":
            continue
        assert case.data not in seen, f"{case.id} sends the same bytes as {seen[case.data]}"
        seen[case.data] = case.id

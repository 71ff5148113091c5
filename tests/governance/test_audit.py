"""The governance audit log proves its own integrity: `verify` (and `python -m governance audit verify`)
fails on an edited, deleted or reordered line, an edited or deleted last line, a truncated, emptied
or deleted file, a blank or garbled line, and a log rewritten together with its anchor file after
the warehouse anchored it; it prints "ok, N entries, head <hash>" when intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from core.settings import Settings
from governance import access_log, audit

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def logged(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A log of four entries (Airflow and Superset absent: the access log holds only these)."""
    for name in ("AIRFLOW_ADMIN_USER", "AIRFLOW_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SUPERSET_METADATA_URI", f"sqlite:///{stack.data_dir / 'no-superset.db'}")
    monkeypatch.setenv("GOVERNANCE_ACTOR", "dpo@shop.example")
    for number in range(4):
        audit.record(stack, "dsr_export", f"dsr-export-{number}", "completed", details={"n": number})
    return stack


def _lines(settings: Settings) -> list[str]:
    return audit.audit_log_path(settings).read_text().splitlines()


def _write(settings: Settings, lines: list[str]) -> None:
    audit.audit_log_path(settings).write_text("".join(line + "\n" for line in lines))


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "governance", *args],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )


def test_an_intact_log_verifies_and_says_so(logged: Settings) -> None:
    result = audit.verify(logged)
    head = hashlib.sha256(_lines(logged)[-1].encode()).hexdigest()
    assert (result.problems, result.entries, result.head) == ([], 4, head)
    out = _cli(logged, "audit", "verify")
    assert (out.returncode, out.stdout.strip()) == (0, f"ok, 4 entries, head {head}")


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (lambda ls: ls[:-1], "the log has 3 lines, its anchor says 4"),
        (lambda ls: [*ls[:-1], ls[-1].replace("completed", "failed")], "the last line is not the anchored one"),
        (lambda ls: [ls[0], *ls[2:]], "line 2: the chain is broken"),
        (lambda ls: [ls[1], ls[0], *ls[2:]], "line 1: the chain is broken"),
        (lambda ls: [*ls[:2], "", *ls[2:]], "line 3: blank"),
        (lambda ls: [*ls[:2], ls[2][:40], ls[3]], "line 3: not an audit entry"),
        (lambda ls: [], "the log has 0 lines, its anchor says 4"),
    ],
    ids=["last-deleted", "last-edited", "middle-deleted", "reordered", "blank-line", "garbled", "emptied"],
)
def test_every_kind_of_tampering_fails(logged: Settings, tamper, problem: str) -> None:
    _write(logged, tamper(_lines(logged)))
    result = audit.verify(logged)
    assert any(problem in p for p in result.problems), result.problems
    out = _cli(logged, "audit", "verify")
    assert out.returncode == 1 and problem in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_a_missing_log_or_anchor_fails(logged: Settings) -> None:
    audit.anchor_path(logged).unlink()
    anchor = audit.anchor_path(logged)
    assert audit.verify(logged).problems == [f"{anchor}: the anchor is missing (written on every append)"]
    audit.audit_log_path(logged).unlink()
    assert audit.verify(logged).problems == [f"{audit.audit_log_path(logged)}: the audit log is missing"]
    out = _cli(logged, "audit", "verify")
    assert out.returncode == 1 and "the audit log is missing" in out.stderr


def test_a_log_rewritten_with_its_anchor_is_caught_by_the_warehouse_anchor(logged: Settings) -> None:
    access_log.collect(logged)  # the daily collection anchors the log in the warehouse
    assert access_log.warehouse_anchors(logged) == [(4, audit.verify(logged).head)]
    # Whoever can write the folder drops the last entry and forges a matching anchor file ...
    lines = _lines(logged)[:-1]
    _write(logged, lines)
    head = hashlib.sha256(lines[-1].encode()).hexdigest()
    audit.anchor_path(logged).write_text(json.dumps({"entries": 3, "head": head}))
    assert audit.verify(logged).ok, "the file and its anchor agree"
    # ... but the log only ever grows, and the warehouse saw 4 entries.
    out = _cli(logged, "audit", "verify")
    assert out.returncode == 1 and "but had 4 when last anchored in the warehouse" in out.stderr
    with pytest.raises(access_log.AuditLogBroken, match="had 4 when last anchored"):
        access_log.collect(logged)
    with duckdb.connect(str(logged.warehouse_path), read_only=True) as con:
        assert con.execute("select count(*) from ops.access_log").fetchone()[0] == 4, "the earlier copy stays"
        assert con.execute("select entries from ops.audit_anchors").fetchall() == [(4,)], "a broken log is not anchored"


def test_the_cli_reads_the_stacks_env_file_and_fails_in_one_line(
    stack: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """`python -m governance` needs no exported settings; a missing one is a sentence, not a traceback."""
    from core import envfile

    monkeypatch.delenv("PII_HASH_KEY")
    env_file = tmp_path / "stack.env"
    monkeypatch.setattr(envfile, "ENV_FILE", env_file)
    from governance.__main__ import main

    # No .env and no key in the environment: one line that says what to do.
    assert main(["dsr", "export", "--customer-id", "42"]) == 1
    assert capsys.readouterr().err == (
        "error: PII_HASH_KEY is not set: it keys the subject hashes (`make env` writes it to .env)\n"
    )
    assert audit.verify(stack).problems[0].endswith("the audit log is missing"), "nothing was recorded"
    # With the stack's .env (as `make run` writes it), the key comes from there.
    env_file.write_text("PII_HASH_KEY=from-the-env-file\n")
    # not found in an empty stack (a bad argument: one line, exit 2), not a missing key
    assert main(["dsr", "export", "--customer-id", "42"]) == 2
    assert capsys.readouterr().err.startswith("error: no data held for this subject")
    assert audit.entries(stack)[-1].outcome == "not_found"


def test_the_cli_refuses_a_placeholder_in_the_env_file(
    stack: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from core import envfile

    monkeypatch.delenv("PII_HASH_KEY")
    monkeypatch.setattr(envfile, "ENV_FILE", tmp_path / "stack.env")
    envfile.ENV_FILE.write_text("PII_HASH_KEY=<generated>\n")
    from governance.__main__ import main

    with pytest.raises(SystemExit) as stopped:
        main(["dsr", "export", "--customer-id", "42"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "PII_HASH_KEY" in err and len(err.strip().splitlines()) == 1

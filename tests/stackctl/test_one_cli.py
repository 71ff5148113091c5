"""One command line: `python -m stackctl <command>` for the stack, `python -m stackctl <area> <command>`
for each package's own commands; `--help` at every level; a bad argument is one line, exit 2."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackctl.__main__ import AREAS, main, one_line_usage_errors
from tests.conftest import STACK_PATH_VARIABLES

REPO = Path(__file__).resolve().parents[2]

STACK_COMMANDS = ["env", "simulate", "pipeline", "dbt-parse", "dbt", "run", "up", "airflow-init", "stop", "status"]
# Each area's commands, and the commands below those, as its --help names them.
AREA_COMMANDS = {
    "quality": {
        "gate1": [],
        "gate2": [],
        "quarantine": ["list", "show", "patch", "release", "dismiss"],
        "freshness": [],
        "sync": [],
        "docs": [],
    },
    "partner-files": {name: [] for name in ("list", "process", "release", "dismiss", "ledger", "samples")},
    "governance": {
        "dsr": ["export", "erase", "reapply"],
        "check": [],
        "catalog": ["check", "stale"],
        "access-log": ["collect"],
        "audit": ["verify"],
    },
    "ml": {"daily": [], "status": []},
    "superset": {name: [] for name in ("up", "down", "init", "start", "stop", "status", "import", "export", "access")},
    "bench": {},  # options only
    "dbt-portable": {"copy-raw": []},
    "spark": {name: [] for name in ("up", "down", "status", "register")},
}


def test_every_area_is_tested_here():
    assert set(AREA_COMMANDS) == set(AREAS)


def _help(capsys: pytest.CaptureFixture, *argv: str) -> str:
    """The help text of `python -m stackctl <argv> --help`, run in this process (argparse exits 0)."""
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0, (argv, out)
    return out


def test_top_level_help_lists_the_stack_commands_and_the_areas(capsys):
    text = _help(capsys)
    assert all(name in text for name in STACK_COMMANDS), text
    assert all(f"  {name}  " in text for name in AREAS), text
    assert "==SUPPRESS==" not in text


@pytest.mark.parametrize("command", STACK_COMMANDS)
def test_every_stack_command_has_help(capsys, command):
    assert f"python -m stackctl {command}" in _help(capsys, command)


@pytest.mark.parametrize("area", sorted(AREA_COMMANDS))
def test_help_at_every_level_of_every_area(capsys, area):
    text = _help(capsys, area)
    assert all(command in text for command in AREA_COMMANDS[area]), text
    for command, actions in AREA_COMMANDS[area].items():
        text = _help(capsys, area, command)
        assert all(action in text for action in actions), (command, text)
        for action in actions:
            _help(capsys, area, command, action)
    if area == "bench":
        assert "--scales" in text


def test_help_loads_no_area(tmp_path):
    """`python -m stackctl --help` stays fast: no area's module (nor pandas) is imported for it."""
    probe = (
        "import sys\n"
        "from stackctl.__main__ import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('quality', 'ingestion', 'governance', 'ml', 'bench', 'superset', 'pandas', 'duckdb')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "[]", result.stderr


def _isolated_env(tmp_path: Path) -> dict[str, str]:
    """The caller's environment with every stack path in tmp_path and a generated .env there."""
    from core.envfile import ensure_env_file

    env_file = tmp_path / ".env"
    ensure_env_file(env_file)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "SUPERSET", "PII_", "STACK_", "DEMO_")) and k not in STACK_PATH_VARIABLES
    }
    env.update(STACK_DATA_DIR=str(tmp_path), STACK_VAR_DIR=str(tmp_path / "var"), STACK_ENV_FILE=str(env_file))
    return env


def _stackctl(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stackctl", *argv],
        cwd=REPO,
        env=_isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert all(word in lines[0] for word in words), lines[0]


BAD_ARGUMENTS = [
    (("pipeline", "--from", "2026-02-30", "--to", "2026-03-01"), ("--from", "'2026-02-30' is not a date")),
    (("simulate", "--end", "yesterday"), ("--end", "'yesterday' is not a date")),
    (("pipeline", "--from", "2026-03-02", "--to", "2026-03-01"), ("is after --to",)),
    (("run", "--days", "0"), ("--days",)),
    (("partner-files", "samples", "--day", "2026-13-01"), ("--day", "2026-13-01")),
    (("governance", "dsr", "export", "--customer-id", "forty-two"), ("--customer-id", "'forty-two'")),
    (("governance", "catalog", "stale", "--days", "-3"), ("--days",)),
    (("bench", "--scales", "1m,lots"), ("--scales", "'lots'")),
    (("bench", "--pandas-rss-cap-gib", "inf"), ("--pandas-rss-cap-gib", "finite")),
    (("superset", "restart"), ("invalid choice: 'restart'",)),
    (("quality", "quarantine", "drop", "x"), ("invalid choice: 'drop'",)),
    (("nonsense",), ("invalid choice: 'nonsense'", "quality")),
]


@pytest.mark.parametrize(("argv", "words"), BAD_ARGUMENTS, ids=[" ".join(argv) for argv, _ in BAD_ARGUMENTS])
def test_a_bad_argument_is_one_line_and_exit_2(tmp_path, argv, words):
    _one_line_error(_stackctl(tmp_path, *argv), *words)


def test_an_unknown_quarantine_id_is_one_line_and_exit_2(tmp_path):
    _one_line_error(_stackctl(tmp_path, "quality", "quarantine", "show", "no-such-batch"), "'no-such-batch'")


def test_an_unknown_data_subject_is_one_line_and_exit_2(tmp_path):
    result = _stackctl(tmp_path, "governance", "dsr", "export", "--customer-id", "999999")
    _one_line_error(result, "not found")


def test_an_area_command_runs_through_the_one_cli(tmp_path):
    result = _stackctl(tmp_path, "quality", "quarantine", "list")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "nothing held in quarantine"


def test_the_older_entry_points_still_run(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "quality", "quarantine", "list"],
        cwd=REPO,
        env=_isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "nothing held in quarantine"), result.stderr[-2000:]


def test_superset_provision_names_the_new_command_for_a_moved_action(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "superset.provision", "up"],
        cwd=REPO,
        env=_isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "python -m stackctl superset up" in result.stderr, result.stderr


def test_one_line_usage_errors_are_only_for_the_one_cli():
    original = argparse.ArgumentParser.error
    parser = argparse.ArgumentParser(prog="probe")
    with one_line_usage_errors(), pytest.raises(SystemExit):
        parser.error("inside")
    assert argparse.ArgumentParser.error is original

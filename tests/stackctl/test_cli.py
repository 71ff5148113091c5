"""The stack's commands fail with one line saying what to do, not a stack trace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import restored_environ

REPO = Path(__file__).resolve().parents[2]


def stackctl(tmp_path: Path, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SUPERSET", "PII_"))}
    env.update({"STACK_DATA_DIR": str(tmp_path), "STACK_VAR_DIR": str(tmp_path / "var"), **(env_extra or {})})
    return subprocess.run(
        [sys.executable, "-m", "stackctl", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_missing_env_file_says_how_to_create_it(tmp_path, monkeypatch):
    from core import envfile

    for name in envfile.REQUIRED:
        monkeypatch.delenv(name, raising=False)
    missing = tmp_path / "no.env"
    monkeypatch.setattr(envfile, "ENV_FILE", missing)
    try:
        envfile.load_env(missing)
    except envfile.EnvFileError as exc:
        assert "make run" in str(exc)
    else:
        raise AssertionError("load_env accepted a missing .env")


def test_env_file_is_generated_with_random_secrets_and_completed_not_overwritten(tmp_path):
    from core.envfile import REQUIRED, ensure_env_file, parse_env

    path = tmp_path / ".env"
    assert set(ensure_env_file(path)) == set(REQUIRED)
    first = parse_env(path.read_text())
    assert oct(path.stat().st_mode)[-3:] == "600"
    assert "admin" not in first["AIRFLOW_ADMIN_PASSWORD"] and len(first["SUPERSET_ADMIN_PASSWORD"]) >= 20
    other = tmp_path / "other.env"
    ensure_env_file(other)
    assert parse_env(other.read_text())["SUPERSET_SECRET_KEY"] != first["SUPERSET_SECRET_KEY"]
    # Removing one line regenerates only that one.
    path.write_text("\n".join(line for line in path.read_text().splitlines() if "PII_HASH_KEY" not in line))
    assert ensure_env_file(path) == ["PII_HASH_KEY"]
    again = parse_env(path.read_text())
    assert again["AIRFLOW_ADMIN_PASSWORD"] == first["AIRFLOW_ADMIN_PASSWORD"]


def test_pipeline_on_an_empty_app_db_is_one_clear_line(tmp_path):
    import sqlite3

    from core.envfile import ensure_env_file, parse_env

    env_file = tmp_path / ".env"
    ensure_env_file(env_file)
    db = tmp_path / "empty.sqlite"
    sqlite3.connect(db).close()
    result = stackctl(
        tmp_path,
        "pipeline",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-01",
        env_extra={**parse_env(env_file.read_text()), "APP_DB_URL": f"sqlite:///{db}"},
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert "make simulate" in result.stderr


def test_a_copied_env_example_never_starts_the_stack_with_public_secrets(tmp_path, monkeypatch):
    """`cp .env.example .env` is a common habit: its placeholders must be regenerated, never used."""
    from core.envfile import SECRETS, EnvFileError, ensure_env_file, load_env, parse_env

    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    example_text = (REPO / ".env.example").read_text()
    example = parse_env(example_text)
    path = tmp_path / ".env"
    path.write_text(example_text)
    # Before `make env` completes it, the copied file is refused, naming the placeholders.
    try:
        load_env(path, required=False)
    except EnvFileError as exc:
        assert "AIRFLOW_API_SECRET" in str(exc) and "make env" in str(exc)
    else:
        raise AssertionError("load_env accepted an .env holding the example's placeholders")
    regenerated = ensure_env_file(path)
    assert set(regenerated) == set(SECRETS)
    values = parse_env(path.read_text())
    for name in SECRETS:
        assert values[name] != example[name] and "<" not in values[name] and "#" not in values[name], name
        assert len(values[name]) >= 20, name
    # The example's login names and the user's own settings survive untouched.
    assert values["SUPERSET_EXECUTIVE_USER"] == "executive"
    assert oct(path.stat().st_mode)[-3:] == "600"
    assert ensure_env_file(path) == []


def test_env_values_are_read_as_a_shell_reads_them(tmp_path, monkeypatch):
    from core.envfile import load_env

    monkeypatch.delenv("SUPERSET_EXECUTIVE_USER", raising=False)
    monkeypatch.delenv("DEMO_DAYS", raising=False)
    path = tmp_path / ".env"
    path.write_text(
        "SUPERSET_EXECUTIVE_USER=boss   # who reads the dashboards\n"
        "export DEMO_DAYS=12\n"
        "PII_HASH_KEY='a key with # inside'\n"
    )
    monkeypatch.delenv("PII_HASH_KEY", raising=False)
    load_env(path, required=False)
    assert os.environ["SUPERSET_EXECUTIVE_USER"] == "boss"
    assert os.environ["DEMO_DAYS"] == "12"
    assert os.environ["PII_HASH_KEY"] == "a key with # inside"


def test_personal_data_files_are_created_private(tmp_path):
    """App DB, lake (customer partitions), warehouse, serving file: 0600/0700 even under umask 022."""
    from core.envfile import ensure_env_file, parse_env
    from core.private_files import readable_by_others

    env_file = tmp_path / ".env"
    ensure_env_file(env_file)
    data = tmp_path / "data"
    env = {**parse_env(env_file.read_text()), "DEMO_DAYS": "2"}
    old = os.umask(0o022)  # what most shells have: without the fix, files come out 0644
    try:
        for args in (("simulate", "--end", "2026-03-03"), ("pipeline", "--from", "2026-03-02", "--to", "2026-03-03")):
            result = stackctl(data, *args, env_extra=env)
            assert result.returncode == 0, result.stderr[-3000:]
    finally:
        os.umask(old)
    written = [data / "appdb", data / "lake", data / "warehouse", data / "var"]
    assert all(folder.is_dir() for folder in written)
    assert list((data / "lake" / "raw" / "shop" / "customers").rglob("*.parquet"))
    assert [p for folder in written for p in readable_by_others(folder)] == []


# Every command the README tells a user to type, through the one CLI and the older entry points:
# each must read the stack's .env by itself.
DOCUMENTED_COMMANDS = [
    ("stackctl", "status"),
    ("stackctl", "quality", "quarantine", "list"),
    ("stackctl", "ml", "status"),
    ("stackctl", "governance", "audit", "verify"),
    ("stackctl", "governance", "catalog", "restore", "2027-01-05/fct_daily_revenue"),
    ("stackctl", "partner-files", "list"),
    ("stackctl", "superset", "status"),
    ("stackctl", "dbt-portable", "copy-raw"),
    ("quality", "quarantine", "list"),
    ("ml", "status"),
    ("governance", "audit", "verify"),
    ("ingestion.partner_files", "list"),
    ("superset.provision", "export"),
    ("stackctl.dbt_portable", "copy-raw"),
]


@pytest.mark.parametrize("command", DOCUMENTED_COMMANDS, ids=lambda c: " ".join(c))
def test_every_documented_command_reads_the_env_file_itself(tmp_path, command):
    """Proof that a command loaded .env: a placeholder secret in it stops the command with one line."""
    env_file = tmp_path / ".env"
    env_file.write_text("PII_HASH_KEY=<generated>\nSUPERSET_SECRET_KEY=\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SUPERSET", "PII_"))}
    env.update(
        {"STACK_DATA_DIR": str(tmp_path), "STACK_VAR_DIR": str(tmp_path / "var"), "STACK_ENV_FILE": str(env_file)}
    )
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "PII_HASH_KEY" in result.stderr and "make env" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_a_placeholder_secret_in_the_environment_is_refused_too(tmp_path, monkeypatch):
    """Containers get .env through the environment (compose's env_file): a copied example fails there too."""
    from core.envfile import EnvFileError, load_env

    monkeypatch.setenv("SUPERSET_SECRET_KEY", "<generated>")
    with pytest.raises(EnvFileError, match="SUPERSET_SECRET_KEY"):
        load_env(tmp_path / "absent.env", required=False)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AIRFLOW_PORT", "abc"), ("SUPERSET_PORT", "70000"), ("DUCKDB_MEMORY_LIMIT", "lots"), ("EXTRACT_WORKERS", "0")],
)
def test_a_value_the_stack_cannot_use_is_one_line_naming_it(tmp_path, variable, value):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SUPERSET", "DUCKDB", "EXTRACT"))}
    env.update({"STACK_DATA_DIR": str(tmp_path), "STACK_VAR_DIR": str(tmp_path / "var"), variable: value})
    env["STACK_ENV_FILE"] = str(tmp_path / "absent.env")
    for command in (("stackctl", "status"), ("stackctl", "quality", "quarantine", "list"), ("ml", "status")):
        result = subprocess.run(
            [sys.executable, "-m", *command], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 2, (command, result.stdout[-2000:], result.stderr[-2000:])
        assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr[-2000:]
        assert variable in result.stderr and repr(value) in result.stderr and "Traceback" not in result.stderr


def test_settings_take_the_values_people_write():
    from core.settings import SettingError, get_settings

    with restored_environ():
        os.environ.update({"AIRFLOW_PORT": " 8090 ", "DUCKDB_MEMORY_LIMIT": "512MiB", "DUCKDB_THREADS": "4"})
        settings = get_settings()
        assert (settings.airflow_port, settings.duckdb_memory_limit, settings.duckdb_threads) == (8090, "512MiB", 4)
        os.environ["AIRFLOW_PORT"] = "\uff18\uff10\uff18\uff10"  # full-width digits: int() takes them, a port must not
        with pytest.raises(SettingError, match="AIRFLOW_PORT"):
            get_settings()


def test_the_marts_engine_is_duckdb_or_spark():
    from core.settings import SettingError, get_settings

    with restored_environ():
        os.environ.pop("MARTS_ENGINE", None)
        assert get_settings().marts_engine == "duckdb"
        os.environ["MARTS_ENGINE"] = " Spark "
        assert get_settings().marts_engine == "spark"
        os.environ["MARTS_ENGINE"] = "snowflake"
        with pytest.raises(SettingError, match="MARTS_ENGINE='snowflake'"):
            get_settings()

"""`core.duckdb_connect`: every DuckDB session of the stack carries the limits of its settings."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time

import duckdb
import pytest

from core.duckdb_connect import connect_file, connect_memory, spill_folder
from core.settings import SettingError, get_settings


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("DUCKDB_MAX_TEMP_SIZE", "2GB")
    # Values no DuckDB default would produce, so the assertions see what was passed.
    return dataclasses.replace(
        get_settings(),
        warehouse_path=tmp_path / "wh" / "warehouse.duckdb",
        duckdb_memory_limit="300MB",
        duckdb_threads=3,
    )


def _limits(con: duckdb.DuckDBPyConnection) -> tuple:
    return con.execute(
        "select current_setting('memory_limit'), current_setting('threads'), "
        "current_setting('max_temp_directory_size'), current_setting('temp_directory')"
    ).fetchone()


def test_the_warehouse_opens_with_the_settings_limits_and_its_spill_folder(settings):
    with connect_file(settings) as con:
        memory, threads, spill_cap, temp = _limits(con)
    assert (memory, threads, spill_cap) == ("286.1 MiB", 3, "1.8 GiB")
    assert temp == str(settings.duckdb_temp_dir) and settings.duckdb_temp_dir.is_dir()
    assert settings.warehouse_path.exists()


def test_another_file_spills_beside_itself_and_may_be_read_only(settings, tmp_path):
    copy = tmp_path / "copies" / "serving.duckdb"
    copy.parent.mkdir()
    duckdb.connect(str(copy)).close()
    with connect_file(settings, copy, read_only=True) as con:
        memory, threads, _, temp = _limits(con)
        with pytest.raises(duckdb.InvalidInputException, match="read-only"):
            con.execute("create table t (i int)")
    assert (memory, threads) == ("286.1 MiB", 3)
    assert temp == str(spill_folder(settings, copy)) == str(copy.parent / ".duckdb_tmp")
    assert not settings.warehouse_path.exists()  # the warehouse was not touched


def test_an_in_memory_session_has_the_limits_and_spills_only_where_told(settings, tmp_path):
    with connect_memory(settings) as con:
        assert _limits(con)[:2] == ("286.1 MiB", 3)
    with connect_memory(settings, spill_dir=tmp_path / "spill") as con:
        assert _limits(con)[1:] == (3, "1.8 GiB", str(tmp_path / "spill"))
    assert (tmp_path / "spill").is_dir()


def test_the_spill_cap_defaults_to_ten_gigabytes_and_refuses_a_non_size(monkeypatch):
    monkeypatch.delenv("DUCKDB_MAX_TEMP_SIZE", raising=False)
    assert get_settings().duckdb_max_temp_size == "10GB"
    monkeypatch.setenv("DUCKDB_MAX_TEMP_SIZE", " 5GB ")
    assert get_settings().duckdb_max_temp_size == "5GB"
    monkeypatch.setenv("DUCKDB_MAX_TEMP_SIZE", "lots")
    with pytest.raises(SettingError, match="DUCKDB_MAX_TEMP_SIZE='lots' is not a size"):
        get_settings()


def test_a_writer_waits_for_the_lock_only_when_asked(settings):
    settings.warehouse_path.parent.mkdir(parents=True)
    holder = subprocess.Popen(  # another process holds the write lock for a moment
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "time.sleep(1.5); con.close()",
            str(settings.warehouse_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(duckdb.IOException, match="lock"):
            connect_file(settings)
        began = time.monotonic()
        with connect_file(settings, wait_seconds=30) as con:
            assert con.execute("select 1").fetchone() == (1,)
        assert time.monotonic() - began < 30
    finally:
        holder.kill()
        holder.wait()


def test_a_runaway_spill_fails_at_once_naming_the_cap(tmp_path, monkeypatch):
    """A query needing more than memory + the spill cap fails with DuckDB's message, not a full disk."""
    monkeypatch.setenv("DUCKDB_MAX_TEMP_SIZE", "1MB")
    settings = dataclasses.replace(get_settings(), duckdb_memory_limit="30MB", duckdb_threads=1)
    con = connect_file(settings, tmp_path / "warehouse.duckdb")
    try:
        with pytest.raises(duckdb.OutOfMemoryException, match="max_temp_directory_size"):
            # sorting ~200 MB of strings needs far more than 30 MB of memory + 1 MB of disk
            con.execute("create table t as select range i, md5(range::varchar) s from range(3000000) order by s")
    finally:
        con.close()


def test_the_default_cap_reaches_duckdb_as_ten_gigabytes(tmp_path, monkeypatch):
    monkeypatch.delenv("DUCKDB_MAX_TEMP_SIZE", raising=False)
    with connect_file(get_settings(), tmp_path / "warehouse.duckdb") as con:
        assert con.execute("select current_setting('max_temp_directory_size')").fetchone()[0] == "9.3 GiB"

"""A runaway DuckDB spill fails at once with a clear message instead of filling the disk."""

from __future__ import annotations

import dataclasses

import duckdb
import pytest

from core.duckdb_connect import connect_file
from core.settings import get_settings


def test_the_warehouse_connection_caps_its_spill_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("DUCKDB_MAX_TEMP_SIZE", "1MB")
    settings = dataclasses.replace(get_settings(), duckdb_memory_limit="30MB", duckdb_threads=1)
    con = connect_file(settings, tmp_path / "warehouse.duckdb")
    try:
        with pytest.raises(duckdb.OutOfMemoryException, match="max_temp_directory_size"):
            # sorting ~200 MB of strings needs far more than 30 MB of memory + 1 MB of disk
            con.execute("create table t as select range i, md5(range::varchar) s from range(3000000) order by s")
    finally:
        con.close()


def test_the_default_cap_is_ten_gigabytes(tmp_path, monkeypatch):
    monkeypatch.delenv("DUCKDB_MAX_TEMP_SIZE", raising=False)
    with connect_file(get_settings(), tmp_path / "warehouse.duckdb") as con:
        assert con.execute("select current_setting('max_temp_directory_size')").fetchone()[0] == "9.3 GiB"

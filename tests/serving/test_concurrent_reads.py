"""Write-audit-publish under load: readers querying serving.duckdb while publish swaps it, again and again.

Readers behave like Superset's duckdb-engine: each query opens the file read-only (external
access off), runs one statement, closes. Every statement reads the publication's run id, the
fingerprint recorded at publish time, the table's actual row hash and the KPI totals together, so
a result mixing two publications would show up as a run id whose totals or hash do not match.

Two settings:
- separate processes (several gunicorn workers, or Superset next to the pipeline): every query
  sees the file in place when it opened it, old or new, never a mix, never an error;
- threads of one process: DuckDB caches the database instance per path inside a process, so while
  any connection of the process is open, a new connection gets the same (possibly pre-swap) file.
  Results stay consistent but can be stale until the process's connections are all closed; the
  tests pin that down (see serving/README.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from core.settings import get_settings
from serving.publish import publication, publish
from tests.serving.conftest import DAYS, revenue_warehouse

# The stack's DuckDB limits for the sessions under test; the files they open are the tests' own.
SETTINGS = get_settings()

PUBLICATIONS = 15
READER_PROCESSES = 3
READER_THREADS = 4

# One statement: the publication's identity and the data it names, read in one snapshot.
QUERY = """
select p.run_id, p.marts_fingerprint, t.fingerprint as recorded_hash,
       (select bit_xor(hash(f))::varchar from marts.fct_daily_revenue f) as actual_hash,
       (select sum(net_revenue_eur) from marts.fct_daily_revenue)::double as net_total,
       (select count(*) from marts.fct_daily_revenue) as days
from meta.publication p, meta.published_tables t
where t.schema_name = 'marts' and t.table_name = 'fct_daily_revenue'
"""

READER = """
import json, os, sys, duckdb
path, stop, query = sys.argv[1], sys.argv[2], sys.argv[3]
while not os.path.exists(stop):
    try:
        con = duckdb.connect(path, read_only=True, config={"enable_external_access": False})
        try:
            row = con.execute(query).fetchall()[0]
        finally:
            con.close()
        print(json.dumps({"row": [str(v) for v in row]}), flush=True)
    except Exception as error:  # every error is a failure of the test: report it, keep reading
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}), flush=True)
"""


def expected_total(run_id: str) -> float:
    version = int(run_id.removeprefix("pub-"))
    return float(len(DAYS) * (1000 + version))


def check_row(row: list[str]) -> str:
    """Assert one result is one publication, entirely; return its run id."""
    run_id, _, recorded_hash, actual_hash, net_total, days = row
    assert recorded_hash == actual_hash, f"rows of another publication under {run_id}: {row}"
    assert float(net_total) == expected_total(run_id), f"totals of another publication under {run_id}: {row}"
    assert int(days) == len(DAYS), row
    return run_id


def publish_version(tmp_path: Path, serving: Path, version: int) -> None:
    warehouse = revenue_warehouse(tmp_path / "warehouse.duckdb", version=version)
    # The audit itself is covered in test_publish.py; here only the swap is under test.
    publish(warehouse, serving, f"pub-{version}", require_audit=False, settings=SETTINGS)


def test_readers_in_other_processes_see_whole_publications_and_never_fail(tmp_path):
    serving = tmp_path / "serving.duckdb"
    publish_version(tmp_path, serving, 1)
    stop = tmp_path / "stop"
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(serving), str(stop), QUERY],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(READER_PROCESSES)
    ]
    try:
        time.sleep(1.0)  # let every reader start querying before the first swap
        for version in range(2, PUBLICATIONS + 1):
            publish_version(tmp_path, serving, version)
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        stop.touch()
        outputs = [reader.communicate(timeout=60) for reader in readers]
    seen_by_reader = []
    total = 0
    for stdout, stderr in outputs:
        lines = [json.loads(line) for line in stdout.splitlines()]
        errors = [line["error"] for line in lines if "error" in line]
        assert errors == [], f"queries failed during publish: {errors[:3]} {stderr[-500:]}"
        runs = [check_row(line["row"]) for line in lines]
        total += len(runs)
        seen_by_reader.append(set(runs))
    print(f"\n{total} queries by {READER_PROCESSES} processes during {PUBLICATIONS - 1} publishes")
    # The readers really read across the swaps: each saw several publications, including the last.
    assert all(len(seen) >= 3 for seen in seen_by_reader), [sorted(s) for s in seen_by_reader]
    assert all(f"pub-{PUBLICATIONS}" in seen for seen in seen_by_reader)


def test_threads_of_one_process_see_whole_publications_possibly_stale(tmp_path):
    serving = tmp_path / "serving.duckdb"
    publish_version(tmp_path, serving, 1)
    results: list[str] = []
    errors: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                con = duckdb.connect(str(serving), read_only=True, config={"enable_external_access": False})
                try:
                    row = [str(v) for v in con.execute(QUERY).fetchall()[0]]
                finally:
                    con.close()
                results.append(check_row(row))
            except AssertionError as error:
                errors.append(f"mixed: {error}")
            except duckdb.Error as error:
                errors.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=read) for _ in range(READER_THREADS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        for version in range(2, PUBLICATIONS + 1):
            publish_version(tmp_path, serving, version)
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    assert len(results) > 50
    print(
        f"\n{len(results)} queries by {READER_THREADS} threads saw {len(set(results))} of {PUBLICATIONS} publications"
    )
    # Once the process holds no connection, the next one opens the file in place: the last one.
    with duckdb.connect(str(serving), read_only=True) as con:
        assert con.execute("select run_id from meta.publication").fetchall() == [(f"pub-{PUBLICATIONS}",)]


def test_an_open_connection_keeps_reading_its_snapshot_across_a_swap(tmp_path):
    serving = tmp_path / "serving.duckdb"
    publish_version(tmp_path, serving, 1)
    held = duckdb.connect(str(serving), read_only=True)
    try:
        publish_version(tmp_path, serving, 2)
        # Same process, new connection, while `held` is open: DuckDB hands back the cached
        # instance of the pre-swap file - consistent, but the previous publication.
        with duckdb.connect(str(serving), read_only=True) as same_process:
            assert check_row([str(v) for v in same_process.execute(QUERY).fetchall()[0]]) == "pub-1"
        assert check_row([str(v) for v in held.execute(QUERY).fetchall()[0]]) == "pub-1"
        # ATTACH in a fresh in-memory instance opens the file in place (what publication() does).
        assert publication(serving)["run_id"] == "pub-2"
    finally:
        held.close()
    with duckdb.connect(str(serving), read_only=True) as con:
        assert check_row([str(v) for v in con.execute(QUERY).fetchall()[0]]) == "pub-2"


def test_a_failed_publish_leaves_readers_on_the_previous_file(tmp_path):
    serving = tmp_path / "serving.duckdb"
    publish_version(tmp_path, serving, 1)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("drop table marts.fct_daily_revenue")
    with pytest.raises(RuntimeError, match="nothing to publish"):
        publish(tmp_path / "warehouse.duckdb", serving, "pub-2", require_audit=False, settings=SETTINGS)
    assert publication(serving)["run_id"] == "pub-1"
    assert not list(tmp_path.glob(".serving-*"))

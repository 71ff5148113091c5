"""The pseudonymisation key never lands in dbt's artifacts, logs or the warehouse file.

A key rendered into SQL would be readable by anyone who can read `target/` (manifest, compiled
and run SQL), dbt.log, Airflow's rendered fields and task logs, or the warehouse's view
definitions: with it, every pseudonymised e-mail can be recomputed from a list of addresses.
"""

from __future__ import annotations

import duckdb

from tests.dbt.conftest import PII_KEY


def _files_holding(root, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_the_key_is_in_no_artifact_log_or_warehouse_byte(built):
    assert len(PII_KEY) >= 16, "a key short enough to occur by chance would make this test meaningless"
    needle = PII_KEY.encode()
    assert list(built.target_path.rglob("*.sql")), "the build wrote compiled SQL to search"
    assert _files_holding(built.target_path, needle) == []
    assert needle not in built.warehouse_path.read_bytes()
    wal = built.warehouse_path.with_name(built.warehouse_path.name + ".wal")
    assert not wal.exists() or needle not in wal.read_bytes()


def test_the_staging_tables_hash_with_the_key_given_at_run_time(built):
    """dbt hands the key to its connection at run time (plugins/pii_key.py), never in SQL: the stored
    hashes are keyed with it, and the warehouse (whose bytes hold no key, above) cannot recompute them."""
    import hashlib

    sql = (
        "select c.email, s.email_hash from raw.customers c "
        "join staging.stg_shop__customers s using (customer_id) where c.email is not null limit 1"
    )
    with duckdb.connect(str(built.warehouse_path), read_only=True) as con:
        email, email_hash = con.execute(sql).fetchone()
    expected = hashlib.sha256(f"{PII_KEY}|{email.strip().lower()}".encode()).hexdigest()
    assert email_hash == expected
    unkeyed = hashlib.sha256(f"|{email.strip().lower()}".encode()).hexdigest()
    assert email_hash != unkeyed

"""Partner files reach dbt staging: one model per partner contract, built from the loaded tables,
without the reviewers' personal data, and empty (not failing) before a partner has delivered."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from ingestion.partner_files import samples
from ingestion.partner_files.process import inbox_dir, load_landed, process_inbox
from tests.conftest import DAY0
from tests.dbt.fixture_warehouse import dbt_env, run_dbt

pytestmark = pytest.mark.slow  # real dbt processes

SELECT = ("--select", "staging.partner")


def test_partner_staging_builds_from_the_loaded_files_without_personal_data(stack, monkeypatch, tmp_path):
    monkeypatch.setenv("PARTNER_FILES_SETTLE_SECONDS", "0")
    monkeypatch.delenv("ALERT_WEBHOOK_URL", raising=False)
    env = dbt_env(stack.warehouse_path, tmp_path / "target", "partner-key")
    stack.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect(str(stack.warehouse_path)).close()  # an empty warehouse: nothing delivered yet

    before = run_dbt(env, "run", *SELECT)
    assert "no file delivered yet" in before.stdout

    for kind, day in (("orders_good", DAY0), ("reviews_good", DAY0), ("reviews_good", DAY0 + dt.timedelta(days=1))):
        sample = samples.build(kind, day)
        samples.drop(inbox_dir(stack), sample.partner, sample.file_name, sample.data)
    process_inbox(stack, "run-1", settle_seconds=0, today=DAY0 + dt.timedelta(days=2))
    load_landed(stack, "run-1")

    # the shop's products are not loaded here: only the partner models and their own tests
    run_dbt(env, "build", *SELECT, "--exclude", "test_name:relationships")
    with duckdb.connect(str(stack.warehouse_path), read_only=True) as con:
        con.execute("set variable pii_hash_key = ?", [env["PII_HASH_KEY"]])  # the staging views read it at run time
        raw_lines = con.execute("select count(*) from raw.partner_wholesale_orders").fetchone()[0]
        lines = con.execute(
            "select count(*), count(distinct file_sha256) from staging.stg_partner__wholesale_order_lines"
        ).fetchone()
        raw_reviews = con.execute("select count(distinct review_id) from raw.partner_product_reviews").fetchone()[0]
        reviews = con.execute("select count(*) from staging.stg_partner__product_reviews").fetchone()[0]
        columns = {
            row[0]
            for row in con.execute(
                "select column_name from information_schema.columns where table_schema = 'staging' "
                "and table_name like 'stg_partner__%'"
            ).fetchall()
        }
        emails = {r[0] for r in con.execute("select reviewer_email from raw.partner_product_reviews").fetchall()}
        hashes = {
            r[0] for r in con.execute("select reviewer_email_hash from staging.stg_partner__product_reviews").fetchall()
        }
    assert lines == (raw_lines, 1) and raw_lines > 0
    assert reviews == raw_reviews > 0
    assert not {"reviewer_email", "review_text"} & columns
    assert len(hashes) == len(emails) and not hashes & emails

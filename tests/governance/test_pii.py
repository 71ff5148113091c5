"""PII is classified where data is created, and the check fails on anything personal left untagged."""

from __future__ import annotations

import duckdb

from governance.classification import all_sources
from governance.pii_check import untagged_pii
from governance.pii_scan import scan


def test_every_landed_column_that_looks_personal_is_tagged_pii():
    findings = untagged_pii(all_sources())
    assert findings == [], "\n".join(map(str, findings))
    customers = all_sources()["raw.customers"]
    assert {c for c, tag in customers.items() if tag["classification"] == "pii"} >= {
        "email",
        "full_name",
        "phone",
        "street_address",
        "birth_date",
    }


def test_an_untagged_personal_column_fails_the_check():
    sources = all_sources()
    sources["raw.orders"]["customer_email"] = {"classification": "internal", "pii_kind": None}
    sources["raw.orders"]["contact"] = {"classification": "internal", "pii_kind": None}
    findings = untagged_pii(sources, samples={"raw.orders": {"contact": ["ana@example.com", "ben@example.org"]}})
    assert {(f.column, f.kind) for f in findings} == {("customer_email", "email"), ("contact", "email")}
    # Pseudonyms derived from personal data are not themselves direct identifiers.
    sources = all_sources()
    sources["raw.orders"]["email_hash"] = {"classification": "internal", "pii_kind": None}
    assert untagged_pii(sources) == []


def test_the_scanner_finds_personal_values_and_passes_clean_files(tmp_path):
    path = tmp_path / "serving.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.clean as select 'DE' as country_code, 'web' as channel, 10 as orders")
        con.execute("create table marts.leaky as select 'Anna Becker' as who, 'x' as note")
    assert [h.table for h in scan(path)] == []
    hits = scan(path, known_values=["Anna Becker"])
    assert [(h.table, h.column, h.what) for h in hits] == [("marts.leaky", "who", "known personal values")]
    with duckdb.connect(str(path)) as con:
        con.execute("create table marts.contacts as select 'mia.weber.7@example.com' as c, '+49 151 2345678' as p")
    found = {(h.column, h.what) for h in scan(path)}
    assert found == {("c", "e-mail shaped values"), ("p", "phone shaped values")}


def test_role_mailboxes_ids_and_dates_are_not_mistaken_for_personal_data(tmp_path):
    path = tmp_path / "serving.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.kpi as select 'finance@shop.example' as owner, '2026-11-24' as day, "
            "'20261124123456' as fingerprint, '1 of 3 unexpected' as observed"
        )
    assert scan(path) == []
    with duckdb.connect(str(path)) as con:
        con.execute("create table marts.leak as select 'mia.weber@gmail.com' as e, '+44 20 7946 0958' as p")
    assert {(h.column, h.what) for h in scan(path)} == {("e", "e-mail shaped values"), ("p", "phone shaped values")}

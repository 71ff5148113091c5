"""Data subject requests on a small simulated shop run through the real pipeline (lake, warehouse, dbt,
gate 2, serving): the export holds all and only the subject's rows; after erasure an independent
search of lake, warehouse and serving finds nothing of them, the KPIs changed by exactly their
contribution, and the audit log has every step without a plain identifier.

The subject's identifiers and contribution are computed here from the app DB and the pre-erasure
marts, not with `governance.dsr`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from core.settings import Settings
from governance import audit, dsr
from governance.pii_scan import scan
from governance.settings import governance_dir
from ingestion.app_db.batch import land_day
from pipelines.marts import rebuild_and_publish
from tests.governance.conftest import PII_KEY, SHOP_DAYS

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Person:
    customer_id: int
    email: str
    visitor_ids: frozenset[str]
    order_ids: frozenset[int]
    pseudonyms: frozenset[str]  # dbt's keyed hashes of the e-mail and visitor ids

    def plain_values(self) -> set[str]:
        return {self.email, *self.visitor_ids}


def _pseudonym(value: str) -> str:
    return hashlib.sha256(f"{PII_KEY}|{value.strip().lower()}".encode()).hexdigest()


def _app_db(settings: Settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.app_db_url.removeprefix("sqlite:///"))


def _pick_person(settings: Settings) -> Person:
    """A customer with orders and web sessions and no returns (their contribution is then exact)."""
    with _app_db(settings) as con:
        customer_id, email = con.execute(
            "select c.customer_id, c.email from customers c "
            "where exists (select 1 from orders o where o.customer_id = c.customer_id) "
            "and exists (select 1 from web_events w where w.customer_id = c.customer_id) "
            "and not exists (select 1 from returns r join orders o using (order_id) "
            "where o.customer_id = c.customer_id) "
            "order by c.customer_id desc limit 1"
        ).fetchone()
        visitors = {
            v for (v,) in con.execute("select distinct visitor_id from web_events where customer_id = ?", [customer_id])
        }
        orders = {o for (o,) in con.execute("select order_id from orders where customer_id = ?", [customer_id])}
    assert customer_id > 50, "a customer id that no small count can be mistaken for"
    return Person(
        customer_id, email, frozenset(visitors), frozenset(orders), frozenset(map(_pseudonym, {email, *visitors}))
    )


def _search(settings: Settings, person: Person) -> list[str]:
    """Every place in lake, warehouse and serving that holds the person's id, e-mail, visitor id or pseudonym."""
    texts = sorted({v.lower() for v in person.plain_values()} | person.pseudonyms)
    found: list[str] = []

    def check(con: duckdb.DuckDBPyConnection, relation: str, columns: list[tuple[str, str]], where: str) -> None:
        for column, kind in columns:
            if column == "customer_id":
                predicate = f'"{column}" = {person.customer_id}'
            elif kind == "VARCHAR":
                predicate = f'lower("{column}") in (select unnest(?::varchar[]))'
            else:
                continue
            params = [texts] if "unnest" in predicate else []
            if con.execute(f"select count(*) from {relation} where {predicate}", params).fetchone()[0]:
                found.append(f"{where}: {column}")

    with duckdb.connect() as con:
        # dbt's staging views read the pseudonymisation key from the connection.
        con.execute("set variable pii_hash_key = ?", [PII_KEY])
        for path in sorted(settings.lake_dir.rglob("*.parquet")):
            relation = f"read_parquet('{path}')"
            columns = [(r[0], r[1]) for r in con.execute(f"describe select * from {relation}").fetchall()]
            check(con, relation, columns, str(path.relative_to(settings.lake_dir)))
        for alias, path in (("wh", settings.warehouse_path), ("serving", settings.serving_path)):
            con.execute(f"attach '{path}' as {alias} (read_only)")
            rows = con.execute(
                "select table_schema, table_name, column_name, data_type from information_schema.columns "
                "where table_catalog = ? order by all",
                [alias],
            ).fetchall()
            tables: dict[tuple[str, str], list[tuple[str, str]]] = {}
            for schema, table, column, kind in rows:
                tables.setdefault((schema, table), []).append((column, kind))
            for (schema, table), columns in tables.items():
                check(con, f'{alias}."{schema}"."{table}"', columns, f"{alias}.{schema}.{table}")
    return found


def _warehouse(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect() as con:
        con.execute(f"attach '{settings.warehouse_path}' as wh (read_only)")
        con.execute("use wh")
        return con.execute(sql, params or []).fetchall()


@dataclass
class Requests:
    settings: Settings
    person: Person
    found_before: list[str]
    archive_files: dict[str, list[dict]]
    archive_manifest: dict
    revenue_before: dict
    subject_lines: dict
    customers_before: set
    export_summary: dict
    erase_summary: dict


@pytest.fixture(scope="module")
def requests(small_shop: Settings) -> Requests:
    settings = small_shop
    person = _pick_person(settings)
    found_before = _search(settings, person)
    revenue_before = {
        r[0]: r[1:]
        for r in _warehouse(settings, "select revenue_date, orders, gross_revenue_eur from marts.fct_daily_revenue")
    }
    subject_lines = {
        r[0]: r[1:]
        for r in _warehouse(
            settings,
            "select ordered_date, count(distinct order_id), sum(line_amount_eur)::decimal(18, 2) "
            "from marts.fct_order_lines where customer_id = ? and not is_cancelled group by 1",
            [person.customer_id],
        )
    }
    customers_before = set(
        _warehouse(settings, "select * from marts.dim_customers where customer_id != ?", [person.customer_id])
    )

    # A table dbt does not build, keyed by customer (as the churn model's scores are).
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create schema if not exists ml")
        con.execute(
            "create or replace table ml.customer_scores as select customer_id, 0.5 as score "
            "from marts.dim_customers where customer_id in (?, 1)",
            [person.customer_id],
        )
    exported = dsr.run_request(
        settings, "export", email=person.email.upper(), republish=rebuild_and_publish
    )  # case does not matter
    with zipfile.ZipFile(exported["archive"]) as bundle:
        manifest = json.loads(bundle.read("manifest.json"))
        files = {
            name: list(csv.DictReader(io.StringIO(bundle.read(name).decode())))
            for name in bundle.namelist()
            if name.endswith(".csv")
        }
    erased = dsr.run_request(settings, "erase", customer_id=person.customer_id, republish=rebuild_and_publish)
    return Requests(
        settings,
        person,
        found_before,
        files,
        manifest,
        revenue_before,
        subject_lines,
        customers_before,
        exported,
        erased,
    )


def _is_subjects(row: dict, person: Person) -> bool:
    values = {str(v).strip().lower() for v in row.values() if v}
    ids = {str(person.customer_id)} if str(row.get("customer_id", "")) == str(person.customer_id) else set()
    orders = {str(o) for o in person.order_ids} & {str(row.get("order_id", ""))}
    return bool(ids or orders or values & ({v.lower() for v in person.plain_values()} | person.pseudonyms))


def test_export_holds_all_and_only_the_subjects_rows(requests: Requests) -> None:
    person, files = requests.person, requests.archive_files
    assert requests.found_before, "the subject was in the stack before the request"
    # Only: every exported row carries one of the subject's identifiers.
    for name, rows in files.items():
        assert rows, name
        assert all(_is_subjects(row, person) for row in rows), name
    # All: every lake file, raw table, staging view and row-level mart that holds them is there,
    # with as many rows as an independent count finds.
    exported = {entry["source"]: entry["rows"] for entry in requests.archive_manifest["files"]}
    for place in requests.found_before:
        where = place.split(":")[0]
        source = f"lake:{where}" if where.startswith("raw/") else where.replace("wh.", "warehouse:", 1)
        assert source in exported, f"{place} is not in the export"
    with _app_db(requests.settings) as con:
        (orders,) = con.execute("select count(*) from orders where customer_id = ?", [person.customer_id]).fetchone()
    assert len(files["warehouse/raw.orders.csv"]) == orders
    assert {row["email"] for row in files["warehouse/raw.customers.csv"]} == {person.email}
    assert {"warehouse/marts.fct_order_lines.csv", "warehouse/staging.stg_shop__web_events.csv"} <= set(files)
    assert not any(name.startswith("serving/") for name in files), "serving holds no row-level data"
    assert requests.archive_manifest["subject"]["customer_ids"] == [person.customer_id]


def test_after_erasure_the_subject_is_nowhere(requests: Requests) -> None:
    assert _search(requests.settings, requests.person) == []
    assert _warehouse(requests.settings, "select customer_id from ml.customer_scores") == [(1,)], "others stay"
    assert requests.erase_summary["warehouse_rows_removed"]["ml.customer_scores"] == 1
    # The partitions were rewritten consistently: manifests match their files, loads still reconcile.
    for manifest_path in requests.settings.lake_raw_dir.glob("shop/*/ds=*/_manifest.json"):
        manifest = json.loads(manifest_path.read_text())
        data = (manifest_path.parent / manifest["file"]).read_bytes()
        assert manifest["sha256"] == hashlib.sha256(data).hexdigest(), manifest_path
        with duckdb.connect() as con:
            rows = con.execute("select count(*) from read_parquet(?)", [str(manifest_path.parent / manifest["file"])])
            assert rows.fetchone()[0] == manifest["row_count"], manifest_path
    assert requests.erase_summary["lake_files_rewritten"] > 0
    assert requests.erase_summary["earlier_exports_deleted"] == 1
    assert not list((governance_dir(requests.settings) / "exports").glob("*.zip"))
    # The serving file was republished from the rebuilt marts and holds no personal data at all.
    with _app_db(requests.settings) as con:
        known = [v for row in con.execute("select email, full_name, phone, street_address from customers") for v in row]
    assert scan(requests.settings.serving_path, known_values=known) == []
    with duckdb.connect() as con:
        con.execute(f"attach '{requests.settings.serving_path}' as s (read_only)")
        served = {
            t for (t,) in con.execute("select table_name from duckdb_tables() where database_name = 's'").fetchall()
        }
    assert "fct_daily_revenue" in served
    assert not served & {"fct_order_lines", "dim_customers", "fct_sessions"}, "row-level marts stay in the warehouse"


def test_no_file_the_stack_writes_keeps_a_copy_of_the_subject(requests: Requests) -> None:
    """Byte level, not row level: DuckDB keeps deleted rows in freed blocks, a rewritten lake file
    may leave its old version behind. Every file under the stack's data and run folders is read
    raw (warehouse, serving, their WAL and spill files, the lake, exports, GX results, logs).
    Compressed pages (Parquet, DuckDB's string compression) can hide a value from a byte search,
    so the warehouse must also have no freed block at all: it holds live data only."""
    settings, person = requests.settings, requests.person
    needles = {v.lower().encode() for v in person.plain_values()} | {h.encode() for h in person.pseudonyms}
    app_db = Path(settings.app_db_url.removeprefix("sqlite:///"))
    searched, found = 0, []
    for path in sorted(p for p in settings.data_dir.rglob("*") if p.is_file()):
        if path == app_db or path.parent == app_db.parent:
            continue  # the shop backend's own database: erased by its account deletion (README)
        data = path.read_bytes().lower()
        searched += 1
        found += [f"{path.relative_to(settings.data_dir)}: {n.decode()}" for n in needles if n in data]
    assert searched > 50 and settings.warehouse_path.is_relative_to(settings.data_dir)
    assert found == []
    with duckdb.connect() as con:
        con.execute(f"attach '{settings.warehouse_path}' as wh (read_only)")
        (free,) = con.execute("select free_blocks from pragma_database_size() where database_name = 'wh'").fetchone()
    assert free == 0, "deleted rows' blocks are still in the warehouse file"


def test_kpis_change_by_exactly_the_subjects_contribution(requests: Requests) -> None:
    settings = requests.settings
    after = {
        r[0]: r[1:]
        for r in _warehouse(settings, "select revenue_date, orders, gross_revenue_eur from marts.fct_daily_revenue")
    }
    assert requests.subject_lines, "the subject had revenue"
    for day, (orders, gross) in requests.revenue_before.items():
        sub_orders, sub_gross = requests.subject_lines.get(day, (0, Decimal(0)))
        assert after[day][0] == orders - sub_orders, day
        assert abs(after[day][1] - (gross - sub_gross)) <= Decimal("0.01"), day
    customers_after = set(_warehouse(settings, "select * from marts.dim_customers"))
    assert customers_after == requests.customers_before, "every other customer's row is unchanged"
    with duckdb.connect() as con:
        con.execute(f"attach '{settings.serving_path}' as s (read_only)")
        served = dict(con.execute("select revenue_date, orders from s.marts.fct_daily_revenue").fetchall())
        run_id = con.execute("select run_id from s.meta.publication").fetchone()[0]
    assert served == {day: values[0] for day, values in after.items()}
    assert run_id == requests.erase_summary["request_id"]


def _values(node) -> list:
    if isinstance(node, dict):
        return [v for value in node.values() for v in _values(value)]
    if isinstance(node, list):
        return [v for value in node for v in _values(value)]
    return [node]


def test_audit_log_records_each_request_without_identifiers(requests: Requests) -> None:
    settings, person = requests.settings, requests.person
    entries = audit.entries(settings)
    steps = [(e.action, e.outcome, e.request_id) for e in entries]
    export_id, erase_id = requests.export_summary["request_id"], requests.erase_summary["request_id"]
    assert steps == [
        ("dsr_export", "started", export_id),
        ("dsr_export", "completed", export_id),
        ("dsr_erase", "started", erase_id),
        ("dsr_erase", "completed", erase_id),
    ]
    assert {e.actor for e in entries} == {"dpo@shop.example"}
    # The subject is a keyed hash that can be recomputed (e.g. "was customer X erased?").
    assert entries[-1].subject == audit.subject_hash("customer_id", person.customer_id)
    text = audit.audit_log_path(settings).read_text().lower()
    for value in person.plain_values() | person.pseudonyms:
        assert value.lower() not in text
    assert all(v not in (person.customer_id, str(person.customer_id)) for e in entries for v in _values(e.details))
    assert audit.verify(settings).ok, "tampering is covered in test_audit.py"


def test_a_re_extract_does_not_bring_the_subject_back(requests: Requests) -> None:
    settings, person = requests.settings, requests.person
    # The app DB still has them (its owner erases there): re-landing their first day brings them back ...
    with _app_db(settings) as con:
        (changed,) = con.execute("select date(updated_at) from customers where customer_id = ?", [person.customer_id])
    day = next(d for d in SHOP_DAYS if str(d) == changed[0])
    land_day(settings, day, "backfill")
    assert any(place.startswith("raw/shop/") for place in _search(settings, person))
    # ... until the maintenance DAG re-applies the erasure list.
    assert len(dsr.reapply_erasures(settings, republish=rebuild_and_publish)) == 1
    assert _search(settings, person) == []
    assert audit.entries(settings)[-1].action == "dsr_reapply"
    assert dsr.reapply_erasures(settings, republish=rebuild_and_publish) == []


def test_an_unknown_subject_is_refused_and_audited(small_shop: Settings) -> None:
    with pytest.raises(dsr.SubjectNotFound):
        dsr.run_request(small_shop, "export", email="nobody@example.org", republish=None)
    last = audit.entries(small_shop)[-1]
    assert (last.action, last.outcome) == ("dsr_export", "not_found")
    assert "nobody" not in audit.audit_log_path(small_shop).read_text()

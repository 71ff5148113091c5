"""Real Great Expectations runs of both gates on small Parquet batches and DuckDB files."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from ingestion.app_db.contract import CONTRACTS
from ingestion.lake import partition_file, read_manifest
from ingestion.shop_batch import land_day
from ingestion.simulator.run import simulate
from quality import GateFailed, context, record_results, validate_landed_batch, validate_marts
from quality.specs import RAW_TABLES
from tests.quality.conftest import DS, good_rows, land

REPO = Path(__file__).resolve().parents[2]
COMMITTED_GX_PROJECT = context.GX_PROJECT_DIR  # read at import, before the fixture swaps in a copy
TABLES = sorted(CONTRACTS)


def failed(result) -> set[str]:
    return {o.label for o in result.failures}


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


# --- the package and the committed GX project -------------------------------------------------


def test_committed_gx_project_matches_the_suites_in_code(monkeypatch, tmp_path):
    monkeypatch.setattr(context, "GX_PROJECT_DIR", COMMITTED_GX_PROJECT)
    before = tree_digest(COMMITTED_GX_PROJECT)
    assert context.sync(check=True, docs=tmp_path) == [], "run `python -m quality sync` and commit quality/gx"
    assert tree_digest(COMMITTED_GX_PROJECT) == before


def test_importing_quality_does_not_import_great_expectations():
    code = (
        "import sys, quality, quality.__main__; "
        "print(sorted(m for m in ('great_expectations', 'pandas', 'duckdb') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_raw_specs_match_the_contract_and_the_app_db_constraints():
    from ingestion.app_db.schema import TABLES as APP_TABLES

    assert set(RAW_TABLES) == set(CONTRACTS)
    for table, spec in RAW_TABLES.items():
        named = {spec.key, *spec.required, *spec.value_sets, *spec.ranges, *spec.patterns}
        assert named <= set(CONTRACTS[table].columns), f"{table}: the spec names columns that are not landed"
        not_null = {c.name for c in APP_TABLES[table].columns if not c.nullable}
        assert not_null == {spec.key, *spec.required}, f"{table}: required columns differ from the app DB"


# --- gate 1 -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated_lake(tmp_path_factory) -> Path:
    """Two simulated shop days landed by the real extractor: the batches gate 1 sees in production."""
    root = tmp_path_factory.mktemp("shop")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STACK_DATA_DIR", str(root))
        patch.setenv("STACK_VAR_DIR", str(root / "var"))
        for name in ("APP_DB_URL", "LAKE_DIR", "WAREHOUSE_DIR", "WAREHOUSE_PATH"):
            patch.delenv(name, raising=False)
        from stackctl.settings import get_settings

        settings = get_settings()
        day = dt.date.fromisoformat(DS)
        simulate(settings.app_db_url, day - dt.timedelta(days=1), day, scale=0.1, progress=False)
        land_day(settings, day, "sim-run")
    return settings.lake_raw_dir


@pytest.mark.parametrize("table", TABLES)
def test_simulated_batch_passes(simulated_lake, docs, table):
    path = partition_file(simulated_lake, read_manifest(simulated_lake, "shop", table, DS))
    result = validate_landed_batch(table, [path], "sim-run", DS, docs=docs)
    assert result.success, result.reason
    assert result.reason.startswith(f"gate1 raw.{table} ds={DS} passed")
    assert all(o.success for o in result.outcomes) and len(result.outcomes) > 10
    assert result.docs_index.exists()
    result.raise_for_failure()


@pytest.mark.parametrize("table", TABLES)
def test_empty_batch_passes(tmp_path, docs, table):
    path = land(tmp_path, table)
    result = validate_landed_batch(table, [path], "quiet-day", DS, docs=docs)
    assert result.success, result.reason
    assert result.row_counts == {table: 0}


def _with(rows: dict[str, list], column: str, values: list) -> dict[str, list]:
    return {**rows, column: values}


BAD_BATCHES = {
    "null key": ("orders", _with(good_rows("orders"), "order_id", [1, None, 3]), None),
    "duplicate key": ("orders", _with(good_rows("orders"), "order_id", [1, 2, 2]), None),
    "negative price": ("order_items", _with(good_rows("order_items"), "unit_price_cents", [1999, -1, 5]), None),
    "negative catalogue price": ("products", _with(good_rows("products"), "unit_price_eur_cents", [-5, 1, 2]), None),
    "bad enum value": ("orders", _with(good_rows("orders"), "order_status", ["placed", "lost", "shipped"]), None),
    "zero exchange rate": ("orders", _with(good_rows("orders"), "eur_exchange_rate", [1.0, 0.0, 1.1]), None),
    "missing column": ("orders", {k: v for k, v in good_rows("orders").items() if k != "channel"}, None),
    "price as text": (
        "order_items",
        _with(good_rows("order_items"), "unit_price_cents", ["19.99", "5", "7"]),
        pa.schema(
            [
                f if f.name != "unit_price_cents" else pa.field(f.name, pa.string())
                for f in CONTRACTS["order_items"].schema
            ]
        ),
    ),
}
EXPECTED_FAILURE = {
    "null key": "expect_column_values_to_not_be_null(order_id)",
    "duplicate key": "expect_column_values_to_be_unique(order_id)",
    "negative price": "expect_column_values_to_be_between(unit_price_cents)",
    "negative catalogue price": "expect_column_values_to_be_between(unit_price_eur_cents)",
    "bad enum value": "expect_column_values_to_be_in_set(order_status)",
    "zero exchange rate": "expect_column_values_to_be_between(eur_exchange_rate)",
    "missing column": "expect_table_columns_to_match_set",
    "price as text": "expect_column_values_to_be_of_type(unit_price_cents)",
}


@pytest.mark.parametrize("case", BAD_BATCHES)
def test_bad_batch_fails_naming_the_expectation(tmp_path, docs, case):
    table, rows, schema = BAD_BATCHES[case]
    path = land(tmp_path, table, rows, schema=schema)
    result = validate_landed_batch(table, [path], "bad-run", DS, docs=docs)
    expected = EXPECTED_FAILURE[case]
    assert not result.success
    assert expected in failed(result)
    assert expected in result.reason and "\n" not in result.reason
    assert result.reason.startswith(f"gate1 raw.{table} ds={DS} FAILED")
    with pytest.raises(GateFailed, match="FAILED"):
        result.raise_for_failure()


def test_reason_carries_the_observed_values(tmp_path, docs):
    rows = _with(good_rows("orders"), "order_status", ["placed", "lost", "lost"])
    result = validate_landed_batch("orders", [land(tmp_path, "orders", rows)], "bad-run", DS, docs=docs)
    assert "expect_column_values_to_be_in_set(order_status) observed 2 of 3 unexpected, e.g. ['lost', 'lost']" in (
        result.reason
    )
    (outcome,) = result.failures
    assert outcome.details["kwargs"]["value_set"] == ["placed", "shipped", "delivered", "cancelled"]


def test_row_count_must_match_the_manifest(tmp_path, docs):
    path = land(tmp_path, "orders", good_rows("orders"))
    result = validate_landed_batch("orders", [path], "bad-run", DS, expected_row_count=4, docs=docs)
    assert failed(result) == {"expect_table_row_count_to_equal"}
    assert "expect_table_row_count_to_equal observed 3" in result.reason


def test_batch_without_manifest_is_an_error(tmp_path, docs):
    path = land(tmp_path, "orders", good_rows("orders"))
    (path.parent / "_manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"_manifest\.json"):
        validate_landed_batch("orders", [path], "run", DS, docs=docs)


# --- gate 2 -----------------------------------------------------------------------------------

DAYS = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(5)]


def make_warehouse(path: Path, *, drop_day: dt.date | None = None, net_over_gross_on: dt.date | None = None) -> Path:
    """A warehouse file with marts.fct_daily_revenue typed like the dbt model (DECIMAL money)."""
    rows = []
    for i, day in enumerate(DAYS):
        if day == drop_day:
            continue
        gross, returns = 100.0 + i, 10.0
        net = gross + 5 if day == net_over_gross_on else gross - returns
        rows.append((day, gross, returns, net, 4 + i, round(gross / (4 + i), 2)))
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.fct_daily_revenue (revenue_date date, gross_revenue_eur decimal(18, 2), "
            "returns_eur decimal(18, 2), net_revenue_eur decimal(18, 2), orders bigint, "
            "average_order_value_eur decimal(18, 2))"
        )
        con.executemany("insert into marts.fct_daily_revenue values (?, ?, ?, ?, ?, ?)", rows)
    return path


def test_gate2_passes_on_a_good_mart(tmp_path, docs):
    result = validate_marts(make_warehouse(tmp_path / "w.duckdb"), "run-ok", docs=docs)
    assert result.success, result.reason
    assert result.reason.startswith("gate2 marts.fct_daily_revenue passed")
    assert result.row_counts == {"fct_daily_revenue": 5}


def test_gate2_fails_when_net_exceeds_gross(tmp_path, docs):
    warehouse = make_warehouse(tmp_path / "w.duckdb", net_over_gross_on=DAYS[2])
    result = validate_marts(warehouse, "run-bad", docs=docs)
    assert not result.success
    assert failed(result) == {"expect_column_pair_values_a_to_be_greater_than_b(gross_revenue_eur,net_revenue_eur)"}
    assert "1 of 5 unexpected" in result.reason


def test_gate2_fails_on_a_missing_day(tmp_path, docs):
    result = validate_marts(make_warehouse(tmp_path / "w.duckdb", drop_day=DAYS[2]), "run-gap", docs=docs)
    assert not result.success
    assert failed(result) == {"expect_column_pair_values_to_be_equal(previous_revenue_date,day_before_revenue_date)"}
    # The evidence names the day before the gap and the day that should have preceded the next row.
    assert "['2026-03-02', '2026-03-03']" in result.reason


def test_gate2_fails_on_an_empty_mart(tmp_path, docs):
    warehouse = make_warehouse(tmp_path / "w.duckdb")
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from marts.fct_daily_revenue")
    result = validate_marts(warehouse, "run-empty", docs=docs)
    assert "expect_table_row_count_to_be_between" in failed(result)


def test_gate2_without_a_warehouse_is_an_error(tmp_path, docs):
    with pytest.raises(FileNotFoundError):
        validate_marts(tmp_path / "missing.duckdb", "run", docs=docs)


# --- results ----------------------------------------------------------------------------------


def test_record_results_writes_one_row_per_expectation_and_replaces_on_retry(tmp_path, docs):
    warehouse = make_warehouse(tmp_path / "w.duckdb", drop_day=DAYS[1])
    result = validate_marts(warehouse, "run-1", docs=docs)
    bad = validate_landed_batch(
        "orders", [land(tmp_path, "orders", _with(good_rows("orders"), "order_id", [1, 1, 2]))], "run-1", DS, docs=docs
    )
    assert record_results(warehouse, result) == len(result.outcomes)
    assert record_results(warehouse, result) == len(result.outcomes)  # a retry replaces, never appends
    record_results(warehouse, bad)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        counts = con.execute(
            "select gate, suite, ds, count(*), count(*) filter (where not success) "
            "from ops.data_health group by all order by gate"
        ).fetchall()
        row = con.execute(
            "select table_name, column_name, observed_value, details from ops.data_health "
            "where gate = 'gate1' and not success"
        ).fetchone()
    assert counts == [
        ("gate1", "raw.orders", dt.date.fromisoformat(DS), len(bad.outcomes), 1),
        ("gate2", "marts.fct_daily_revenue", None, len(result.outcomes), 1),
    ]
    assert row[:3] == ("orders", "order_id", "2 of 3 unexpected, e.g. [1, 1]")
    assert json.loads(row[3])["result"]["unexpected_count"] == 2


# --- the command line -------------------------------------------------------------------------


def test_cli_fails_a_bad_batch_with_one_line_and_no_progress_bars(tmp_path):
    path = land(tmp_path / "lake", "orders", _with(good_rows("orders"), "order_status", ["placed", "lost", "shipped"]))
    before = tree_digest(COMMITTED_GX_PROJECT)
    env = {**os.environ, "GX_DOCS_DIR": str(tmp_path / "docs"), "STACK_DATA_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "quality", "gate1", "orders", "--ds", DS, "--run-id", "cli", "--parquet", str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1, out.stderr
    assert out.stdout.count("\n") == 1
    assert "expect_column_values_to_be_in_set(order_status) observed 1 of 3 unexpected, e.g. ['lost']" in out.stdout
    assert "Calculating Metrics" not in out.stderr
    assert (tmp_path / "docs" / "site" / "index.html").exists()
    assert tree_digest(COMMITTED_GX_PROJECT) == before, "a gate run must not rewrite the committed GX project"


# --- Data Docs --------------------------------------------------------------------------------


def test_docs_rebuild_prunes_old_results(tmp_path):
    docs = tmp_path / "docs"
    path = land(tmp_path, "orders", good_rows("orders"))
    validate_landed_batch("orders", [path], "old-run", DS, docs=docs)
    old = [p for p in (docs / "validations").rglob("*.json")] + list((docs / "site" / "validations").rglob("*.html"))
    assert len(old) == 2
    for p in old:
        os.utime(p, (0, 0))
    validate_landed_batch("orders", [path], "new-run", DS, docs=docs)
    index = context.build_docs(docs, keep_days=30)
    assert not any(p.exists() for p in old)
    html = index.read_text()
    assert "new-run" in html and "old-run" not in html


def test_combined_result_names_the_suite_of_each_failure(tmp_path, docs):
    from quality.results import combine

    bad = land(tmp_path / "a", "orders", _with(good_rows("orders"), "order_id", [1, 1, 2]))
    good = land(tmp_path / "b", "order_items", good_rows("order_items"))
    result = combine(
        "gate1",
        [
            validate_landed_batch("orders", [bad], "run", DS, docs=docs),
            validate_landed_batch("order_items", [good], "run", DS, docs=docs),
        ],
    )
    assert not result.success and result.ds == DS and result.row_counts == {"orders": 3, "order_items": 3}
    assert result.reason.startswith(f"gate1 raw.orders, raw.order_items ds={DS} FAILED 1 of")
    assert "raw.orders expect_column_values_to_be_unique(order_id) observed 2 of 3 unexpected" in result.reason

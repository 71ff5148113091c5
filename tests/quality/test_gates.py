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

from core.settings import get_settings
from ingestion import run_ledger
from ingestion.app_db.batch import land_day
from ingestion.app_db.contract import CONTRACTS
from ingestion.lake import partition_file, read_manifest
from ingestion.simulator.run import simulate
from quality import GateFailed, context, record_results, validate_landed_batch, validate_marts
from quality.specs import RAW_TABLES
from tests.quality.conftest import DS, good_rows, land

# The stack's DuckDB limits for the sessions under test; the files they open are the tests' own.
SETTINGS = get_settings()

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


def make_warehouse(
    path: Path,
    *,
    drop_day: dt.date | None = None,
    net_over_gross_on: dt.date | None = None,
    unloaded_day: dt.date | None = None,
) -> Path:
    """A warehouse file with marts.fct_daily_revenue typed like the dbt model (DECIMAL money).

    The run ledger says every day was loaded, except `unloaded_day`.
    """
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
        write_ledger(con, [d for d in DAYS if d != unloaded_day])
    return path


def write_ledger(con, days: list[dt.date]) -> None:
    """ops.run_ledger as the loader writes it: a `load` row per source table and day."""
    con.execute(run_ledger.DDL)
    con.executemany(
        "insert into ops.run_ledger values (?, ?, 'shop', ?, 'load', 1, null, 0.1, now()::timestamp)",
        [("ledger", day, table) for day in days for table in ("orders", "order_items", "returns")],
    )


def test_gate2_passes_on_a_good_mart(tmp_path, docs):
    result = validate_marts(make_warehouse(tmp_path / "w.duckdb"), "run-ok", docs=docs, settings=SETTINGS)
    assert result.success, result.reason
    assert result.reason.startswith("gate2 marts.fct_daily_revenue passed")
    assert result.row_counts == {"fct_daily_revenue": 5}


def test_gate2_fails_when_net_exceeds_gross(tmp_path, docs):
    warehouse = make_warehouse(tmp_path / "w.duckdb", net_over_gross_on=DAYS[2])
    result = validate_marts(warehouse, "run-bad", docs=docs, settings=SETTINGS)
    assert not result.success
    assert failed(result) == {"expect_column_pair_values_a_to_be_greater_than_b(gross_revenue_eur,net_revenue_eur)"}
    assert "1 of 5 unexpected" in result.reason


def test_gate2_fails_on_a_missing_day(tmp_path, docs):
    result = validate_marts(
        make_warehouse(tmp_path / "w.duckdb", drop_day=DAYS[2]), "run-gap", docs=docs, settings=SETTINGS
    )
    assert not result.success
    assert failed(result) == {"expect_column_pair_values_to_be_equal(previous_revenue_date,day_before_revenue_date)"}
    # The evidence names the day before the gap and the day that should have preceded the next row.
    assert "['2026-03-02', '2026-03-03']" in result.reason


def test_gate2_fails_on_an_empty_mart(tmp_path, docs):
    warehouse = make_warehouse(tmp_path / "w.duckdb")
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from marts.fct_daily_revenue")
    result = validate_marts(warehouse, "run-empty", docs=docs, settings=SETTINGS)
    assert "expect_table_row_count_to_be_between" in failed(result)


def test_gate2_without_a_warehouse_is_an_error(tmp_path, docs):
    with pytest.raises(FileNotFoundError):
        validate_marts(tmp_path / "missing.duckdb", "run", docs=docs, settings=SETTINGS)


# --- results ----------------------------------------------------------------------------------


def test_record_results_writes_one_row_per_expectation_and_replaces_on_retry(tmp_path, docs):
    warehouse = make_warehouse(tmp_path / "w.duckdb", drop_day=DAYS[1])
    result = validate_marts(warehouse, "run-1", docs=docs, settings=SETTINGS)
    bad = validate_landed_batch(
        "orders", [land(tmp_path, "orders", _with(good_rows("orders"), "order_id", [1, 1, 2]))], "run-1", DS, docs=docs
    )
    assert record_results(warehouse, result, settings=SETTINGS) == len(result.outcomes)
    assert record_results(warehouse, result, settings=SETTINGS) == len(
        result.outcomes
    )  # a retry replaces, never appends
    record_results(warehouse, bad, settings=SETTINGS)
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
    with duckdb.connect(str(warehouse), read_only=True) as con:
        runs = con.execute(
            "select gate, status, failed, expectations, reason from ops.gate_runs order by gate"
        ).fetchall()
    assert runs == [
        ("gate1", "failed", 1, len(bad.outcomes), bad.reason),
        ("gate2", "failed", 1, len(result.outcomes), result.reason),
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


# --- gate 1: freshness and severities ----------------------------------------------------------


def test_gate1_fails_rows_changed_outside_the_batch_day(tmp_path, docs):
    # A batch for DS carrying a row last changed the day before: the extract window is wrong.
    rows = good_rows("orders")
    rows["updated_at"] = [dt.datetime(2026, 3, 3, 9), dt.datetime(2026, 3, 2, 23, 59), dt.datetime(2026, 3, 3, 23)]
    result = validate_landed_batch("orders", [land(tmp_path, "orders", rows)], "stale-run", DS, docs=docs)
    assert not result.success
    assert failed(result) == {"expect_column_values_to_be_between(updated_at)"}
    assert "1 of 3 unexpected" in result.reason


def test_gate1_fails_rows_from_after_the_batch_day(tmp_path, docs):
    rows = good_rows("orders")
    rows["updated_at"] = [dt.datetime(2026, 3, 3, 9), dt.datetime(2026, 3, 4, 0, 0), dt.datetime(2026, 3, 3, 23)]
    result = validate_landed_batch("orders", [land(tmp_path, "orders", rows)], "future-run", DS, docs=docs)
    assert failed(result) == {"expect_column_values_to_be_between(updated_at)"}


def test_gate1_lagging_insert_only_source_warns_but_passes(tmp_path, docs):
    # web_events may carry late rows (key watermark): older rows pass, but a batch whose newest
    # event is from before the day is a warning, recorded and reported without blocking.
    stamp = dt.datetime(2026, 3, 2, 22)
    rows = {
        "event_id": [1, 2],
        "session_id": ["s1", "s1"],
        "visitor_id": ["v1", "v1"],
        "customer_id": [None, None],
        "event_type": ["session_start", "page_view"],
        "experiment_key": ["checkout_button", "checkout_button"],
        "experiment_variant": ["control", "control"],
        "order_id": [None, None],
        "occurred_at": [stamp, stamp],
        "created_at": [stamp, stamp],
    }
    result = validate_landed_batch("web_events", [land(tmp_path, "web_events", rows)], "late-run", DS, docs=docs)
    assert result.success, result.reason
    assert result.status == "warned" and result.failures == ()
    assert [o.label for o in result.warnings] == ["expect_column_max_to_be_between(created_at)"]
    assert result.reason.startswith(f"gate1 raw.web_events ds={DS} passed with 1 warning")
    assert "2026-03-02T22:00:00" in result.reason
    result.raise_for_failure()  # warnings never block


def test_warnings_are_recorded_as_warned(tmp_path, docs):
    warehouse = make_warehouse(tmp_path / "w.duckdb")
    stamp = dt.datetime(2026, 3, 2, 22)
    rows = {
        "event_id": [1],
        "session_id": ["s1"],
        "visitor_id": ["v1"],
        "customer_id": [None],
        "event_type": ["page_view"],
        "experiment_key": ["checkout_button"],
        "experiment_variant": ["treatment"],
        "order_id": [None],
        "occurred_at": [stamp],
        "created_at": [stamp],
    }
    result = validate_landed_batch("web_events", [land(tmp_path, "web_events", rows)], "late-run", DS, docs=docs)
    record_results(warehouse, result, settings=SETTINGS)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        statuses = dict(
            con.execute("select status, count(*) from ops.data_health where gate = 'gate1' group by 1").fetchall()
        )
        severity = con.execute(
            "select severity from ops.data_health where status = 'warned' and gate = 'gate1'"
        ).fetchall()
        run = con.execute("select status, failed, warned from ops.gate_runs where gate = 'gate1'").fetchone()
    assert statuses == {"passed": len(result.outcomes) - 1, "warned": 1}
    assert severity == [("warning",)]
    assert run == ("warned", 0, 1)


# --- gate 2: every day present, the run's day, KPI anomalies -----------------------------------


def test_gate2_fails_on_a_day_that_was_never_loaded(tmp_path, docs):
    # The mart's calendar spine turns a day that was never landed into a zero day, not a gap.
    warehouse = make_warehouse(tmp_path / "w.duckdb", unloaded_day=DAYS[3])
    result = validate_marts(warehouse, "run-unloaded", docs=docs, settings=SETTINGS)
    assert failed(result) == {"expect_column_values_to_be_null(unloaded_revenue_date)"}
    assert "observed 1 of 5 unexpected, e.g. ['2026-03-04']" in result.reason


def test_gate2_fails_when_the_run_day_is_not_in_the_mart(tmp_path, docs):
    warehouse = make_warehouse(tmp_path / "w.duckdb")
    assert validate_marts(warehouse, "run-ok", ds=DAYS[-1], docs=docs, settings=SETTINGS).success
    result = validate_marts(warehouse, "run-late", ds=DAYS[-1] + dt.timedelta(days=1), docs=docs, settings=SETTINGS)
    assert failed(result) == {"expect_column_max_to_be_between(revenue_date)"}
    assert "observed 2026-03-05" in result.reason and result.ds == "2026-03-06"


def test_gate2_without_a_run_date_needs_the_newest_loaded_day(tmp_path, docs):
    # elt_marts runs on data, not on a date: the mart must reach the newest fully loaded day.
    warehouse = make_warehouse(tmp_path / "w.duckdb")
    with duckdb.connect(str(warehouse)) as con:
        write_ledger(con, [DAYS[-1] + dt.timedelta(days=1)])
    result = validate_marts(warehouse, "run-behind", docs=docs, settings=SETTINGS)
    assert failed(result) == {"expect_column_max_to_be_between(revenue_date)"}
    outcome = result.failures[0]
    assert outcome.details["kwargs"]["min_value"] == "2026-03-06" and outcome.observed_value == "2026-03-05"


HISTORY = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(40)]


def revenue_warehouse(path: Path, nets: dict[dt.date, float]) -> Path:
    """A mart with the given daily net revenue (gross = net + 10), every day loaded."""
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.fct_daily_revenue (revenue_date date, gross_revenue_eur decimal(18, 2), "
            "returns_eur decimal(18, 2), net_revenue_eur decimal(18, 2), orders bigint, "
            "average_order_value_eur decimal(18, 2))"
        )
        con.executemany(
            "insert into marts.fct_daily_revenue values (?, ?, 10, ?, 10, ?)",
            [(day, net + 10, net, (net + 10) / 10) for day, net in sorted(nets.items())],
        )
        write_ledger(con, sorted(nets))
    return path


def ordinary(day: dt.date) -> float:
    """Net revenue with some noise: 1000 +/- 5 % (so the bounds are the share floors: 50 %, 30 %)."""
    return 1000 + 20 * ((day.toordinal() * 3) % 5 - 2) + 5 * (day.toordinal() % 3)


@pytest.fixture
def published_history(tmp_path) -> Path:
    """A serving file holding the first 39 days (what dashboards show)."""
    from serving.publish import publish

    nets = {day: ordinary(day) for day in HISTORY[:-1]}
    serving = tmp_path / "serving.duckdb"
    publish(
        revenue_warehouse(tmp_path / "published.duckdb", nets),
        serving,
        "published",
        require_audit=False,
        settings=SETTINGS,
    )
    return serving


def anomaly_result(tmp_path, docs, serving: Path | None, nets: dict[dt.date, float], run: str):
    warehouse = revenue_warehouse(tmp_path / f"{run}.duckdb", nets)
    return validate_marts(warehouse, run, ds=HISTORY[-1], serving_path=serving, docs=docs, settings=SETTINGS)


def test_gate2_passes_an_ordinary_new_day(tmp_path, docs, published_history):
    nets = {day: ordinary(day) for day in HISTORY}
    result = anomaly_result(tmp_path, docs, published_history, nets, "ordinary")
    assert result.success and result.status == "passed", result.reason


def test_gate2_blocks_a_kpi_spike(tmp_path, docs, published_history):
    nets = {day: ordinary(day) for day in HISTORY}
    nets[HISTORY[-1]] = 10 * ordinary(HISTORY[-1])  # e.g. prices landed in cents as euros
    result = anomaly_result(tmp_path, docs, published_history, nets, "spike")
    assert not result.success
    assert failed(result) == {"expect_column_values_to_be_null(net_revenue_eur_anomaly)"}
    assert f"{HISTORY[-1]}: net_revenue_eur {nets[HISTORY[-1]]:.2f} outside [" in result.reason
    assert "of 28 days before" in result.reason


def test_gate2_blocks_a_day_that_collapsed(tmp_path, docs, published_history):
    nets = {day: ordinary(day) for day in HISTORY}
    nets[HISTORY[-1]] = 0.0
    result = anomaly_result(tmp_path, docs, published_history, nets, "collapse")
    assert failed(result) == {"expect_column_values_to_be_null(net_revenue_eur_anomaly)"}


def test_gate2_warns_on_an_unusual_day_without_blocking(tmp_path, docs, published_history):
    nets = {day: ordinary(day) for day in HISTORY}
    nets[HISTORY[-1]] = 1.4 * ordinary(HISTORY[-1])  # a good promotion day
    result = anomaly_result(tmp_path, docs, published_history, nets, "promo")
    assert result.success and result.status == "warned", result.reason
    assert [o.label for o in result.warnings] == ["expect_column_values_to_be_null(net_revenue_eur_unusual)"]


def test_gate2_bounds_come_from_the_published_history(tmp_path, docs, published_history):
    # A build that doubles every day: each day looks normal next to its (doubled) neighbours,
    # but against what was published every restated day is a spike.
    doubled = {day: 2 * ordinary(day) for day in HISTORY}
    result = anomaly_result(tmp_path, docs, published_history, doubled, "doubled")
    assert failed(result) == {"expect_column_values_to_be_null(net_revenue_eur_anomaly)"}
    unexpected = next(o for o in result.failures).details["result"]["unexpected_count"]
    assert unexpected == len(HISTORY) - 14  # every day with 14+ days of history before it
    # Without a published file the candidate's own history is all there is.
    alone = anomaly_result(tmp_path, docs, None, doubled, "doubled-unpublished")
    assert alone.success, alone.reason


def test_gate2_does_not_judge_published_days_again(tmp_path, docs, published_history):
    # A spike that was published (e.g. accepted before this check existed) is history now.
    from serving.publish import publish

    nets = {day: ordinary(day) for day in HISTORY[:-1]}
    nets[HISTORY[30]] = 5 * ordinary(HISTORY[30])
    publish(
        revenue_warehouse(tmp_path / "p2.duckdb", nets), published_history, "p2", require_audit=False, settings=SETTINGS
    )
    nets[HISTORY[-1]] = ordinary(HISTORY[-1])
    result = anomaly_result(tmp_path, docs, published_history, nets, "after-spike")
    assert result.success, result.reason


# --- personal data never reaches the results ----------------------------------------------------


def test_values_of_personal_columns_are_not_recorded():
    """A check listing unexpected e-mail addresses records their count, never the addresses."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd

    from quality.results import outcomes_from_validation
    from quality.specs import personal_columns

    assert personal_columns("customers")["email"] == "pii:email"
    assert "country_code" not in personal_columns("customers")
    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("p")
        .add_dataframe_asset("customers")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": pd.DataFrame({"email": ["ana@example.com", "bad"], "n": [1, 2]})})
    )
    suite = gx.ExpectationSuite(
        "s",
        expectations=[
            gxe.ExpectColumnValuesToMatchRegex(column="email", regex="^[^@]+@[^@]+$"),
            gxe.ExpectColumnValuesToBeBetween(column="n", min_value=5),
        ],
    )
    validation = batch.validate(suite, result_format="SUMMARY")
    email, number = outcomes_from_validation("raw.customers", "customers", validation, personal_columns("customers"))
    assert email.observed_value == "1 of 2 unexpected, values of a pii:email column are not recorded"
    assert "bad" not in json.dumps(email.details) and email.details["result"]["unexpected_count"] == 1
    assert number.observed_value == "2 of 2 unexpected, e.g. [1, 2]"  # other columns keep their evidence

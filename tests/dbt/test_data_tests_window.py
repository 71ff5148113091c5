"""Daily data tests check the rows a build changed (dbt_project/macros/data_tests_window.sql): a
bad batch fails them, and fails them again on a rerun until it is fixed; rows audited before are
not read again, except by the weekly whole-table run (`data_tests_scope: all`)."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from tests.dbt.fixture_warehouse import run_dbt

pytestmark = pytest.mark.slow  # builds the dbt project on a simulated shop (real dbt processes)

WINDOWED = {
    "stg_shop__customers",
    "dim_customers",
    "int_customer_order_days",
    "stg_shop__web_events",
    "stg_shop__orders",
    "stg_shop__order_items",
    "stg_shop__returns",
    "fct_sessions",
    "int_experiment_visitors",
    "fct_order_lines",
    "fct_customer_churn_features",
}
EVENT_TYPES = "accepted_values_stg_shop__web_events_event_type"


def _watermarks(path) -> dict[str, object]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "select model_name, max(audited_through), count(distinct invocation_id) "
            "from ops.data_test_watermarks group by model_name"
        ).fetchall()
    return {model: (through, builds) for model, through, builds in rows}


def _copy(built, tmp_path):
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(built.warehouse_path, copy)
    return copy, {**built.env, "WAREHOUSE_PATH": str(copy), "DBT_TARGET_PATH": str(tmp_path / "target")}


def test_passing_builds_record_how_far_each_windowed_model_is_audited(built):
    watermarks = _watermarks(built.warehouse_path)
    assert set(watermarks) == WINDOWED
    assert all(builds == 2 for _, builds in watermarks.values()), watermarks  # both fixture builds passed
    newest_load = built.query("select max(loaded_at) from staging.stg_shop__web_events")[0][0]
    assert watermarks["stg_shop__web_events"][0] == newest_load
    # the generic tests of those models read the watermark; the others do not
    compiled = built.target_path / "compiled"
    windowed = next(compiled.glob("**/not_null_stg_shop__web_events_session_id.sql")).read_text()
    whole = next(compiled.glob("**/unique_stg_shop__products_product_id*.sql")).read_text()
    assert "ops.data_test_watermarks" in windowed and "ops.data_test_watermarks" not in whole


def test_a_bad_batch_fails_the_daily_tests_and_again_on_the_rerun(built, tmp_path):
    copy, env = _copy(built, tmp_path)
    with duckdb.connect(str(copy)) as con:
        # a web event of a type the shop does not have, loaded now
        con.execute(
            "insert into raw.web_events by name select * replace (event_id + 200000000 as event_id, "
            "'teleport' as event_type, cast(now() as timestamp) as _loaded_at) "
            "from raw.web_events where event_id = (select max(event_id) from raw.web_events)"
        )
    before = _watermarks(copy)["stg_shop__web_events"]
    first = run_dbt(env, "build", "--select", "stg_shop__web_events", check=False)
    assert first.returncode != 0 and EVENT_TYPES in first.stdout, first.stdout[-3000:]
    assert _watermarks(copy)["stg_shop__web_events"] == before  # a failed test records nothing
    # The rerun has nothing new to load (the model took the row in); the row is still unaudited.
    rerun = run_dbt(env, "build", "--select", "stg_shop__web_events", check=False)
    assert rerun.returncode != 0 and EVENT_TYPES in rerun.stdout, rerun.stdout[-3000:]


def test_audited_rows_are_left_to_the_weekly_whole_table_run(built, tmp_path):
    copy, env = _copy(built, tmp_path)
    with duckdb.connect(str(copy)) as con:
        # an old row, audited by the builds, broken afterwards by hand
        con.execute(
            "update staging.stg_shop__web_events set event_type = 'teleport' "
            "where event_id = (select min(event_id) from staging.stg_shop__web_events)"
        )
    daily = run_dbt(env, "test", "--select", "stg_shop__web_events", check=False)
    assert daily.returncode == 0, daily.stdout[-3000:]
    weekly = run_dbt(env, "test", "--select", "stg_shop__web_events", "--vars", "{data_tests_scope: all}", check=False)
    assert weekly.returncode != 0 and EVENT_TYPES in weekly.stdout, weekly.stdout[-3000:]
    full_refresh = run_dbt(env, "build", "--select", "stg_shop__web_events", "--full-refresh", check=False)
    assert full_refresh.returncode == 0, full_refresh.stdout[-3000:]  # rebuilt from raw, tested whole


FUNNEL = "assert_funnel_counts_every_session"


def test_the_funnel_check_catches_a_new_session_that_fct_sessions_did_not_take_in(built, tmp_path):
    """The daily funnel check reads only the unaudited events, yet a session of theirs missing from
    fct_sessions fails it; once fct_sessions and the funnel are rebuilt it passes. The weekly run
    compares every staging session with fct_sessions."""
    copy, env = _copy(built, tmp_path)
    with duckdb.connect(str(copy)) as con:
        # a purchase in a session nobody has seen, loaded now
        con.execute(
            "insert into raw.web_events by name select * replace (event_id + 300000000 as event_id, "
            "session_id || '-new' as session_id, 'purchase' as event_type, cast(now() as timestamp) as _loaded_at) "
            "from raw.web_events where event_id = (select max(event_id) from raw.web_events)"
        )
    before = _watermarks(copy)
    run_dbt(env, "run", "--select", "stg_shop__web_events")  # staging takes it in, fct_sessions does not
    stale = run_dbt(env, "test", "--select", FUNNEL, check=False)
    assert stale.returncode != 0, stale.stdout[-3000:]
    assert "missing from fct_sessions" in _failures(env, tmp_path)

    run_dbt(env, "run", "--select", "fct_sessions", "fct_daily_funnel")
    assert run_dbt(env, "test", "--select", FUNNEL, check=False).returncode == 0
    # one test passing does not mark the rows audited: the models' other tests have not seen them
    assert _watermarks(copy) == before
    with duckdb.connect(str(copy)) as con:  # an old session lost, and the funnel counting without it
        con.execute(
            "create temp table lost as select * from marts.fct_sessions "
            "where session_id = (select min(session_id) from marts.fct_sessions)"
        )
        con.execute("delete from marts.fct_sessions where session_id in (select session_id from lost)")
        con.execute(
            "update marts.fct_daily_funnel as f set sessions = f.sessions - 1, "
            "purchase_sessions = f.purchase_sessions - (case when lost.has_purchased then 1 else 0 end) from lost "
            "where (f.session_date, f.experiment_key, f.experiment_variant) "
            "is not distinct from (lost.session_date, lost.experiment_key, lost.experiment_variant)"
        )
    assert _failures(env, tmp_path) == ""  # the daily check does not read audited rows
    # the weekly run's query (a singular test fails when its query returns rows)
    problems = _failures(env, tmp_path, "{data_tests_scope: all}")
    assert "missing from fct_sessions" in problems and "staging " in problems, problems


def _failures(env: dict[str, str], tmp_path, dbt_vars: str = "{}") -> str:
    """The problems the funnel check reports, by running its compiled SQL on the warehouse."""
    run_dbt(env, "compile", "--select", FUNNEL, "--vars", dbt_vars)
    sql = next((tmp_path / "target" / "compiled").glob(f"**/{FUNNEL}.sql")).read_text()
    with duckdb.connect(env["WAREHOUSE_PATH"], read_only=True) as con:
        return "\n".join(row[0] for row in con.execute(sql).fetchall())

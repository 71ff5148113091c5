"""The feature mart is point in time: features at an as-of date never change when later data arrives."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pandas as pd

from ml.features import FEATURE_TABLE, FEATURES, KEY, LABEL, load_features
from tests.dbt.fixture_warehouse import run_dbt
from tests.ml.conftest import Shop


def test_features_at_a_date_do_not_change_when_later_data_arrives(shop: Shop) -> None:
    early = load_features(shop.early)
    late = load_features(shop.late)
    # The later 20 days really changed the past's raw data: new orders of old customers, returns of
    # old orders, status updates. The snapshots both builds share must still be identical.
    shared = sorted(set(early["as_of_date"]) & set(late["as_of_date"]) - {early["as_of_date"].max()})
    assert len(shared) >= 6, shared
    columns = [*KEY, *FEATURES]
    before = early[early["as_of_date"].isin(shared)][columns].reset_index(drop=True)
    after = late[late["as_of_date"].isin(shared)][columns].reset_index(drop=True)
    assert len(before) > 1000
    pd.testing.assert_frame_equal(before, after)

    # A label already complete in the early build is final; later builds complete the others.
    complete = early[early["has_complete_label"]][[*KEY, LABEL]]
    assert complete[LABEL].notna().all()
    both = complete.merge(late[[*KEY, LABEL]], on=list(KEY), suffixes=("_early", "_late"))
    assert len(both) == len(complete) and (both[f"{LABEL}_early"] == both[f"{LABEL}_late"]).all()
    assert late["has_complete_label"].sum() > early["has_complete_label"].sum()
    # The scoring snapshot (the day after the last order day) has no label yet.
    assert late.loc[late["is_latest"], LABEL].isna().all()


def test_the_marts_own_tests_ran_and_passed(shop: Shop) -> None:
    # dbt build ran the mart's tests, including the singular point-in-time reconciliation.
    assert "assert_churn_features_are_point_in_time" in shop.build_stdout
    assert "ERROR=0" in shop.build_stdout and "FAIL=0" not in shop.build_stdout.replace("FAIL=0", "")


def test_an_incremental_build_equals_a_full_refresh(shop: Shop, tmp_path: Path) -> None:
    # The late stage built on top of the early table: it kept the snapshots it held and built only
    # the missing as-of dates (the compiled SQL reads the dates the table holds) ...
    target = Path(shop.dbt_env["DBT_TARGET_PATH"])
    compiled = next(target.glob("compiled/**/fct_customer_churn_features.sql")).read_text()
    assert "this_run.as_of_date" in compiled
    # ... carrying each customer's totals from before its recent window (90 days before the first
    # date it built, the Monday after the early build's newest complete snapshot) rather than
    # windowing the whole history: the early build has plenty of orders before that day.
    with duckdb.connect(str(shop.early), read_only=True) as con:
        complete_until = con.execute(
            f"select max(as_of_date) from {FEATURE_TABLE} where has_complete_label"
        ).fetchone()[0]
        carried_orders = con.execute(
            "select count(*) from raw.orders where cast(ordered_at as date) < ?",
            [complete_until + dt.timedelta(days=7 - 90)],
        ).fetchone()[0]
    assert carried_orders > 1000, (complete_until, carried_orders)
    # ... and a full rebuild from the same raw data gives exactly the same rows, whether it builds
    # the as-of dates three at a time (the post-hook inserts the batches after the first, the last
    # dates one by one), all in one statement, or every date on its own (the grouped aggregate a
    # daily run uses, instead of the windows of a batch) split into statements of a share of
    # each date's customers (as a large date is).
    with duckdb.connect(str(shop.late), read_only=True) as con:
        dates = con.execute(f"select count(distinct as_of_date) from {FEATURE_TABLE}").fetchone()[0]
    assert dates > 9, "enough as-of dates for several batches of three"
    for batch, one_by_one, per_statement in ((3, 3, 10**6), (1000, 3, 10**6), (1000, 1000, 150)):
        rebuilt = tmp_path / f"full-refresh-{batch}-{one_by_one}-{per_statement}.duckdb"
        shutil.copyfile(shop.late, rebuilt)
        target = tmp_path / f"target-{batch}-{one_by_one}-{per_statement}"
        env = {**shop.dbt_env, "WAREHOUSE_PATH": str(rebuilt), "DBT_TARGET_PATH": str(target)}
        env["DBT_LOG_PATH"] = str(target / "logs")
        run_dbt(
            env,
            "run",
            "--full-refresh",
            "--select",
            "fct_customer_churn_features",
            "--vars",
            f"{{churn_dates_per_batch: {batch}, churn_dates_one_by_one: {one_by_one}, "
            f"churn_customers_per_statement: {per_statement}}}",
        )
        # dbt rotates its log file past 10 MB (dbt.log.1, ...): the statements of one run may span several
        log = "".join(path.read_text() for path in (target / "logs").glob("dbt.log*"))
        inserts = log.count(f'insert into "{rebuilt.stem}"."ml"."fct_customer_churn_features"')
        statements = len(_statement_sizes(dates, batch, one_by_one)) - 1  # the model's own builds the first
        if per_statement < 10**6:  # the dates after the first in several statements each
            assert inserts > statements, (batch, one_by_one, per_statement, inserts)
        else:
            assert inserts == statements, (batch, one_by_one, inserts)
        with duckdb.connect() as con:
            con.execute(f"attach '{shop.late}' as incremental (read_only)")
            con.execute(f"attach '{rebuilt}' as full_refresh (read_only)")
            rows = con.execute(f"select count(*) from full_refresh.{FEATURE_TABLE}").fetchall()[0][0]
            assert rows > 10_000
            for a, b in (("incremental", "full_refresh"), ("full_refresh", "incremental")):
                extra = con.execute(
                    f"select count(*) from (select * from {a}.{FEATURE_TABLE} "
                    f"except all select * from {b}.{FEATURE_TABLE})"
                ).fetchall()[0][0]
                assert extra == 0, f"{batch}/{one_by_one}: {extra} rows in the {a} build that the {b} build lacks"


def _statement_sizes(dates: int, batch: int, one_by_one: int) -> list[int]:
    """The as-of dates each statement builds: batches, then one by one once few are left."""
    sizes: list[int] = []
    while dates > 0:
        sizes.append(1 if dates <= one_by_one else min(batch, dates))
        dates -= sizes[-1]
    return sizes


def test_the_point_in_time_check_fails_on_a_snapshot_that_counts_an_order_it_cannot_have_seen(
    shop: Shop, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.duckdb"
    shutil.copyfile(shop.late, broken)
    with duckdb.connect(str(broken)) as con:
        as_of, customer = con.execute(
            f"select as_of_date, customer_id from {FEATURE_TABLE} where orders_total > 0 "
            "order by as_of_date, customer_id limit 1"
        ).fetchone()
        # one order more than the staging orders before its as-of date: a leak from the future
        con.execute(
            f"update {FEATURE_TABLE} set orders_total = orders_total + 1 where as_of_date = ? and customer_id = ?",
            [as_of, customer],
        )
    target = tmp_path / "target"
    env = {**shop.dbt_env, "WAREHOUSE_PATH": str(broken), "DBT_TARGET_PATH": str(target)}
    env["DBT_LOG_PATH"] = str(target / "logs")
    result = run_dbt(
        env,
        "test",
        "--select",
        "assert_churn_features_are_point_in_time",
        "--vars",
        "{data_tests_scope: all}",
        check=False,
    )
    assert result.returncode != 0
    assert "Got 1 result" in result.stdout, result.stdout[-2000:]


def test_a_daily_build_tests_the_snapshots_it_rewrote_and_leaves_the_others_to_the_weekly_run(
    shop: Shop, tmp_path: Path
) -> None:
    """The daily data tests of the mart see the snapshots a build rewrote since the last passing tests
    (the latest, newer dates, and Mondays whose label has completed since), not the Mondays still
    waiting for their label, which no daily build touches; the weekly whole-table run sees every row."""
    daily = tmp_path / "daily.duckdb"
    shutil.copyfile(shop.late, daily)
    with duckdb.connect(str(shop.early), read_only=True) as con:
        audited = con.execute(f"select max(as_of_date) from {FEATURE_TABLE}").fetchone()[0]
    with duckdb.connect(str(daily)) as con:
        # as if the last passing tests were those of the early build: its latest as-of date audited
        con.execute("delete from ops.data_test_watermarks where model_name = 'fct_customer_churn_features'")
        con.execute(
            "insert into ops.data_test_watermarks values ('fct_customer_churn_features', ?, 'early', now())",
            [audited],
        )
        completed_since = con.execute(
            f"select min(as_of_date) from {FEATURE_TABLE} where has_complete_label and as_of_date + 30 > ?",
            [audited],
        ).fetchone()[0]
        still_open = con.execute(
            f"select max(as_of_date) from {FEATURE_TABLE} where not has_complete_label and as_of_date < ?",
            [audited],
        ).fetchone()[0]
    assert completed_since is not None and still_open is not None, (audited, completed_since, still_open)

    target = tmp_path / "target"
    env = {**shop.dbt_env, "WAREHOUSE_PATH": str(daily), "DBT_TARGET_PATH": str(target)}
    env["DBT_LOG_PATH"] = str(target / "logs")

    def shift_orders_total(as_of: dt.date, delta: int) -> None:
        """Move one snapshot row's order count (the first customer with orders that day)."""
        with duckdb.connect(str(daily)) as con:
            con.execute(
                f"update {FEATURE_TABLE} set orders_total = orders_total + ? where as_of_date = ? and customer_id = "
                f"(select min(customer_id) from {FEATURE_TABLE} where as_of_date = ? and orders_total > 0)",
                [delta, as_of, as_of],
            )

    def point_in_time_check(as_of: dt.date, *scope: str):
        """One snapshot row counting an order it cannot have seen, then the point-in-time test."""
        shift_orders_total(as_of, 1)
        try:
            return run_dbt(env, "test", "--select", "assert_churn_features_are_point_in_time", *scope, check=False)
        finally:
            shift_orders_total(as_of, -1)  # put the row back

    rewritten = point_in_time_check(completed_since)
    assert rewritten.returncode != 0 and "Got 1 result" in rewritten.stdout, rewritten.stdout[-2000:]
    untouched = point_in_time_check(still_open)
    assert untouched.returncode == 0, untouched.stdout[-2000:]
    weekly = point_in_time_check(still_open, "--vars", "{data_tests_scope: all}")
    assert weekly.returncode != 0 and "Got 1 result" in weekly.stdout, weekly.stdout[-2000:]

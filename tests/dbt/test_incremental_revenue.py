"""The incremental revenue and experiment marts on a load that changes only earlier days.

The fixture's second load brings the whole reference-rate history at once, so its incremental run
recomputes every revenue date (every date from the first rate on): the incremental == full refresh
test in test_incremental.py cannot tell a mart that recomputes exactly the changed dates from one
that recomputes everything. Here a third load, on a copy of the fixture warehouse, changes a few
earlier days only, the way a daily load does:

- every order of an early day is cancelled (a day with no return: it must disappear, although no new
  row replaces it);
- the only order of one segment on another day is cancelled (that segment-day must go, the day stays);
- a return is booked on an old day (its returns and net revenue change);
- a reference rate of a recent business day is corrected (the reference columns from that day on);
- a visitor who never bought comes back and buys (their experiment row, and the results).

Then the marts after an incremental run must equal a full refresh and show each change; and on a
copy whose rows of an untouched day and visitor were marked beforehand, the run must have left
those rows alone (it recomputes the changed days and visitors, not the history).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from tests.dbt.fixture_warehouse import run_dbt

pytestmark = pytest.mark.slow  # dbt runs on a copy of the fixture warehouse

MODELS = {
    "fct_daily_revenue": "marts",
    "fct_daily_revenue_by_segment": "marts",
    "int_experiment_visitors": "marts",
    "fct_experiment_results": "marts",
}
SELECT = ("+fct_daily_revenue", "+fct_daily_revenue_by_segment", "+fct_experiment_results")
RESTATED_AT = dt.datetime(2030, 1, 1)  # later than every version the fixture wrote (updated_at)
MARK = dt.datetime(2000, 1, 1)  # a loaded_at no real row has


@dataclass(frozen=True)
class Restated:
    before: Path  # the fixture warehouse as the fixture left it (a copy)
    incremental: Path  # after the third load and an incremental run
    full_refresh: Path  # the same load, then a full refresh
    marked: Path  # the same load, some rows marked beforehand, then an incremental run
    target: Path  # the incremental run's dbt artifacts
    cancelled_day: dt.date
    segment: tuple  # (day, country_code, channel, currency) whose only order was cancelled
    return_day: dt.date
    refund_eur: float  # the new return's refund (12.34 in its order's currency) in EUR
    rate_day: dt.date
    visitor_id: str
    untouched_day: dt.date
    untouched_visitor: str


def _restate(con: duckdb.DuckDBPyConnection) -> dict:
    """Write the third load into raw (new versions, loaded now), and return what it changed."""
    one = lambda sql, params=None: con.execute(sql, params or []).fetchone()  # noqa: E731
    loaded_at = one("select max(_loaded_at) from raw.orders")[0] + dt.timedelta(hours=1)

    # the first day without a return: all its orders get cancelled
    cancelled_day = one(
        "select min(ordered_date) from marts.fct_order_lines where ordered_date not in "
        "(select returned_date from intermediate.int_returns_converted)"
    )[0]
    # a later day's segment with a single order and no return: that order gets cancelled
    segment = one(
        "select revenue_date, country_code, channel, currency from marts.fct_daily_revenue_by_segment "
        "where orders = 1 and returns_eur = 0 and revenue_date > ? "
        "and (select count(*) from marts.fct_daily_revenue_by_segment as day where day.revenue_date = "
        "fct_daily_revenue_by_segment.revenue_date) > 1 order by all limit 1",
        [cancelled_day + dt.timedelta(days=1)],
    )
    cancelled_orders = [
        row[0]
        for row in con.execute(
            "select distinct order_id from marts.fct_order_lines where not is_cancelled and (ordered_date = ? "
            "or (ordered_date, country_code, channel, currency) = (?, ?, ?, ?))",
            [cancelled_day, *segment],
        ).fetchall()
    ]
    con.execute(
        "insert into raw.orders select * replace ('cancelled' as order_status, ? as updated_at, "
        "'restate' as _run_id, ? as _loaded_at) "
        "from raw.orders where order_id in (select unnest(?::bigint[])) "
        "qualify row_number() over (partition by order_id order by updated_at desc, _ds desc) = 1",
        [RESTATED_AT, loaded_at, cancelled_orders],
    )

    # a return booked on an old day (after the cancelled ones), of a line ordered that day
    return_day = segment[0] + dt.timedelta(days=1)
    order_item_id, order_id, refund_eur = one(
        "select min(order_item_id), arg_min(order_id, order_item_id), "
        "12.34 * arg_min(eur_exchange_rate, order_item_id) "
        "from marts.fct_order_lines where ordered_date = ? and not is_cancelled",
        [return_day],
    )
    returned_at = dt.datetime.combine(return_day, dt.time(23, 0))
    con.execute(
        "insert into raw.returns values ((select max(return_id) + 1 from raw.returns), ?, ?, 1, 1234, "
        "'changed_mind', ?, ?, ?, ?, 'restate', ?)",
        [order_item_id, order_id, returned_at, returned_at, returned_at, return_day, loaded_at],
    )

    # a corrected reference rate of a recent business day
    rate_day = one(
        "select max(rate_date) from raw.exchange_rates where currency = 'USD' "
        "and rate_date <= (select max(rate_date) - 6 from raw.exchange_rates)"
    )[0]
    con.execute(
        "insert into raw.exchange_rates select rate_date, currency, eur_rate * 1.01, _ds, 'restate', ? "
        "from raw.exchange_rates where currency = 'USD' and rate_date = ? "
        "qualify row_number() over (order by _ds desc, _loaded_at desc) = 1",
        [loaded_at, rate_day],
    )

    # a visitor of the first day who never bought comes back on the last day and buys
    visitor_id, experiment_key, variant = one(
        "select visitor_id, min(experiment_key), min(experiment_variant) from raw.web_events "
        "group by visitor_id having count(*) filter (where event_type = 'purchase') = 0 "
        "order by min(occurred_at), visitor_id limit 1"
    )
    first_event, last_at, last_ds = one("select max(event_id) + 1, max(occurred_at), max(_ds) from raw.web_events")
    for n, event_type in enumerate(("session_start", "purchase")):
        occurred_at = last_at + dt.timedelta(minutes=1 + n)
        con.execute(
            "insert into raw.web_events values (?, 'restated-session', ?, null, ?, ?, ?, null, ?, ?, ?, 'restate', ?)",
            [first_event + n, visitor_id, event_type, experiment_key, variant, occurred_at, occurred_at, last_ds,
             loaded_at],
        )  # fmt: skip
    return {
        "cancelled_day": cancelled_day,
        "segment": tuple(segment),
        "return_day": return_day,
        "refund_eur": refund_eur,
        "rate_day": rate_day,
        "visitor_id": visitor_id,
    }


@pytest.fixture(scope="module")
def restated(built, tmp_path_factory: pytest.TempPathFactory) -> Restated:
    root = tmp_path_factory.mktemp("restated")
    before, incremental, full_refresh = root / "before.duckdb", root / "incremental.duckdb", root / "full.duckdb"
    marked = root / "marked.duckdb"
    shutil.copyfile(built.warehouse_path, before)
    shutil.copyfile(built.warehouse_path, incremental)
    with duckdb.connect(str(incremental)) as con:
        changes = _restate(con)
    shutil.copyfile(incremental, full_refresh)
    # a third copy whose marts mark (loaded_at = MARK) the rows of a day and a visitor nothing
    # changed, and of the day that lost a segment and the visitor who came back: the run must rewrite
    # the latter and keep the former (the newest loaded_at, the watermark, is not among them)
    shutil.copyfile(incremental, marked)
    with duckdb.connect(str(marked)) as con:
        untouched_day = changes["return_day"] + (changes["rate_day"] - changes["return_day"]) / 2
        returning_visitor = con.execute(
            "select min(visitor_hash) from marts.fct_sessions where session_id in "
            "(select session_id from raw.web_events where visitor_id = ?)",
            [changes["visitor_id"]],
        ).fetchone()[0]
        untouched_visitor = con.execute(
            "select min(visitor_hash) from marts.int_experiment_visitors where visitor_hash != ?", [returning_visitor]
        ).fetchone()[0]
        con.execute(
            "update marts.fct_daily_revenue_by_segment set loaded_at = ? where revenue_date in (?, ?)",
            [MARK, untouched_day, changes["segment"][0]],
        )
        con.execute(
            "update marts.int_experiment_visitors set loaded_at = ? where visitor_hash in (?, ?)",
            [MARK, untouched_visitor, returning_visitor],
        )

    target = root / "target-incremental"
    run_dbt(
        {**built.env, "WAREHOUSE_PATH": str(incremental), "DBT_TARGET_PATH": str(target)}, "run", "--select", *SELECT
    )
    marked_env = {**built.env, "WAREHOUSE_PATH": str(marked), "DBT_TARGET_PATH": str(root / "target-marked")}
    run_dbt(marked_env, "run", "--select", *SELECT)
    full_env = {**built.env, "WAREHOUSE_PATH": str(full_refresh), "DBT_TARGET_PATH": str(root / "target-full")}
    run_dbt(full_env, "run", "--full-refresh", "--select", *SELECT)
    return Restated(
        before=before,
        incremental=incremental,
        full_refresh=full_refresh,
        marked=marked,
        target=target,
        untouched_day=untouched_day,
        untouched_visitor=untouched_visitor,
        **changes,
    )


def _connect(restated: Restated) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name in ("before", "incremental", "full_refresh"):
        con.execute(f"attach '{getattr(restated, name)}' as {name} (read_only)")
    return con


def test_the_third_load_took_the_incremental_path(restated):
    for model, schema in MODELS.items():
        if model == "fct_experiment_results":
            continue  # a table, rebuilt from int_experiment_visitors
        compiled = next(restated.target.glob(f"compiled/**/{model}.sql")).read_text()
        assert "loaded_at > (" in compiled, model
        executed = next(restated.target.glob(f"run/**/{model}.sql")).read_text()
        assert f'delete from "incremental"."{schema}"."{model}"' in executed, model  # the copy's file name
    results = json.loads((restated.target / "run_results.json").read_text())["results"]
    assert all(r["status"] == "success" for r in results)


def test_incremental_equals_full_refresh_after_a_load_that_changes_only_earlier_days(restated):
    with _connect(restated) as con:
        for model, schema in MODELS.items():
            for a, b in (("incremental", "full_refresh"), ("full_refresh", "incremental")):
                extra = con.execute(
                    f"select count(*) from (select * from {a}.{schema}.{model} except all "
                    f"select * from {b}.{schema}.{model})"
                ).fetchone()[0]
                assert extra == 0, f"{model}: {extra} rows in {a} that {b} does not have"


def test_each_change_reached_the_marts(restated):
    revenue = "marts.fct_daily_revenue_by_segment"
    with _connect(restated) as con:

        def rows(db: str, where: str, params: list) -> list[tuple]:
            return con.execute(f"select * from {db}.{revenue} where {where} order by all", params).fetchall()

        def before_after(sql: str, params: list) -> list:
            """`sql` (with `{db}` for the database) on the warehouse before and after the third load."""
            return [con.execute(sql.format(db=db), params).fetchone()[0] for db in ("before", "incremental")]

        # the day whose every order was cancelled is gone (nothing replaced it: the pre-hook deleted it)
        assert rows("before", "revenue_date = ?", [restated.cancelled_day])
        assert not rows("incremental", "revenue_date = ?", [restated.cancelled_day])
        # the segment whose only order was cancelled is gone, its day's other segments stay
        day, *segment = restated.segment
        where = "revenue_date = ? and (country_code, channel, currency) = (?, ?, ?)"
        assert rows("before", where, [day, *segment]) and not rows("incremental", where, [day, *segment])
        assert rows("incremental", "revenue_date = ?", [day])
        # the old day's new return
        before, after = before_after(f"select sum(returns_eur) from {{db}}.{revenue} where revenue_date = ?", [
            restated.return_day
        ])  # fmt: skip
        assert float(after - before) == pytest.approx(restated.refund_eur, abs=0.011)
        # the corrected rate revalues its day (and the days it stays in force)
        before, after = before_after(
            f"select max(reference_eur_exchange_rate) from {{db}}.{revenue} "
            "where revenue_date = ? and currency = 'USD'",
            [restated.rate_day],
        )
        assert after == pytest.approx(before * 1.01, rel=1e-9)
        # the returning visitor converted: one more converted visitor
        before, after = before_after("select sum(converted_visitors) from {db}.marts.fct_experiment_results", [])
        assert after == before + 1
        # ... and the days nobody touched kept their rows as they were
        untouched = con.execute(
            f"select * from before.{revenue} where revenue_date not in (?, ?, ?) and revenue_date < ? "
            f"except all select * from incremental.{revenue}",
            [restated.cancelled_day, day, restated.return_day, restated.rate_day],
        ).fetchall()
        assert untouched == []


def test_only_the_changed_days_and_visitors_were_recomputed(restated):
    """Rows marked before the run (loaded_at set to 2000) keep the mark unless the run recomputed them."""
    with duckdb.connect(str(restated.marked), read_only=True) as con:
        marked_days = {
            row[0]
            for row in con.execute(
                "select distinct revenue_date from marts.fct_daily_revenue_by_segment where loaded_at = ?", [MARK]
            ).fetchall()
        }
        marked_visitors = dict(
            con.execute(
                "select visitor_hash, sessions from marts.int_experiment_visitors where loaded_at = ?", [MARK]
            ).fetchall()
        )
    assert restated.untouched_day in marked_days, "a day nothing changed was recomputed"
    assert restated.segment[0] not in marked_days, "the day that lost a segment was not recomputed"
    assert len(marked_visitors) == 1 and restated.untouched_visitor in marked_visitors

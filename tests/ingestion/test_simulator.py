"""The shop simulator: deterministic, resumable, with a scale knob and the business it promises."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from ingestion.simulator.run import SimulatorError, simulate
from tests.conftest import DAY0

TABLES = ("customers", "products", "orders", "order_items", "returns", "web_events")


def dump(path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as con:
        return {t: con.execute(f"select * from {t} order by 1").fetchall() for t in TABLES}


def test_same_seed_same_shop_whether_generated_at_once_or_day_by_day(tmp_path):
    end = DAY0 + dt.timedelta(days=19)
    simulate(f"sqlite:///{tmp_path}/a.sqlite", DAY0, end, seed=7, progress=False)
    for n in range(20):
        day = DAY0 + dt.timedelta(days=n)
        simulate(f"sqlite:///{tmp_path}/b.sqlite", DAY0, day, seed=7, progress=False)
    a, b = dump(tmp_path / "a.sqlite"), dump(tmp_path / "b.sqlite")
    assert a == b
    assert len(a["returns"]) > 0, "20 days should include returns (they start after 4 days)"


def test_asking_again_writes_nothing_and_other_settings_are_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/shop.sqlite"
    end = DAY0 + dt.timedelta(days=2)
    first = simulate(url, DAY0, end, seed=1, progress=False)
    assert first["orders"] > 0
    assert simulate(url, DAY0, end, seed=1, progress=False) == {}
    with pytest.raises(SimulatorError, match="seed=1"):
        simulate(url, DAY0, end, seed=2, progress=False)


def test_different_seed_gives_a_different_shop(tmp_path):
    end = DAY0 + dt.timedelta(days=1)
    simulate(f"sqlite:///{tmp_path}/a.sqlite", DAY0, end, seed=1, progress=False)
    simulate(f"sqlite:///{tmp_path}/b.sqlite", DAY0, end, seed=2, progress=False)
    assert dump(tmp_path / "a.sqlite")["orders"] != dump(tmp_path / "b.sqlite")["orders"]


def test_scale_knob_scales_volume(tmp_path):
    end = DAY0 + dt.timedelta(days=2)
    small = simulate(f"sqlite:///{tmp_path}/a.sqlite", DAY0, end, scale=0.5, progress=False)
    large = simulate(f"sqlite:///{tmp_path}/b.sqlite", DAY0, end, scale=2.0, progress=False)
    assert 2.5 < large["orders"] / small["orders"] < 6


def test_customers_carry_pii_and_orders_follow_the_lifecycle(tmp_path):
    path = tmp_path / "shop.sqlite"
    simulate(f"sqlite:///{path}", DAY0, DAY0 + dt.timedelta(days=9), progress=False)
    with sqlite3.connect(path) as con:
        email, name, phone, birth = con.execute("select email, full_name, phone, birth_date from customers").fetchone()
        statuses = dict(con.execute("select order_status, count(*) from orders group by 1").fetchall())
        variants = dict(
            con.execute("select experiment_variant, count(distinct visitor_id) from web_events group by 1").fetchall()
        )
        orphan_returns = con.execute(
            "select count(*) from returns r left join order_items i using (order_item_id) where i.order_id is null"
        ).fetchone()[0]
    assert "@" in email and " " in name and phone.startswith("+") and birth
    assert {"placed", "shipped", "delivered", "cancelled"} <= set(statuses)
    assert set(variants) == {"control", "treatment"}
    assert 0.4 < variants["control"] / (variants["control"] + variants["treatment"]) < 0.6
    assert orphan_returns == 0


def test_treatment_converts_better_over_a_month(tmp_path):
    path = tmp_path / "shop.sqlite"
    simulate(f"sqlite:///{path}", DAY0, DAY0 + dt.timedelta(days=29), scale=2, progress=False)
    with sqlite3.connect(path) as con:
        rate = dict(
            con.execute(
                "select experiment_variant, avg(bought) from (select session_id, experiment_variant, "
                "max(event_type = 'purchase') as bought from web_events group by 1, 2) group by 1"
            ).fetchall()
        )
    assert rate["treatment"] > rate["control"] * 1.05


def test_drift_can_be_switched_on_for_days_not_yet_written(tmp_path):
    """`SIM_DRIFT_FROM=<day> make simulate` on a running demo: later days drift, written ones stay."""
    from ingestion.simulator.run import stored_settings

    drift_day = DAY0 + dt.timedelta(days=3)
    end = DAY0 + dt.timedelta(days=5)
    from_start, later = f"sqlite:///{tmp_path}/a.sqlite", f"sqlite:///{tmp_path}/b.sqlite"
    simulate(from_start, DAY0, end, seed=1, drift_from=drift_day, progress=False)
    simulate(later, DAY0, drift_day - dt.timedelta(days=1), seed=1, progress=False)
    with pytest.raises(SimulatorError, match="drift_from"):  # already written: no rewriting history
        simulate(later, DAY0, end, seed=1, drift_from=drift_day - dt.timedelta(days=1), progress=False)
    simulate(later, DAY0, end, seed=1, drift_from=drift_day, progress=False)
    assert stored_settings(later)["drift_from"] == stored_settings(from_start)["drift_from"] == drift_day
    assert stored_settings(f"sqlite:///{tmp_path}/none.sqlite") is None

    def content(url: str) -> list:
        with sqlite3.connect(url.removeprefix("sqlite:///")) as con:
            return [
                con.execute(f"select * from {table} order by 1").fetchall()
                for table in ("customers", "orders", "order_items", "returns")
            ]

    assert content(later) == content(from_start)


def test_growth_zero_keeps_the_day_volume_flat_and_a_different_growth_is_refused(tmp_path):
    """`growth` (orders growth per day) is a stored option like `browse_sample`."""
    from ingestion.simulator.generate import expected_orders
    from ingestion.simulator.run import stored_settings

    # DAY0 and the same date a year later: both weekdays, the same day of the year (no season gap)
    year_later = DAY0 + dt.timedelta(days=365)
    assert DAY0.weekday() < 5 and year_later.weekday() < 5
    assert DAY0.timetuple().tm_yday == year_later.timetuple().tm_yday
    assert expected_orders(year_later, DAY0, 1.0, growth=0.0) == expected_orders(DAY0, DAY0, 1.0, growth=0.0)
    default = expected_orders(year_later, DAY0, 1.0) / expected_orders(DAY0, DAY0, 1.0)
    assert default == pytest.approx(1.0 + 0.002 * 365)

    url = f"sqlite:///{tmp_path}/flat.sqlite"
    end = DAY0 + dt.timedelta(days=2)
    simulate(url, DAY0, end, seed=1, growth=0.0, progress=False)
    assert stored_settings(url)["growth"] == 0.0
    with pytest.raises(SimulatorError, match=r"growth=0; .*asked for .*growth=0\.002"):
        simulate(url, DAY0, end + dt.timedelta(days=1), seed=1, progress=False)
    assert simulate(url, DAY0, end + dt.timedelta(days=1), seed=1, growth=0.0, progress=False)["orders"] > 0
    with pytest.raises(ValueError, match="growth"):
        simulate(f"sqlite:///{tmp_path}/bad.sqlite", DAY0, end, growth=-0.1, progress=False)

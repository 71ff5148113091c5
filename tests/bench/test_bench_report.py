"""The report's growth-with-history section, from synthetic results (fast; no pipeline, no timings)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import bench.__main__ as bench_main
from bench import report
from bench.scales import parse_scale

STAGE_SECONDS = {"extract+land": 1.0, "gate 1": 2.0, "load": 0.5, "dbt build": 10.0, "gate 2": 1.0, "publish": 0.5}


def _run(scale: float = 1.0, *, nodes: dict[str, float] | None = None, peak: float = 500.0, **extra) -> dict:
    stages = {
        name: {"wall_s": seconds * scale, "self_peak_rss_mib": 300.0, "child_peak_rss_mib": None}
        for name, seconds in STAGE_SECONDS.items()
    }
    run = {"stages": stages, "wall_s": 15.0 * scale, "peak_rss_mib": peak, **extra}
    if nodes:
        run["dbt_nodes"] = nodes
    return run


def _scale(name: str, **runs) -> dict:
    scale = {
        "name": name,
        "orders_target": 1_000_000,
        "days": 365,
        "start": "2025-01-01",
        "end": "2025-12-31",
        "simulator_scale": 24.98,
        "browse_sample": 0.02,
        "growth": 0.0,
        "floor": {"wall_s": 3.0, "peak_rss_mib": 400.0},
        "full": _run(20.0, nodes={"model fct_sessions": 30.0}, peak=3000.0),
        "checks": {"floor vs marts": {"daily_revenue": "equal"}},
    }
    scale.update(runs)
    return scale


def _results(*scales: dict, two_year: tuple[str, ...] = ("1m",)) -> dict:
    return {
        "date": "2026-12-05",
        "machine": {"cpu": "cpu", "nproc": 2, "ram_gib": 8, "os": "Linux", "python": "3.11", "duckdb": "1"},
        "config": {"duckdb_memory_limit": "3GB", "duckdb_threads": 2, "two_year_scales": list(two_year)},
        "scales": list(scales),
        "notes": [],
    }


TWO_YEARS = {
    "second_year": "2026-01-02..2026-12-31",
    "day_one_year": "2026-01-01",
    "day_two_years": "2027-01-01",
    "expected_orders": {"one_year": 2498.0, "two_years": 2498.0},
    "batch_days": 30,
}


def test_the_growth_table_shows_both_days_and_their_ratio() -> None:
    one = {"model fct_customer_churn_features": 15.0, "model fct_sessions": 2.0, "test unique_x": 1.0}
    two = {"model fct_customer_churn_features": 18.0, "model fct_sessions": 2.5, "test unique_x": 1.0}
    full_scale = _scale(
        "1m",
        two_years=TWO_YEARS,
        incremental=_run(4.0, nodes=one, peak=2000.0),  # 60 s
        second_year=_run(50.0, peak=2500.0, batches=13),
        incremental_two_years=_run(4.4, nodes=two, peak=2100.0),  # 66 s
    )
    no_second_year = _scale("10m", growth=0.002, incremental=_run(30.0))
    results = _results(full_scale, no_second_year)

    [row] = report.growth_rows(results)  # only the two-year scale
    assert dict(zip(report.GROWTH_HEADER, row, strict=True)) == {
        "scale": "1m",
        "expected orders on the +1 days (1y / 2y)": "2,498 / 2,498",
        "full year": "300 s",
        "+1 day after 1 year": "60.0 s",
        "second year": "750 s (13 batches)",
        "+1 day after 2 years": "66.0 s",
        "+1 day 2y / 1y": "1.10x",
        "dbt build 2y / 1y": "1.10x",
        "peak RSS (full / +1 day 1y / second year / +1 day 2y)": "2.93 GiB / 1.95 GiB / 2.44 GiB / 2.05 GiB",
    }
    dbt = report.dbt_growth_rows(results)
    assert ["1m", "model fct_customer_churn_features", "15.0 s", "18.0 s", "1.2x"] in dbt
    assert ["1m", "all models", "17.0 s", "20.5 s", "1.2x"] in dbt

    md = report.markdown(results, None)
    assert "## How the daily cost grows with history" in md
    stages = report._stage_rows(results)
    labels = [(row[0], row[1]) for row in stages]
    assert ("1m", "+1 day after 1 year") in labels
    assert ("1m", "second year, 13 batches of 30 days") in labels
    assert ("1m", "+1 day after 2 years") in labels
    assert ("10m", "+1 day") in labels and not any(s == "10m" and "2 years" in label for s, label in labels)
    node_runs = [(row[0], row[1]) for row in report._dbt_node_rows(results)]
    assert ("1m", "+1 day after 2 years") in node_runs and ("1m", "+1 day after 1 year") in node_runs
    assert "how the daily cost grows with history" in report.summary_table(results)
    labels = [bar.label for panel in report.chart_panels(results) for bar in panel.bars]
    assert "pipeline, +1 day after 2 years" in labels and "pipeline, second year, 13 batches of 30 days" in labels


def test_without_two_year_scales_the_report_is_as_before() -> None:
    results = _results(_scale("10m", growth=0.002, incremental=_run(30.0)), two_year=())
    assert report.growth_rows(results) == []
    assert "How the daily cost grows" not in report.markdown(results, None)
    assert "grows with history" not in report.summary_table(results)


def test_a_failed_or_missing_second_year_renders_as_such() -> None:
    failed_year = _scale(
        "1m",
        two_years=TWO_YEARS,
        incremental=_run(4.0),
        second_year={**_run(10.0, batches=3), "error": "pipeline 2026-03-03..2026-04-01: dbt build: boom"},
        checks={"floor vs marts after two years": {"all": "not compared: the second year failed"}},
    )
    never_got_there = _scale("2m", full={**_run(5.0), "error": "dbt build: killed"}, error="pipeline-full: boom")
    failed_day = _scale(
        "5m",
        two_years=TWO_YEARS,
        incremental=_run(4.0),
        second_year=_run(50.0, batches=13),
        incremental_two_years={**_run(0.1), "error": "dbt build: CalledProcessError: exit 1"},
    )
    results = _results(failed_year, never_got_there, failed_day, two_year=("1m", "2m", "5m"))
    rows = {row[0]: dict(zip(report.GROWTH_HEADER, row, strict=True)) for row in report.growth_rows(results)}
    assert rows["1m"]["second year"] == "failed: pipeline 2026-03-03..2026-04-01: dbt build: boom"
    assert rows["1m"]["+1 day after 2 years"] == "not run"
    assert rows["1m"]["+1 day 2y / 1y"] == "-"
    assert rows["2m"]["full year"] == "failed in dbt build"
    assert rows["2m"]["second year"] == rows["2m"]["+1 day after 2 years"] == "not run"
    assert rows["5m"]["+1 day after 2 years"] == "failed in dbt build"
    assert rows["5m"]["+1 day 2y / 1y"] == "-"
    md = report.markdown(results, None)
    assert "- 1m, second year, 3 batches of 30 days: FAILED: pipeline 2026-03-03..2026-04-01" in md
    assert "- 5m, +1 day after 2 years: FAILED: dbt build" in md
    assert "not compared: the second year failed" in md
    bars = {bar.label: bar for panel in report.chart_panels(results) for bar in panel.bars}
    assert (
        "failed: pipeline 2026-03-03..2026-04-01: dbt build: boom"
        in bars["pipeline, second year, 3 batches of 30 days"].note
    )
    assert bars["pipeline, +1 day after 2 years"].note == " (failed in dbt build)"


def test_the_flat_scale_still_yields_the_requested_orders_per_year() -> None:
    flat, growing = parse_scale("1m", growth=0.0), parse_scale("1m")
    assert flat.simulator_scale > growing.simulator_scale
    for scale in (flat, growing):
        year = sum(scale.expected_orders(scale.start + dt.timedelta(days=n)) for n in range(scale.days))
        assert year == pytest.approx(1_000_000, rel=1e-3)
    # flat: the second year expects as many orders as the first, and the two +1 days the same
    second = sum(flat.expected_orders(flat.end + dt.timedelta(days=n)) for n in range(1, 366))
    assert second == pytest.approx(1_000_000, rel=1e-3)
    day_one = flat.end + dt.timedelta(days=1)
    assert flat.expected_orders(day_one) == flat.expected_orders(day_one + dt.timedelta(days=flat.days))


def test_a_failing_second_year_batch_is_recorded_and_the_rest_is_kept(monkeypatch, tmp_path: Path) -> None:
    """No pipeline: `_step` is replaced; the third batch of the second year fails."""
    calls: list[str] = []

    def step(name: str, args: list[str], env, work, *, rss_cap_mib=None, required=True) -> dict:
        calls.append(name)
        if name == "pipeline-2026-03-03":
            return {**_run(1.0), "error": "dbt build: boom"}
        return _run(1.0) if name.startswith("pipeline") else {"wall_s": 1.0, "peak_rss_mib": 100.0}

    monkeypatch.setattr(bench_main, "_step", step)
    scale = parse_scale("1m", growth=0.0)
    result: dict = {"incremental": _run(1.0), "checks": {}}
    new_day = scale.end + dt.timedelta(days=1)
    bench_main._second_year(scale, ["simulate"], new_day, {}, tmp_path, tmp_path, tmp_path, result, 1024.0)
    assert calls == [
        "simulate-2026-01-02",
        "pipeline-2026-01-02",
        "simulate-2026-02-01",
        "pipeline-2026-02-01",
        "simulate-2026-03-03",
        "pipeline-2026-03-03",
    ]
    assert result["second_year"]["batches"] == 3
    assert result["second_year"]["error"].startswith("pipeline 2026-03-03..2026-04-01: dbt build: boom")
    assert "incremental_two_years" not in result
    assert result["checks"]["floor vs marts after two years"] == {"all": "not compared: the second year failed"}
    assert result["two_years"]["day_two_years"] == "2027-01-01"
    assert result["two_years"]["history_days_before"] == {"one_year": 365, "two_years": 730}


def test_extract_gate_1_and_load_are_reported_per_row_of_the_batch() -> None:
    results = _results(
        _scale(
            "1m",
            two_years=TWO_YEARS,
            full=_run(20.0, batch_rows=8_000_000),  # gate 1 40 s, load 10 s
            incremental=_run(1.0, batch_rows=20_000),  # gate 1 2 s, load 0.5 s
            incremental_two_years=_run(1.0, batch_rows=25_000, error="dbt build: failed"),
        )
    )
    results["scales"][0]["incremental_two_years"]["stages"].pop("gate 2")  # cut short in dbt build
    rows = report.per_million_rows(results)
    assert rows == [
        ["1m", "full history", "8,000,000", "2.50", "5.00", "1.25"],
        ["1m", "+1 day after 1 year", "20,000", "50.00", "100.00", "25.00"],
    ]  # the failed run is left out: its stages are not the day's cost
    assert "## Extract+land, gate 1 and load per row of the batch" in report.markdown(results, None)
    no_rows = _results(_scale("1m", incremental=_run(1.0)), two_year=())
    assert report.per_million_rows(no_rows) == []


def test_the_report_writes_a_chart_every_viewer_shows(tmp_path: Path) -> None:
    """json, md, and the chart as SVG and PNG (matplotlib, no browser), linked from the Markdown."""
    results = _results(
        _scale(
            "1m",
            two_years=TWO_YEARS,
            incremental=_run(4.0),
            second_year=_run(50.0, batches=13),
            incremental_two_years=_run(4.5),
        )
    )
    written = report.write(results, tmp_path)
    names = {path.suffix: path for path in written}
    assert set(names) == {".json", ".md", ".svg", ".png"}
    assert names[".png"].read_bytes().startswith(b"\x89PNG")
    svg = names[".svg"].read_text()
    assert "<svg" in svg and "+1 day after 2 years" in svg
    assert f"]({names['.png'].name})" in names[".md"].read_text()


def test_without_a_full_run_no_chart_is_written(tmp_path: Path) -> None:
    results = _results(_scale("1m", full={"error": "pipeline-full: boom"}))
    written = report.write(results, tmp_path)
    assert {path.suffix for path in written} == {".json", ".md"}

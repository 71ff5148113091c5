"""The benchmark's outputs: `bench/results/<date>.json` (everything measured), `<date>.md` (tables),
`<date>.svg` and `<date>.png` (time per stage per scale, next to the floor and pandas).

The chart is drawn by `bench.chart` (matplotlib) from the panels `chart_panels` builds here.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import chart
from bench.chart import STAGES, Bar, Panel


# -- numbers ----------------------------------------------------------------------------------
def _total(run: dict | None) -> float | None:
    if not run or "stages" not in run:
        return None
    return sum(stage["wall_s"] for stage in run["stages"].values())


def _peak(run: dict | None) -> float | None:
    return run.get("peak_rss_mib") if run else None


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or not b:
        return "-"
    r = a / b
    return f"{r:.0f}x" if r >= 10 else f"{r:.1f}x" if r >= 1 else f"{r:.2g}x"


def _s(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} s" if value < 10 else f"{value:.0f} s" if value >= 100 else f"{value:.1f} s"


def _mib(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1024:.2f} GiB" if value >= 1024 else f"{value:.0f} MiB"


def _bytes(value: int | None) -> str:
    if not value:
        return "-"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


STEPS = (
    "simulate",
    "full",
    "floor",
    "pandas",
    "simulate_new_day",
    "incremental",
    "floor_after_increment",
    "simulate_second_year",
    "second_year",
    "simulate_two_years_day",
    "incremental_two_years",
    "floor_after_two_years",
)
# the pipeline runs of a scale, in order: (result key, label)
RUNS = (
    ("full", "full history"),
    ("incremental", "+1 day"),
    ("second_year", "second year"),
    ("incremental_two_years", "+1 day after 2 years"),
)


def _scale_wall(scale: dict) -> float | None:
    """Everything measured at a scale (the sum of its steps when a failure cut the run short)."""
    if scale.get("wall_s_total"):
        return scale["wall_s_total"]
    steps = [scale[k]["wall_s"] for k in STEPS if isinstance(scale.get(k), dict) and "wall_s" in scale[k]]
    return sum(steps) if steps else None


def _batches(scale: dict) -> str:
    """', 1 of 13 batches of 30 days' for a history run in batches, else ''."""
    size = scale.get("history_batch_days")
    if not size:
        return ""
    planned = -(-scale["days"] // size)
    return f", {(scale.get('full') or {}).get('batches', 0)} of {planned} batches of {size} days"


def _pandas_wall(scale: dict) -> float | None:
    run = scale.get("pandas")
    return run["wall_s"] if run and "error" not in run else None


def _failed_stage(run: dict | None) -> str | None:
    """'dbt build' when the run failed there, None when it did not fail."""
    if not run or "error" not in run:
        return None
    return str(run["error"]).split(":", 1)[0] if run.get("stages") else "start"


def _run_cell(run: dict | None) -> str:
    stage = _failed_stage(run)
    return f"failed in {stage}" if stage else _s(_total(run))


def _not_run(run: dict | None) -> str | None:
    """Why a run that was planned did not happen ('not run: the +1 day run failed'), else None."""
    if run is None:
        return "not run"
    error = str(run.get("error", ""))
    return error if error.startswith("not run") else None


def _two_year_scales(results: dict) -> list[dict]:
    """The scales asked to run a second year (whether or not they got there)."""
    asked = set((results.get("config") or {}).get("two_year_scales") or [])
    return [s for s in results["scales"] if s["name"] in asked or "two_years" in s or "second_year" in s]


def _run_label(scale: dict, key: str, label: str) -> str:
    """The row label of a run; '+1 day after 1 year' where a second year follows."""
    if key == "incremental" and ("two_years" in scale or "second_year" in scale):
        return "+1 day after 1 year"
    if key == "second_year":
        run = scale.get(key) or {}
        size = (scale.get("two_years") or {}).get("batch_days", 30)
        return f"second year, {run.get('batches', 0)} batches of {size} days"
    return label


def growth_rows(results: dict) -> list[list[str]]:
    """Per two-year scale: the full year, the two +1 day runs, the second year, and their ratio."""
    rows = []
    for scale in _two_year_scales(results):
        full, day1 = scale.get("full"), scale.get("incremental")
        year2, day2 = scale.get("second_year"), scale.get("incremental_two_years")
        cells = []
        for run in (full, day1, year2, day2):
            why = _not_run(run)
            if why:
                cells.append(why)
            elif run is year2 and "error" in run:
                cells.append(f"failed: {run['error']}")
            else:
                cell = _run_cell(run)
                if run is year2 and not _failed_stage(run):
                    cell += f" ({run.get('batches', 0)} batches)"
                cells.append(cell)
        ok1 = day1 and day1.get("stages") and not _failed_stage(day1)
        ok2 = day2 and day2.get("stages") and not _failed_stage(day2)
        t1, t2 = (_total(day1) if ok1 else None), (_total(day2) if ok2 else None)
        dbt1 = day1["stages"].get("dbt build", {}).get("wall_s") if ok1 else None
        dbt2 = day2["stages"].get("dbt build", {}).get("wall_s") if ok2 else None
        expected = (scale.get("two_years") or {}).get("expected_orders") or {}
        volume = (
            f"{expected['one_year']:,.0f} / {expected['two_years']:,.0f}"
            if "one_year" in expected and "two_years" in expected
            else "-"
        )
        rows.append(
            [
                scale["name"],
                volume,
                *cells,
                f"{t2 / t1:.2f}x" if t1 and t2 else "-",
                f"{dbt2 / dbt1:.2f}x" if dbt1 and dbt2 else "-",
                " / ".join(_mib(_peak(run)) for run in (full, day1, year2, day2)),
            ]
        )
    return rows


GROWTH_HEADER = [
    "scale",
    "expected orders on the +1 days (1y / 2y)",
    "full year",
    "+1 day after 1 year",
    "second year",
    "+1 day after 2 years",
    "+1 day 2y / 1y",
    "dbt build 2y / 1y",
    "peak RSS (full / +1 day 1y / second year / +1 day 2y)",
]
GROWTH_TARGET = 1.2  # the +1 day after two years may cost at most this many times the one after a year


def dbt_growth_rows(results: dict, top: int = 10) -> list[list[str]]:
    """Per two-year scale: the nodes slowest in the +1 day after two years, next to the +1 day after one."""
    from bench.dbt_nodes import seconds_by_kind, slowest

    rows = []
    for scale in _two_year_scales(results):
        one = (scale.get("incremental") or {}).get("dbt_nodes") or {}
        two = (scale.get("incremental_two_years") or {}).get("dbt_nodes") or {}
        if not two:
            continue
        kinds = sorted(set(seconds_by_kind(one)) | set(seconds_by_kind(two)))
        entries = [(f"all {kind}s", seconds_by_kind(one).get(kind), seconds_by_kind(two).get(kind)) for kind in kinds]
        entries += [(node, one.get(node), sec) for node, sec in slowest(two, top)]
        for node, before, after in entries:
            rows.append([scale["name"], node, _s(before), _s(after), _ratio(after, before)])
    return rows


def per_million_rows(results: dict) -> list[list[str]]:
    """Per scale and run: the rows the run landed and loaded, the extract+land stage's wall µs per row
    (all tables, however many are landed at once), and gate 1's and the load's seconds per million rows.

    All three work on the batch, not the table, so these should stay flat from the +1 day after one
    year to the one after two."""
    rows = []
    for scale in results["scales"]:
        for key, label in RUNS:
            run = scale.get(key) or {}
            batch = run.get("batch_rows")
            if not batch or _failed_stage(run):
                continue
            cells = []
            for stage in ("extract+land", "gate 1", "load"):
                wall = (run["stages"].get(stage) or {}).get("wall_s")
                cells.append(f"{wall / batch * 1e6:.2f}" if wall is not None else "-")
            rows.append([scale["name"], _run_label(scale, key, label), f"{batch:,}", *cells])
    return rows


def summary_rows(results: dict) -> list[list[str]]:
    rows = []
    for scale in results["scales"]:
        full_run, day_run = scale.get("full"), scale.get("incremental")
        if not full_run or not full_run.get("stages"):
            rows.append([scale["name"], f"{scale['orders_target']:,}", "failed", *["-"] * 9])
            continue
        ok_full, ok_day = not _failed_stage(full_run), not _failed_stage(day_run) and day_run
        full = _total(full_run) if ok_full else None
        day = _total(day_run) if ok_day else None
        floor = scale.get("floor", {}).get("wall_s")
        dbt = full_run["stages"].get("dbt build", {}).get("wall_s") if ok_full else None
        pandas = _pandas_wall(scale)
        pandas_cell = _s(pandas) if pandas is not None else (scale.get("pandas") or {}).get("error", "skipped")
        orders = scale.get("data", {}).get("raw_rows", {}).get("distinct orders", scale["orders_target"])
        peaks = [_peak(run) or 0 for run in (full_run, day_run)]
        rows.append(
            [
                scale["name"],
                f"{orders:,}",
                _run_cell(full_run),
                _s(floor),
                _ratio(full, floor),
                _ratio(dbt, floor),
                _run_cell(day_run) if day_run else "-",
                f"{day / full:.2f}" if day and full else "-",
                pandas_cell,
                _ratio(pandas, full),
                _ratio(pandas, floor),
                _mib(max(peaks) or None),
            ]
        )
    return rows


SUMMARY_HEADER = [
    "scale",
    "orders",
    "pipeline (full)",
    "floor",
    "pipeline/floor",
    "dbt/floor",
    "pipeline (+1 day)",
    "incremental/full",
    "pandas",
    "pandas/pipeline",
    "pandas/floor",
    "pipeline peak RSS",
]


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _columns(header: list[str], rows: list[list[str]]) -> str:
    rows = [header, *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)


def summary_table(results: dict) -> str:
    """The summary as plain text columns (for the terminal), and the growth with history if measured."""
    text = _columns(SUMMARY_HEADER, summary_rows(results))
    growth = growth_rows(results)
    if growth:
        text += "\n\nhow the daily cost grows with history:\n" + _columns(GROWTH_HEADER, growth)
    return text


def mismatches(results: dict) -> list[str]:
    """Every baseline-vs-mart difference found (a benchmark whose baselines differ is not fair)."""
    found = []
    for scale in results["scales"]:
        for check, kpis in scale.get("checks", {}).items():
            for verdict in kpis.values():
                if isinstance(verdict, list):
                    found += [f"{scale['name']} {check}: {problem}" for problem in verdict]
    return found


# -- markdown ---------------------------------------------------------------------------------
def _stage_rows(results: dict) -> list[list[str]]:
    rows = []
    for scale in results["scales"]:
        for key, label in RUNS:
            run = scale.get(key)
            if not run or "stages" not in run:
                continue
            label = _run_label(scale, key, label)
            cells = []
            for stage in STAGES:
                measured = run["stages"].get(stage)
                if not measured:
                    cells.append("-")
                    continue
                cell = f"{_s(measured['wall_s'])} / {_mib(measured['self_peak_rss_mib'])}"
                if measured.get("child_peak_rss_mib"):
                    cell += f" (subprocess {_mib(measured['child_peak_rss_mib'])})"
                cells.append(cell)
            if key == "full":
                label += _batches(scale)
            if key == "second_year" and "error" in run:
                label += f", FAILED: {run['error']}"
            elif _failed_stage(run):
                label += f", FAILED in {_failed_stage(run)}"
            rows.append([scale["name"], label, *cells, f"{_s(_total(run))} / {_mib(run.get('peak_rss_mib'))}"])
        for label, key in (
            ("floor (DuckDB SQL)", "floor"),
            ("pandas", "pandas"),
            ("floor after 2 years", "floor_after_two_years"),
        ):
            run = scale.get(key)
            if run:
                cell = run.get("error") or f"{_s(run['wall_s'])} / {_mib(run['peak_rss_mib'])}"
                rows.append([scale["name"], label, *["" for _ in STAGES], cell])
    return rows


def _dbt_node_rows(results: dict, top: int = 8) -> list[list[str]]:
    """Per scale and run: seconds by node kind, then the slowest nodes (dbt's run_results.json)."""
    from bench.dbt_nodes import seconds_by_kind, slowest

    rows = []
    for scale in results["scales"]:
        for key, label in RUNS:
            nodes = (scale.get(key) or {}).get("dbt_nodes")
            if not nodes:
                continue
            label = _run_label(scale, key, label)
            kinds = ", ".join(f"{kind} {_s(sec)}" for kind, sec in sorted(seconds_by_kind(nodes).items()))
            slow = ", ".join(f"{node} {_s(sec)}" for node, sec in slowest(nodes, top))
            rows.append([scale["name"], label, kinds, slow])
    return rows


def _data_rows(results: dict) -> list[list[str]]:
    rows = []
    for scale in results["scales"]:
        data = scale.get("data")
        if not data:
            continue
        raw = data["raw_rows"]
        sim = scale.get("simulate", {})
        rows.append(
            [
                scale["name"],
                f"{scale['simulator_scale']:g}",
                _period(scale),
                f"{scale['browse_sample']:g}",
                ", ".join(f"{t} {n:,}" for t, n in raw.items() if t != "distinct orders"),
                f"{_s(sim.get('wall_s'))} / {_mib(sim.get('peak_rss_mib'))}",
                _bytes(data["app_db_bytes"]),
                _bytes(data["lake_bytes"]),
                _bytes(data["warehouse_bytes"]),
                _bytes(data["serving_bytes"]),
            ]
        )
    return rows


def _period(scale: dict) -> str:
    period = f"{scale['start']}..{scale['end']} ({scale['days']} days)"
    growth = scale.get("growth")
    if growth is not None:
        period += f", growth {growth:g}/day" if growth else ", flat volume (growth 0)"
    two = scale.get("two_years")
    if two:
        period += f"; +1 day {two['day_one_year']}, second year {two['second_year']}, +1 day {two['day_two_years']}"
    return period


def _extraction_rows(results: dict) -> list[list[str]]:
    """Per scale and table: µs per row of both extraction paths on the sampled days, and landed."""
    from bench.extraction import us_per_row

    def us(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    rows = []
    for scale in results["scales"]:
        extraction = scale.get("extraction") or {}
        if "error" in extraction:
            rows.append([scale["name"], "FAILED", extraction["error"], "", "", "", ""])
        for table, cost in (extraction.get("tables") or {}).items():
            adbc, plain = us_per_row(cost["adbc_s"], cost["rows"]), us_per_row(cost["sqlalchemy_s"], cost["rows"])
            rows.append([
                scale["name"],
                table,
                f"{cost['rows']:,} ({len(extraction['days'])} days)",
                us(adbc),
                us(plain),
                _ratio(plain, adbc),
                f"{us(us_per_row(cost['landed_s'], cost['landed_rows']))} ({cost['landed_rows']:,} rows)",
            ])  # fmt: skip
    return rows


def _check_lines(results: dict) -> list[str]:
    lines = []
    for scale in results["scales"]:
        for check, kpis in scale.get("checks", {}).items():
            verdicts = ", ".join(
                f"{kpi}: {v if isinstance(v, str) else f'{len(v)} difference(s)'}" for kpi, v in kpis.items()
            )
            lines.append(f"- {scale['name']}, {check}: {verdicts}")
        for key, label in (*RUNS, ("pandas", "pandas"), ("floor_after_two_years", "floor after 2 years")):
            run = scale.get(key) or {}
            if "error" in run:
                lines.append(f"- {scale['name']}, {_run_label(scale, key, label)}: FAILED: {run['error']}")
        if "error" in scale and not any("error" in (scale.get(k) or {}) for k in ("full", "incremental")):
            lines.append(f"- {scale['name']}: FAILED: {scale['error'].splitlines()[0]}")
    return lines


def _superset_lines(results: dict) -> list[str]:
    superset = results.get("superset") or {}
    if "skipped" in superset:
        return [f"Skipped: {superset['skipped']}."]
    return ["```json", json.dumps(superset, indent=2), "```"]


def _setup_lines(results: dict) -> list[str]:
    setup = results.get("setup")
    if not setup:
        return ["Not measured in this run (`python -m bench --setup`)."]
    if "error" in setup:
        return [f"Failed: {setup['error']}"]
    return [
        f"Fresh `git clone` + `make install` with an empty uv cache: **{_s(setup['install_s'])}** "
        f"(clone {_s(setup['clone_s'])}); environments on disk: "
        + ", ".join(f"{name} {size}" for name, size in setup["disk"].items())
        + f"; downloaded into the uv cache: {setup.get('uv_cache', '-')}."
    ]


def markdown(results: dict, chart_name: str | None) -> str:
    m = results["machine"]
    c = results["config"]
    parts = [
        f"# Benchmark {results['date']}",
        "",
        f"Machine: {m['cpu']}, {m['nproc']} cores, {m['ram_gib']} GiB RAM, {m['os']}, Python {m['python']}, "
        f"DuckDB {m['duckdb']}. DuckDB memory limit {c['duckdb_memory_limit']}, {c['duckdb_threads']} threads. "
        "Time for everything at each scale (simulation and baselines included): "
        + ", ".join(f"{s['name']} {_s(_scale_wall(s))}" for s in results["scales"])
        + ".",
        "",
        "## Summary",
        "",
        _table(SUMMARY_HEADER, summary_rows(results)),
        "",
        "pipeline = extract+land, gate 1, load, dbt build, gate 2, publish (`pipelines.runner.run_range`); "
        "floor = the same KPIs in one DuckDB SQL script over the lake (`bench/floor.sql`); "
        "pandas = the same by hand (`bench/pandas_baseline.py`). Peak RSS is per process: a stage's cell shows the "
        "pipeline process's peak during the stage (including memory held from earlier stages) and, for dbt, the dbt "
        "subprocess's own peak.",
        "",
    ]
    if chart_name:
        parts += [f"![time per stage per scale]({chart_name})", ""]
    node_rows = _dbt_node_rows(results)
    extraction_rows = _extraction_rows(results)
    growth = growth_rows(results)
    dbt_growth = dbt_growth_rows(results)
    if growth:
        parts += [
            "## How the daily cost grows with history",
            "",
            _table(GROWTH_HEADER, growth),
            "",
            "The simulator runs with flat volume at these scales (growth 0: the same orders every year), so "
            "the two +1 days expect the same orders (first column) and their ratio is the growth of the daily "
            "cost with history alone: the +1 day after 1 year has one year of history before it, the +1 day "
            "after 2 years two (the second year is run in batches of 30 days, each simulated just before it is "
            f"run). Target: +1 day 2y / 1y <= {GROWTH_TARGET}x.",
            "",
        ]
        if dbt_growth:
            parts += [
                "dbt seconds per node, the two +1 day runs (totals per kind, then the nodes slowest after 2 years):",
                "",
                _table(["scale", "node", "+1 day after 1 year", "+1 day after 2 years", "2y / 1y"], dbt_growth),
                "",
            ]
    batch_cost = per_million_rows(results)
    if batch_cost:
        parts += [
            "## Extract+land, gate 1 and load per row of the batch",
            "",
            _table(
                ["scale", "run", "rows loaded", "extract+land µs / row", "gate 1 s / M rows", "load s / M rows"],
                batch_cost,
            ),
            "",
            "These stages work on the run's batch (the rows landed for its days), not on the table: their "
            "cost per row should not grow with the history before the run. extract+land is the stage's wall "
            "time over all tables (several are landed at once, `EXTRACT_WORKERS`). A +1 day pays a fixed "
            "start-up cost over few rows, so compare the two +1 days with each other.",
            "",
        ]
    parts += [
        "## Per stage: wall time / peak RSS",
        "",
        _table(["scale", "run", *STAGES, "total / process peak"], _stage_rows(results)),
        "",
        *(
            [
                "## Where the dbt build spends its time",
                "",
                "Seconds per node from dbt's `run_results.json` (summed over batches; nodes run one at a time).",
                "",
                _table(["scale", "run", "by kind", "slowest nodes"], node_rows),
                "",
            ]
            if node_rows
            else []
        ),
        "## Data",
        "",
        _table(
            [
                "scale",
                "simulator scale",
                "period",
                "browse sample",
                "raw rows",
                "simulate",
                "app DB",
                "lake",
                "warehouse",
                "serving",
            ],
            _data_rows(results),
        ),
        "",
        *(
            [
                "## Extraction from the app DB: µs per row",
                "",
                "The same sampled days of each table read through ADBC into Arrow batches (what the pipeline "
                "runs) and through SQLAlchemy rows converted by `pa.array` (the previous path), in one process; "
                "landed = extract + Parquet write per row over the whole history, from the partition manifests.",
                "",
                _table(
                    [
                        "scale",
                        "table",
                        "rows timed",
                        "ADBC µs/row",
                        "SQLAlchemy µs/row",
                        "SQLAlchemy/ADBC",
                        "landed µs/row",
                    ],
                    extraction_rows,
                ),
                "",
            ]
            if extraction_rows
            else []
        ),
        *_spark_section(results),
        "## Correctness (baselines vs the published marts) and failures",
        "",
        *_check_lines(results),
        "",
        *(["## Notes", "", *[f"- {note}" for note in results["notes"]], ""] if results.get("notes") else []),
        "## Superset",
        "",
        *_superset_lines(results),
        "",
        "## Set-up",
        "",
        *_setup_lines(results),
        "",
    ]
    return "\n".join(parts)


# -- chart ------------------------------------------------------------------------------------
def chart_panels(results: dict) -> list[Panel]:
    """One panel per scale with a full run: stacked stage bars per pipeline run, floor and pandas."""
    panels = []
    for scale in results["scales"]:
        if not scale.get("full", {}).get("stages"):
            continue
        bars = []
        for key, label in RUNS:
            if key not in ("full", "incremental") and key not in scale:
                continue
            run = scale.get(key) or {}
            segments = tuple((s, run["stages"][s]["wall_s"]) for s in STAGES if s in run.get("stages", {}))
            if key == "second_year" and "error" in run:
                note = f" (failed: {run['error']})"
            elif _not_run(run) and key != "incremental":
                note = f" ({_not_run(run)})"
            else:
                failed = _failed_stage(run)
                note = f" (failed in {failed})" if failed else ""
            if key == "full":
                note += _batches(scale)
            bars.append(Bar(f"pipeline, {_run_label(scale, key, label)}", segments, note))
        floor = (scale.get("floor") or {}).get("wall_s")
        bars.append(Bar("floor (DuckDB SQL)", (("floor", floor),) if floor is not None else ()))
        pandas = _pandas_wall(scale)
        pandas_error = (scale.get("pandas") or {}).get("error")
        bars.append(
            Bar(
                "pandas",
                (("pandas", pandas),) if pandas is not None else (),
                f"failed: {pandas_error}" if pandas_error else "",
            )
        )
        orders = scale.get("data", {}).get("raw_rows", {}).get("distinct orders")
        what = f"{orders:,} orders" if orders else f"{scale['orders_target']:,} orders planned"
        panels.append(Panel(f"{scale['name']}: {what}, {scale['days']} days", tuple(bars)))
    return panels


def _spark_section(results: dict) -> list[str]:
    """The marts built on the Spark cluster beside DuckDB's dbt build of the same raw data."""
    rows = []
    for scale in results["scales"]:
        spark = scale.get("spark")
        if not spark:
            continue
        duck = ((scale.get("full") or {}).get("stages") or {}).get("dbt build") or {}
        if "error" in spark:
            rows.append([scale["name"], "failed: " + spark["error"], "", "", "", "", ""])
            continue
        peaks = ", ".join(f"{name} {_mib(mib)}" for name, mib in (spark.get("spark_peak_rss_mib") or {}).items() if mib)
        duck_s = duck.get("wall_s")
        rows.append([
            scale["name"],
            spark.get("cluster", "-"),
            f"{spark.get('register_s', 0):.1f} s",
            f"{spark['dbt_build_s']:.0f} s",
            f"{duck_s:.0f} s ({spark['dbt_build_s'] / duck_s:.1f}x)" if duck_s else "-",
            peaks,
            "; ".join(f"{table}: {verdict}" for table, verdict in (spark.get("checks") or {}).items()),
        ])  # fmt: skip
    if not rows:
        return []
    return [
        "## The marts on Spark (Spark mode) beside DuckDB",
        "",
        "The same raw data, after the full DuckDB run: the loaded days registered as Spark tables, then "
        "`dbt build` on the cluster (all but the DuckDB-only models) against DuckDB's `dbt build` stage "
        "(which also builds `models/ml`). Peak RSS per Spark process (its own high-water mark).",
        "",
        _table(
            ["scale", "cluster", "register", "Spark dbt build", "DuckDB dbt build", "peak RSS", "marts vs DuckDB"],
            rows,
        ),
        "",
    ]


def write(results: dict, results_dir: Path) -> list[Path]:
    """Write json, svg and png (when a run has stages) and md for the run's date; return the paths."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = results_dir / results["date"]
    written = [stem.with_suffix(".json")]
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))
    charts = chart.save(results["date"], chart_panels(results), stem)
    written.extend(charts)
    chart_name = charts[-1].name if charts else None  # the PNG: every Markdown viewer shows it
    md = stem.with_suffix(".md")
    md.write_text(markdown(results, chart_name))
    written.append(md)
    return written

"""Serve layer speed: chart-data latency and dashboard render time in headless Chromium.

`measure()` is what `make bench` calls (directly or through `python -m superset.latency`); it
returns a plain dict (JSON-ready):

- per chart of every dashboard, `GET /api/v1/chart/<id>/data/` timed `runs` times with
  `force=true` (the cache bypassed: DuckDB answers) and `runs` times from Superset's result cache
  (after one warming call), with median and p95 of each, plus the same over all charts;
- per dashboard, the time from navigation to every chart drawn (or failed) in Debian's headless
  Chromium driven by Playwright, never a downloaded browser, with each chart's state.

The browser part is also what `tests/browser/` uses to check that every chart renders.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.envfile import load_env
from core.settings import Settings, get_settings
from superset import provision

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# No sandbox (containers), no GPU, and nothing that phones home or updates itself.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}

# What a chart holder shows instead of a chart when something is wrong.
_PROBLEM_TEXTS = ("no results", "no data", "data error", "unexpected error", "error:")


# --- statistics -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(share * len(ordered))))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(values), 4),
        "p95_s": round(percentile(values, 0.95), 4),
        "min_s": round(min(values), 4),
        "max_s": round(max(values), 4),
        "n": len(values),
    }


# --- chart data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DashboardCharts:
    slug: str
    title: str
    dashboard_id: int
    charts: list[dict[str, Any]]  # id, slice_name, viz_type


def dashboards(client: provision.SupersetClient, slugs: Sequence[str] | None = None) -> list[DashboardCharts]:
    """The dashboards (all, or these slugs) with their charts, as the REST API lists them."""
    rows = client.get("/api/v1/dashboard/", q="(columns:!(id,slug,dashboard_title),page_size:100)")["result"]
    wanted = [row for row in rows if slugs is None or row["slug"] in slugs]
    found = []
    for row in sorted(wanted, key=lambda r: r["slug"] or ""):
        charts = client.get(f"/api/v1/dashboard/{row['id']}/charts")["result"]
        found.append(
            DashboardCharts(
                slug=row["slug"] or str(row["id"]),
                title=row["dashboard_title"],
                dashboard_id=int(row["id"]),
                charts=[
                    {"id": c["id"], "slice_name": c["slice_name"], "viz_type": c["form_data"].get("viz_type")}
                    for c in charts
                ],
            )
        )
    return found


def _timed_chart_data(client: provision.SupersetClient, chart_id: int, force: bool) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.session.get(
        f"{client.url}/api/v1/chart/{chart_id}/data/",
        params={"force": "true"} if force else {},
        timeout=client.timeout,
    )
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise provision.ProvisionError(f"chart {chart_id} data: HTTP {response.status_code} {response.text[:300]}")
    results = response.json()["result"]
    return seconds, sum(int(result.get("rowcount") or 0) for result in results)


def chart_data_latency(client: provision.SupersetClient, boards: list[DashboardCharts], runs: int) -> dict[str, Any]:
    """Per chart: cold (force=true) and cached timings; and the summary over every chart."""
    per_chart: dict[str, Any] = {}
    all_cold: list[float] = []
    all_warm: list[float] = []
    for board in boards:
        for chart in board.charts:
            cold = [_timed_chart_data(client, chart["id"], force=True)[0] for _ in range(runs)]
            _, rows = _timed_chart_data(client, chart["id"], force=False)  # fills the cache
            warm = [_timed_chart_data(client, chart["id"], force=False)[0] for _ in range(runs)]
            per_chart[f"{board.slug}/{chart['slice_name']}"] = {
                "chart_id": chart["id"],
                "viz_type": chart["viz_type"],
                "rows": rows,
                "cache_off": summary(cold),
                "cache_on": summary(warm),
            }
            all_cold += cold
            all_warm += warm
    return {
        "charts": per_chart,
        "cache_off": summary(all_cold) if all_cold else {},
        "cache_on": summary(all_warm) if all_warm else {},
    }


# --- dashboards in Chromium -----------------------------------------------------------------------


@dataclass
class ChartState:
    name: str
    status: str  # ok | empty | error | pending
    text: str = ""


@dataclass
class DashboardRender:
    slug: str
    seconds: float
    charts: list[ChartState] = field(default_factory=list)

    @property
    def problems(self) -> list[ChartState]:
        return [chart for chart in self.charts if chart.status != "ok"]


_CHART_STATES_JS = """
(problemTexts) => [...document.querySelectorAll('[data-test="dashboard-component-chart-holder"]')].map(holder => {
  const grid = holder.querySelector('[data-test="chart-grid-component"]');
  const name = grid ? grid.getAttribute('data-test-chart-name') : '';
  const text = (holder.innerText || '').replace(/\\s+/g, ' ').trim();
  const lower = text.toLowerCase();
  const slice = holder.querySelector('[data-test="slice-container"]');
  const loading = holder.querySelector('[data-test="loading-indicator"], .loading');
  let status = 'pending';
  if (problemTexts.some(t => lower.includes(t)) || holder.querySelector('.ant-empty, .ant-alert-error')) {
    status = (lower.includes('no results') || lower.includes('no data') || holder.querySelector('.ant-empty'))
      ? 'empty' : 'error';
  } else if (slice && !loading && slice.childElementCount > 0) {
    status = 'ok';
  }
  return {name, status, text: text.slice(0, 300)};
})
"""


@contextmanager
def chromium_page(viewport: dict[str, int] | None = None) -> Iterator[Any]:
    """A page in Debian's headless Chromium (Playwright drives it; it downloads nothing)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise provision.ProvisionError(f"{CHROMIUM} not found: install Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            context = browser.new_context(viewport=viewport or VIEWPORT)
            yield context.new_page()
        finally:
            browser.close()


def login(page: Any, url: str, creds: provision.Credentials, attempts: int = 2) -> None:
    """Log in through the form and check the session with /api/v1/me/ (retried once: a headless browser
    occasionally loses its session right after logging in)."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(1, attempts + 1):
        try:
            page.goto(f"{url}/login/")
        except PlaywrightError as exc:
            # On a slow server the last attempt's redirect (to /login/?next=...) can still be arriving.
            if "interrupted by another navigation" not in str(exc):
                raise
            page.wait_for_load_state()
            page.goto(f"{url}/login/")
        page.fill("#username", creds.user)
        page.fill("#password", creds.password)
        page.keyboard.press("Enter")
        with contextlib.suppress(PlaywrightTimeout):  # the /api/v1/me/ check below decides
            page.wait_for_url(lambda target: "/login" not in target, timeout=30_000)
        if page.request.get(f"{url}/api/v1/me/").status == 200:
            return
        if attempt == attempts:
            raise provision.ProvisionError(f"browser login of {creds.user!r} did not keep a session")


def _settle(page: Any, expected_charts: int, deadline: float) -> list[dict[str, Any]]:
    """Poll until every chart holder is drawn, empty or failed; the viewport grows with the page."""
    states: list[dict[str, Any]] = []
    resizes = 0
    while time.perf_counter() < deadline:
        states = page.evaluate(_CHART_STATES_JS, list(_PROBLEM_TEXTS))
        if states and resizes < 3:
            # Charts below the fold are only drawn when scrolled to (dashboard virtualization):
            # make the viewport as tall as the dashboard (the page grows a little with the
            # viewport itself, so only a few times, by real amounts).
            height = int(page.evaluate("() => document.documentElement.scrollHeight"))
            if height > page.viewport_size["height"] + 100:
                page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
                resizes += 1
                continue
        if len(states) >= expected_charts and all(state["status"] != "pending" for state in states):
            break
        page.wait_for_timeout(100)
    return states


def render_dashboard(page: Any, url: str, slug: str, expected_charts: int, timeout: float = 90.0) -> DashboardRender:
    """Open a dashboard and wait until each of its charts is drawn, empty or failed."""
    page.set_viewport_size(VIEWPORT)
    started = time.perf_counter()
    page.goto(f"{url}/superset/dashboard/{slug}/")
    states = _settle(page, expected_charts, started + timeout)
    seconds = time.perf_counter() - started
    return DashboardRender(slug, round(seconds, 3), [ChartState(**state) for state in states])


def screenshot(page: Any, path: Path, expected_charts: int, timeout: float = 30.0) -> None:
    """Save the dashboard as drawn: the charts' entry animations finished, nothing re-loading."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1500)
    _settle(page, expected_charts, time.perf_counter() + timeout)
    # The viewport already spans the dashboard: a full-page capture would resize it and make the
    # grid re-lay out (and briefly unmount its charts) while being captured.
    page.screenshot(path=str(path))


def render_dashboards(
    url: str,
    creds: provision.Credentials,
    boards: list[DashboardCharts],
    runs: int = 1,
    screenshot_dir: Path | None = None,
) -> dict[str, list[DashboardRender]]:
    """Each dashboard rendered `runs` times as `creds` (the last run's screenshot saved if asked)."""
    renders: dict[str, list[DashboardRender]] = {}
    with chromium_page() as page:
        login(page, url, creds)
        for board in boards:
            for _ in range(runs):
                renders.setdefault(board.slug, []).append(render_dashboard(page, url, board.slug, len(board.charts)))
            if screenshot_dir is not None:
                screenshot(page, screenshot_dir / f"{board.slug}.png", len(board.charts))
    return renders


# --- what `make bench` calls ----------------------------------------------------------------------


def measure(
    settings: Settings | None = None,
    runs: int = 5,
    *,
    slugs: Sequence[str] | None = None,
    browser: bool = True,
    render_runs: int = 2,
) -> dict[str, Any]:
    """Chart-data latency (cache off and on) for every dashboard chart, and dashboard render times."""
    settings = settings or get_settings()
    url = provision.base_url(settings)
    creds = provision.admin_credentials()
    client = provision.SupersetClient(url, creds)
    boards = dashboards(client, slugs)
    result: dict[str, Any] = {
        "superset_url": url,
        "runs": runs,
        "dashboards": {board.slug: len(board.charts) for board in boards},
        "chart_data": chart_data_latency(client, boards, runs),
    }
    if browser:
        renders = render_dashboards(url, creds, boards, runs=render_runs)
        result["dashboard_render"] = {
            slug: {
                **summary([render.seconds for render in runs_]),
                "problems": [asdict(chart) for render in runs_ for chart in render.problems],
            }
            for slug, runs_ in renders.items()
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m superset.latency", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="calls per chart with the cache off and on")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium render times")
    parser.add_argument("--dashboard", action="append", help="only this dashboard slug (repeatable)")
    args = parser.parse_args(argv)
    load_env(required=False)  # the generated admin login (the caller's environment wins)
    try:
        result = measure(runs=args.runs, slugs=args.dashboard, browser=not args.no_browser)
    except provision.ProvisionError as exc:
        print(f"superset latency: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

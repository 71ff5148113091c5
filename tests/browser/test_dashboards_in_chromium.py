"""Decision-makers' view: every dashboard renders in a real browser, as the executive sees it.

Debian's headless Chromium (`/usr/bin/chromium`), driven by Playwright, never a downloaded browser,
logs in through Superset's login form as the executive of `superset/roles.yaml`, opens each
dashboard and waits until every chart is drawn; a chart showing an error or "No results" fails the
test. The screenshots go to `test-artifacts/screenshots/<slug>.png` and, once every dashboard
passed, to `docs/screenshots/` (committed, linked from the README) when a dashboard has no
screenshot there yet or `UPDATE_SCREENSHOTS=1` is set: a plain `make test` must not rewrite
tracked files (the fixture's dates and "modified ... ago" labels change every run).

The Superset is a real one with the fixture serving file (`tests/superset/stack.py`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from superset import latency, provision
from tests.superset.stack import USERS, Stack, running_superset

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"

pytestmark = pytest.mark.skipif(
    not latency.CHROMIUM.exists(),
    reason=f"{latency.CHROMIUM} is not installed (Debian package `chromium`); this test never downloads a browser",
)


@pytest.fixture(scope="module")
def superset_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_superset(tmp_path_factory, "superset-browser") as stack:
        yield stack


def _asset_slugs() -> set[str]:
    return {yaml.safe_load(path.read_text())["slug"] for path in (provision.ASSETS_DIR / "dashboards").glob("*.yaml")}


def _role_dashboards(role: str) -> list[str]:
    roles = yaml.safe_load((provision.ASSETS_DIR.parent / "roles.yaml").read_text())
    return roles["roles"][role]["dashboards"]


def _small_png(source: Path, target: Path) -> None:
    """Copy a screenshot for the docs, reduced to a 256-colour palette when Pillow is there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        from PIL import Image
    except ImportError:
        shutil.copyfile(source, target)
        return
    with Image.open(source) as image:
        image.convert("RGB").quantize(colors=256).save(target, optimize=True)


def test_every_dashboard_renders_for_the_executive(superset_stack: Stack, artifacts_dir: Path) -> None:
    boards = latency.dashboards(superset_stack.client)
    assert {board.slug for board in boards} == _asset_slugs()
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    # Each dashboard as the least privileged role that may open it: the executive's list from
    # superset/roles.yaml, the rest (Governance) as the analyst.
    executive_slugs = set(_role_dashboards("Executive"))
    base_url = provision.base_url(superset_stack.settings)
    renders = latency.render_dashboards(
        base_url, USERS["executive"], [b for b in boards if b.slug in executive_slugs], screenshot_dir=SCREENSHOTS
    )
    renders |= latency.render_dashboards(
        base_url, USERS["analyst"], [b for b in boards if b.slug not in executive_slugs], screenshot_dir=SCREENSHOTS
    )

    failures = []
    for board in boards:
        render = renders[board.slug][-1]
        names = sorted(chart.name for chart in render.charts)
        if names != sorted(chart["slice_name"] for chart in board.charts):
            failures.append(f"{board.slug}: drew {names}, expected {[c['slice_name'] for c in board.charts]}")
        failures += [f"{board.slug} / {c.name}: {c.status}: {c.text[:150]}" for c in render.problems]
        assert (SCREENSHOTS / f"{board.slug}.png").stat().st_size > 10_000, board.slug
    timings = {slug: runs[-1].seconds for slug, runs in renders.items()}
    (artifacts_dir / "dashboard_render_seconds.json").write_text(json.dumps(timings, indent=2) + "\n")
    print(f"\ndashboard render seconds: {timings}")
    assert not failures, "\n".join(failures)

    # Every dashboard passed: these are the README's screenshots.
    refresh = os.environ.get("UPDATE_SCREENSHOTS") == "1"
    for board in boards:
        target = DOCS_SCREENSHOTS / f"{board.slug}.png"
        if refresh or not target.exists():
            _small_png(SCREENSHOTS / f"{board.slug}.png", target)


def test_the_country_manager_sees_only_germany_in_the_browser(superset_stack: Stack) -> None:
    url = provision.base_url(superset_stack.settings)
    boards = latency.dashboards(superset_stack.client, ["executive-kpis"])
    countries: set[str] = set()

    def record(response: object) -> None:
        # The chart data the dashboard fetched, as the browser received it.
        if "/api/v1/chart/data" in response.url and response.status == 200:  # type: ignore[attr-defined]
            for result in response.json().get("result", []):  # type: ignore[attr-defined]
                countries.update(row["country_code"] for row in result.get("data", []) if "country_code" in row)

    with latency.chromium_page() as page:
        latency.login(page, url, USERS["country_manager"])
        page.on("response", record)
        render = latency.render_dashboard(page, url, "executive-kpis", len(boards[0].charts))
        assert not render.problems, render.problems
        assert countries == {"DE"}
        listed = page.request.get(f"{url}/api/v1/dashboard/").json()["result"]
        assert [row["slug"] for row in listed] == ["executive-kpis"]

"""The daily pipeline run headless, over a date range: the same steps the `shop_daily` DAG runs.

Used for the demo history in `make run` and by benchmarks: land every day, gate 1 on the landed
batches, load all days in one transaction, `dbt build`, gate 2, publish. Airflow runs the very
same functions one day at a time.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable

from core.memory import release_freed_memory
from core.settings import Settings
from ingestion.app_db.batch import land_days, load_days
from pipelines.marts import build_marts
from pipelines.publishing import publish_for_dashboards
from quality.pipeline_gates import gate_landed_batches, gate_marts

# in order; the first is the extraction of every source, the others run on all days at once
STAGES = ("extract+land", "gate 1", "load", "dbt build", "gate 2", "publish")


def run_range(
    settings: Settings,
    start: dt.date,
    end: dt.date,
    run_id: str,
    progress: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr, flush=True),
    sources: tuple[str, ...] = ("shop",),
    through: str = "publish",
) -> dict[str, float]:
    """Run the pipeline for days [start, end]; return seconds spent per stage.

    `sources`: "shop" (the app DB) and optionally "marketing_api" (needs the API reachable at
    MARKETING_API_URL). `through`: the last stage to run, e.g. "load" to fill the warehouse's raw
    layer and leave the marts to the `elt_marts` DAG.
    """
    if through not in STAGES:
        raise ValueError(f"through={through!r}: one of {', '.join(STAGES)}")
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    timings: dict[str, float] = {}

    began = time.monotonic()
    landed = land_days(settings, days, run_id)
    release_freed_memory()
    timings["extract+land"] = time.monotonic() - began

    if "marketing_api" in sources:
        from ingestion.marketing_api import batch as marketing

        began = time.monotonic()
        for n, ds in enumerate(days, 1):
            marketing.land_day(settings, ds, run_id)
            print(f"\r  land marketing_api {ds} ({n}/{len(days)})", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        timings["api fetch+land"] = time.monotonic() - began

    def load_all() -> None:
        load_days(settings, days, run_id)
        if "marketing_api" in sources:
            marketing.load_days(settings, days, run_id)

    for stage, step in (
        ("gate 1", lambda: gate_landed_batches(settings, landed, run_id)),
        ("load", load_all),
        ("dbt build", lambda: build_marts(settings)),
        ("gate 2", lambda: gate_marts(settings, run_id)),
        ("publish", lambda: publish_for_dashboards(settings, run_id)),
    )[: STAGES.index(through)]:
        began = time.monotonic()
        progress(f"  {stage} ...")
        step()
        release_freed_memory()  # so the next stage's peak does not sit on this one's freed heap
        timings[stage] = time.monotonic() - began
        progress(f"  {stage} done in {timings[stage]:.1f}s")
    return timings

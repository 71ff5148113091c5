"""Every mart rebuilt from raw, gated and published: what an erasure needs after it deleted rows.

A full refresh because an incremental mart never drops rows deleted upstream. Gate 2 audits the
rebuilt marts before publish copies them, as on every other path to the dashboards.
"""

from __future__ import annotations

from core.dbt_cli import run_dbt
from core.settings import Settings
from pipelines.publishing import publish_for_dashboards
from quality.pipeline_gates import gate_marts


def rebuild_and_publish(settings: Settings, run_id: str) -> str:
    """dbt build --full-refresh, gate 2, publish; returns the published run id."""
    run_dbt(settings, "build", "--full-refresh", "--quiet", quiet=True)
    gate_marts(settings, run_id)
    return publish_for_dashboards(settings, run_id).run_id

"""Publish for the dashboards: the serving file, then Superset's cache, so charts show it now."""

from __future__ import annotations

from core.settings import Settings
from serving.publish import PublishResult, dbt_manifest_path, publish, publish_health
from superset.provision import clear_data_cache


def publish_for_dashboards(settings: Settings, run_id: str) -> PublishResult:
    """Publish, then drop Superset's cached chart results so dashboards show the new file now."""
    result = publish(
        settings.warehouse_path,
        settings.serving_path,
        run_id,
        settings=settings,
        manifest_path=dbt_manifest_path(settings),
    )
    clear_data_cache(settings)
    return result


def refresh_health_for_dashboards(settings: Settings, run_id: str) -> PublishResult:
    """Refresh the Data health tables in serving (marts unchanged) and drop Superset's cache."""
    result = publish_health(settings.warehouse_path, settings.serving_path, run_id, settings=settings)
    if result.tables:
        clear_data_cache(settings)
    return result

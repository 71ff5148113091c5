"""Superset in cluster mode for real: metadata on PostgreSQL, caches in Redis, same assets.

Starts Superset through `superset.provision` with `STACK_MODE=cluster` on its own PostgreSQL
database and Redis database, imports `superset/assets/`, and checks that the metadata lives in
PostgreSQL, that a chart's results are cached in Redis (so every web worker and host shares them)
and that `clear_data_cache` (what publish calls) empties that cache. Skips only when PostgreSQL
or Redis on 127.0.0.1 does not answer.
"""

from __future__ import annotations

import os
import secrets

import pytest
import redis
from sqlalchemy import create_engine, text

from tests.cluster import harness
from tests.conftest import restored_environ

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture(scope="module")
def superset_cluster(tmp_path_factory):
    reason = harness.unavailable_reason()
    if reason:
        pytest.skip(reason)
    from core.settings import get_settings
    from stackctl import cluster, procs, superset_service
    from superset import provision
    from tests.superset.serving_fixture import write_serving_file

    tag = secrets.token_hex(4)
    root = tmp_path_factory.mktemp("superset-cluster")
    serving = root / "warehouse" / "serving.duckdb"
    serving.parent.mkdir(parents=True)
    write_serving_file(serving)
    metadata = f"postgresql://postgres@127.0.0.1:5432/superset_ct_{tag}"
    cache = f"{harness.REDIS_URL}/{harness.redis_db(1)}"  # no other test worker's database
    with restored_environ():
        os.environ.update(
            {
                "STACK_MODE": "cluster",
                "SUPERSET_METADATA_URI": metadata,
                "SUPERSET_CACHE_REDIS_URL": cache,
                # not the real stack's queue (db 2), should a Celery worker start
                "SUPERSET_CELERY_BROKER_URL": f"{harness.REDIS_URL}/{harness.redis_db(0)}",
                "STACK_DATA_DIR": str(root),
                "STACK_VAR_DIR": str(root / "var"),
                "SERVING_PATH": str(serving),
                "SUPERSET_PORT": str(procs.free_port()),
                "SUPERSET_ADMIN_USER": "cluster_admin",
                "SUPERSET_ADMIN_PASSWORD": secrets.token_urlsafe(16),
                "SUPERSET_SECRET_KEY": secrets.token_urlsafe(32),
                "SUPERSET_WEB_WORKERS": "1",
            }
        )
        os.environ.pop("SUPERSET_HOME", None)
        settings = get_settings()
        try:
            superset_service.init_metadata(settings, log=lambda msg: None)
            superset_service.start(settings, log=lambda msg: None)
            provision.import_assets(settings, log=lambda msg: None)
            client = provision.SupersetClient(provision.base_url(settings), provision.admin_credentials())
            yield settings, client, metadata, redis.Redis.from_url(cache)
        finally:
            superset_service.stop(settings)
            cluster.drop_database(metadata)
            keys = list(redis.Redis.from_url(cache).scan_iter(match="shop_superset_*"))
            if keys:
                redis.Redis.from_url(cache).delete(*keys)


def test_metadata_lives_in_postgresql(superset_cluster):
    settings, _, metadata, _ = superset_cluster
    engine = create_engine(metadata)
    try:
        with engine.connect() as conn:
            users = conn.execute(text("select username from ab_user")).scalars().all()
            dashboards = conn.execute(text("select count(*) from dashboards")).scalar_one()
    finally:
        engine.dispose()
    assert os.environ["SUPERSET_ADMIN_USER"] in users
    assert dashboards >= 1, "the assets were imported into the PostgreSQL metadata"
    assert not (settings.superset_home / "superset.db").exists(), "no SQLite metadata in cluster mode"


def test_chart_results_are_cached_in_redis_and_cleared_by_publish(superset_cluster):
    from superset import provision

    settings, client, _, cache = superset_cluster
    charts = client.get("/api/v1/chart/", q="(page_size:100)")["result"]
    chart = next(c for c in charts if c["slice_name"])
    assert client.get(f"/api/v1/chart/{chart['id']}/data/")["result"]
    data_keys = list(cache.scan_iter(match=f"{provision.REDIS_DATA_CACHE_PREFIX}*"))
    assert data_keys, "chart results must be cached in Redis"
    assert provision.clear_data_cache(settings) == len(data_keys)
    assert not list(cache.scan_iter(match=f"{provision.REDIS_DATA_CACHE_PREFIX}*"))
    assert not (settings.superset_home / "cache" / "data").exists(), "no file cache in cluster mode"

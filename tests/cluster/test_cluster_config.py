"""Only configuration differs between the modes: what each mode hands to Airflow (no services needed)."""

from __future__ import annotations

import pytest

from stackctl import airflow_service, cluster

CLUSTER_VARS = (
    "STACK_MODE",
    "AIRFLOW_METADATA_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CELERY_WORKERS",
    "CELERY_WORKER_CONCURRENCY",
    "SUPERSET_METADATA_URI",
    "SUPERSET_CACHE_REDIS_URL",
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__PARALLELISM",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
)


@pytest.fixture
def clean(stack, monkeypatch):
    for name in CLUSTER_VARS:
        monkeypatch.delenv(name, raising=False)
    return stack


def test_embedded_mode_needs_neither_postgresql_nor_redis(clean):
    env = airflow_service.airflow_env(clean)
    assert cluster.mode() == "embedded"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite:///")
    assert not any(key.startswith("AIRFLOW__CELERY__") for key in env)


def test_cluster_mode_is_postgresql_celery_and_redis_with_local_defaults(clean, monkeypatch):
    embedded = airflow_service.airflow_env(clean)
    monkeypatch.setenv("STACK_MODE", "cluster")
    env = airflow_service.airflow_env(clean)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == cluster.DEFAULTS["AIRFLOW_METADATA_URL"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith("postgresql+psycopg://")
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/0"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + cluster.DEFAULTS["AIRFLOW_METADATA_URL"]
    assert env["AIRFLOW__CORE__PARALLELISM"] == "4"  # 2 workers x 2 slots
    # The DAGs and the data stay exactly where embedded mode has them.
    for key in ("AIRFLOW__CORE__DAGS_FOLDER", "WAREHOUSE_PATH", "SERVING_PATH", "LAKE_DIR", "APP_DB_URL"):
        assert env[key] == embedded[key], key


def test_airflow_own_settings_win_and_a_wrong_mode_is_one_clear_error(clean, monkeypatch):
    monkeypatch.setenv("STACK_MODE", "cluster")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg://af@db:5432/af")
    monkeypatch.setenv("CELERY_WORKERS", "3")
    env = airflow_service.airflow_env(clean)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg://af@db:5432/af"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql+psycopg://af@db:5432/af"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "6"
    monkeypatch.setenv("STACK_MODE", "swarm")
    with pytest.raises(cluster.ClusterError, match="STACK_MODE='swarm'"):
        cluster.mode()


def test_the_locked_celery_has_what_the_celery_provider_imports():
    # Celery 5.7 removed this helper; the provider's executor imports it, and without it no task is
    # ever queued in cluster mode. requirements/pipeline.in pins celery<5.7 for that.
    from airflow.providers.celery.executors import celery_executor_utils  # noqa: F401
    from celery.backends.database import retry  # noqa: F401

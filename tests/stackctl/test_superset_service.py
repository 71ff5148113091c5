"""Superset's service manager (stackctl) and its asset provisioning (superset/provision.py) agree on
cluster mode without provision.py reading stackctl: the cache's URL travels in the environment."""

from __future__ import annotations

import os

import pytest

from stackctl import cluster, superset_service
from superset import provision
from tests.conftest import restored_environ


def test_clear_data_cache_in_cluster_mode_needs_the_cache_url(stack, monkeypatch):
    monkeypatch.setenv("STACK_MODE", "cluster")
    monkeypatch.delenv("SUPERSET_CACHE_REDIS_URL", raising=False)
    # Emptying the file cache here would leave the Redis cache stale: say what to do instead.
    with pytest.raises(provision.ProvisionError, match="SUPERSET_CACHE_REDIS_URL"):
        provision.clear_data_cache(stack)
    with restored_environ():
        cluster.use_mode(None)  # what every `python -m stackctl` command does after reading .env
        assert os.environ["SUPERSET_CACHE_REDIS_URL"] == cluster.DEFAULTS["SUPERSET_CACHE_REDIS_URL"]


def test_embedded_mode_clears_the_file_cache(stack, monkeypatch):
    monkeypatch.delenv("STACK_MODE", raising=False)
    monkeypatch.delenv("SUPERSET_CACHE_REDIS_URL", raising=False)
    cache = stack.superset_home / "cache" / "data"
    cache.mkdir(parents=True)
    (cache / "entry").write_text("cached chart result")
    assert provision.clear_data_cache(stack) == 1
    assert not list(cache.iterdir())


def test_superset_processes_get_cluster_modes_metadata_and_cache(stack, monkeypatch):
    monkeypatch.setenv("SUPERSET_SECRET_KEY", "a-test-secret-key-of-some-length")
    monkeypatch.setenv("STACK_MODE", "cluster")
    monkeypatch.setenv("SUPERSET_METADATA_URI", "postgresql://postgres@127.0.0.1:5432/superset_probe")
    monkeypatch.delenv("SUPERSET_CACHE_REDIS_URL", raising=False)
    env = superset_service.superset_env(stack)
    assert env["SUPERSET_METADATA_URI"].endswith("/superset_probe")
    assert env["SUPERSET_CACHE_REDIS_URL"] == cluster.DEFAULTS["SUPERSET_CACHE_REDIS_URL"]
    assert env["SUPERSET_CONFIG_PATH"] == str(provision.CONFIG_PATH)
    assert "PYTHONPATH" not in env

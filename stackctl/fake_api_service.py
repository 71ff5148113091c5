"""The stand-in for the public marketing/FX API, run as a local service for `make run`.

The real vendor API is on the internet, which this stack may not reach; the fake server in
`ingestion/marketing_api/server.py` plays it on 127.0.0.1 (auth, paging, rate limits). Tests
start their own instance with fault injection; this is the well-behaved one for the demo.
"""

from __future__ import annotations

import os
import sys

from core.settings import Settings
from stackctl import procs

NAME = "marketing-api"


def port() -> int:
    return int(os.environ.get("MARKETING_API_PORT", "8090"))


def url() -> str:
    return os.environ.get("MARKETING_API_URL", f"http://127.0.0.1:{port()}")


def up(settings: Settings, log=print) -> str:
    """Start the fake API (if not running) and wait until it answers; return its URL."""
    if not procs.is_running(NAME, settings.run_dir):
        procs.ensure_port_free(port(), "the marketing API stand-in", port_env="MARKETING_API_PORT")
        procs.start(
            NAME,
            # A generous rate limit: the 90-day history fetches ~270 pages in one go.
            [sys.executable, "-m", "ingestion.marketing_api.server", "--port", str(port()), "--rate-limit", "100"],
            env={**os.environ, "PYTHONPATH": str(settings.repo_root)},
            run_dir=settings.run_dir,
        )
    procs.wait_for_http(f"{url()}/healthz", timeout=30, process_name=NAME, run_dir=settings.run_dir)
    os.environ.setdefault("MARKETING_API_URL", url())
    os.environ.setdefault("MARKETING_API_RPS", "80")
    log(f"marketing API stand-in at {url()}")
    return url()


def down(settings: Settings) -> list[str]:
    return [NAME] if procs.stop(NAME, run_dir=settings.run_dir) else []

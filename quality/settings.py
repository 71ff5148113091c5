"""The quality gates' knobs, read from the environment when asked (never at import time).

| variable | default | meaning |
| --- | --- | --- |
| `FRESHNESS_DEFAULT_SLA_HOURS` | 30 | a source is late when its newest landed day is older than this |
| `FRESHNESS_SLA_HOURS` | (none) | per-source SLAs overriding the default, e.g. `shop=30,marketing_api=48` |
| `GATE1_CHUNK_ROWS` | 1000000 | gate 1 reads at most this many rows into one frame (whole days per chunk) |
| `GX_DOCS_DIR` | `<STACK_VAR_DIR>/gx_docs` | validation results and Data Docs (run output, outside git) |
| `GX_DOCS_KEEP_DAYS` | 90 | the daily Data Docs rebuild drops validation results older than this |

A value the gates cannot use is a `core.settings.SettingError` naming the variable.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.settings import SettingError, env_int, env_path, get_settings, parse_decimal

DEFAULT_SLA_HOURS = 30.0
# ~0.5 KiB a row in pandas plus what GX computes on it: 1M rows peak at about 1 GiB, whatever the
# history's length.
DEFAULT_CHUNK_ROWS = 1_000_000


def freshness_slas() -> tuple[dict[str, float], float]:
    """(per-source SLAs in hours from FRESHNESS_SLA_HOURS, the default from FRESHNESS_DEFAULT_SLA_HOURS)."""
    default_value = os.environ.get("FRESHNESS_DEFAULT_SLA_HOURS", "").strip()
    default = parse_decimal("FRESHNESS_DEFAULT_SLA_HOURS", default_value) if default_value else DEFAULT_SLA_HOURS
    slas: dict[str, float] = {}
    for item in os.environ.get("FRESHNESS_SLA_HOURS", "").split(","):
        if not item.strip():
            continue
        name, sep, hours = item.partition("=")
        if not sep or not name.strip():
            raise SettingError(f"FRESHNESS_SLA_HOURS: expected source=hours, got {item.strip()!r}")
        slas[name.strip()] = parse_decimal(f"FRESHNESS_SLA_HOURS ({name.strip()})", hours)
    return slas, default


def gate1_chunk_rows() -> int:
    return env_int("GATE1_CHUNK_ROWS", DEFAULT_CHUNK_ROWS, 1)


def gx_docs_dir() -> Path:
    return env_path("GX_DOCS_DIR", get_settings().var_dir / "gx_docs")


def gx_docs_keep_days() -> int:
    return env_int("GX_DOCS_KEEP_DAYS", 90, 1)

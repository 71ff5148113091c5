"""The quality gates' knobs, read from the environment when asked (never at import time).

| variable | default | meaning |
| --- | --- | --- |
| `GATE1_CHUNK_ROWS` | 1000000 | gate 1 reads at most this many rows into one frame (whole days per chunk) |
| `GX_DOCS_DIR` | `<STACK_VAR_DIR>/gx_docs` | validation results and Data Docs (run output, outside git) |
| `GX_DOCS_KEEP_DAYS` | 90 | the daily Data Docs rebuild drops validation results older than this |

A value the gates cannot use is a `core.settings.SettingError` naming the variable.

Freshness SLAs are not settings here: they live in the dbt source YAMLs only (`freshness:` in
`dbt_project/models/staging/<source>/_<source>__sources.yml`), which `quality.freshness` runs
through `dbt source freshness`. The retired `FRESHNESS_SLA_HOURS` / `FRESHNESS_DEFAULT_SLA_HOURS`
are refused with that pointer, so an old override is never silently ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.settings import SettingError, env_int, env_path, get_settings

# ~0.5 KiB a row in pandas plus what GX computes on it: 1M rows peak at about 1 GiB, whatever the
# history's length.
DEFAULT_CHUNK_ROWS = 1_000_000
RETIRED_FRESHNESS_VARIABLES = ("FRESHNESS_SLA_HOURS", "FRESHNESS_DEFAULT_SLA_HOURS")
FRESHNESS_SLA_FILES = "dbt_project/models/staging/<source>/_<source>__sources.yml"


def refuse_retired_freshness_settings() -> None:
    """A pointer, not a setting: the freshness SLAs moved into the dbt source YAMLs."""
    for name in RETIRED_FRESHNESS_VARIABLES:
        if os.environ.get(name, "").strip():
            raise SettingError(
                f"{name} is no longer read: freshness SLAs live in the dbt source YAMLs ({FRESHNESS_SLA_FILES}, "
                "`freshness: warn_after / error_after`); move the value there and remove the variable"
            )


def gate1_chunk_rows() -> int:
    return env_int("GATE1_CHUNK_ROWS", DEFAULT_CHUNK_ROWS, 1)


def gx_docs_dir() -> Path:
    return env_path("GX_DOCS_DIR", get_settings().var_dir / "gx_docs")


def gx_docs_keep_days() -> int:
    return env_int("GX_DOCS_KEEP_DAYS", 90, 1)

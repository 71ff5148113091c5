"""The limits every partner file is held to before and while it is read, with their settings.

Partner files come from outside: a file may be huge, slow to parse, nested without end or named
to break paths. These limits keep one such file from stopping the whole inbox (each is a reason
to quarantine that file, never to fail the run). Each has an environment override for operators:

    PARTNER_FILES_MAX_BYTES          largest file read (default 256 MiB; the file is read whole)
    PARTNER_FILES_MAX_SECONDS        time to check one file in its worker process (default 600)
    PARTNER_FILES_MAX_NAME_BYTES     longest file name accepted, in UTF-8 bytes (default 200, so
                                     the pipeline's own prefixes still fit the 255-byte file-name limit)
    PARTNER_FILES_MAX_JSON_DEPTH     deepest JSON nesting accepted (default 32; records are flat)
    PARTNER_FILES_MAX_AGE_DAYS       oldest business date accepted, in days before today (default 3660)
    PARTNER_FILES_ALLOW_EMPTY_REPLACEMENT
                                     "1": a file with no data rows may replace a day that holds rows
                                     (default: per contract, off)
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


@dataclass(frozen=True)
class Limits:
    """One run's limits (read from the environment when the run starts)."""

    max_bytes: int = 256 * 1024 * 1024
    max_seconds: float = 600.0
    max_name_bytes: int = 200
    max_json_depth: int = 32
    max_age_days: int = 3660
    allow_empty_replacement: bool | None = None  # None: the contract decides

    @classmethod
    def from_env(cls) -> Limits:
        base = cls()
        empty = os.environ.get("PARTNER_FILES_ALLOW_EMPTY_REPLACEMENT", "").strip().lower()
        return cls(
            max_bytes=int(_env_number("PARTNER_FILES_MAX_BYTES", base.max_bytes)),
            max_seconds=_env_number("PARTNER_FILES_MAX_SECONDS", base.max_seconds),
            max_name_bytes=int(_env_number("PARTNER_FILES_MAX_NAME_BYTES", base.max_name_bytes)),
            max_json_depth=int(_env_number("PARTNER_FILES_MAX_JSON_DEPTH", base.max_json_depth)),
            max_age_days=int(_env_number("PARTNER_FILES_MAX_AGE_DAYS", base.max_age_days)),
            allow_empty_replacement=None if not empty else empty in ("1", "true", "yes", "on"),
        )

"""Governance's knobs, read from the environment when asked (never at import time).

| variable | default | meaning |
| --- | --- | --- |
| `STALE_AFTER_DAYS` | 30 | the catalog marks a model stale when it was not built for this long |
| `STALE_GRACE_DAYS` | 30 | days from deprecating a stale model to archiving it (0: at the next run) |
| `ACCESS_LOG_RETENTION_DAYS` | 365 | `ops.access_log` keeps this many days of Airflow and Superset events |
| `SUPERSET_METADATA_URI` | `sqlite:///<SUPERSET_HOME>/superset.db` | where the access log reads Superset's own log |
| `GOVERNANCE_AUDIT_LOG` | `<STACK_VAR_DIR>/governance/audit.jsonl` | the hash-chained audit log of requests |
| `GOVERNANCE_ACTOR` | the OS user | who is recorded as asking (the DAG passes the triggering user) |

`PII_HASH_KEY` is a secret, not a knob: it comes from `.env` and is checked where it is used.
A value governance cannot use is a `core.settings.SettingError` naming the variable.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from core.settings import Settings, env_int


def stale_after_days() -> int:
    return env_int("STALE_AFTER_DAYS", 30, 1)


def stale_grace_days() -> int:
    """Days between deprecating a stale model (owner told) and archiving it; 0 archives at the next run."""
    return env_int("STALE_GRACE_DAYS", 30, 0)


def access_log_retention_days() -> int:
    return env_int("ACCESS_LOG_RETENTION_DAYS", 365, 1)


def superset_metadata_url(settings: Settings) -> str:
    return os.environ.get("SUPERSET_METADATA_URI") or f"sqlite:///{settings.superset_home / 'superset.db'}"


def governance_dir(settings: Settings) -> Path:
    """`var/governance/`: the audit log, the erasure list and export archives."""
    return settings.var_dir / "governance"


def archive_dir(settings: Settings) -> Path:
    """`var/governance/archive/`: one dated folder per archived model, what `catalog restore` reads."""
    return governance_dir(settings) / "archive"


def audit_log_file(settings: Settings) -> Path:
    override = os.environ.get("GOVERNANCE_AUDIT_LOG")
    return Path(override) if override else governance_dir(settings) / "audit.jsonl"


def current_actor() -> str:
    """Who asked: `GOVERNANCE_ACTOR` (the DAG passes the triggering user), else the OS user."""
    return os.environ.get("GOVERNANCE_ACTOR") or getpass.getuser()

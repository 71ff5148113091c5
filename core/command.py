"""What every documented command does before its work: the stack's settings and private files.

`python -m quality`, `governance`, `ml`, `ingestion.partner_files`, `stackctl.dbt_portable`,
`superset.provision` and `bench` are run by hand from a user's shell, where nobody exported
`.env`: each calls `prepare_command()` first, so it reads the same settings `make run` wrote and
creates what it writes private. A missing or placeholder secret, or a value the stack cannot
use (`AIRFLOW_PORT=abc`), is one line, not a traceback.
"""

from __future__ import annotations

import sys

from core.envfile import EnvFileError, load_env
from core.private_files import use_private_umask
from core.settings import SettingError, get_settings


def prepare_command(*, required: bool = False) -> None:
    """Load `.env` (the caller's environment wins) and use a private umask; exit 2 on a bad .env."""
    use_private_umask()
    try:
        load_env(required=required)
        get_settings()  # a bad port or size is one line here, not a traceback later
    except (EnvFileError, SettingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

"""Superset's own config refuses a secret key anyone with the repository knows.

`make run` refuses a placeholder before Superset starts; this is the guard for a Superset started
some other way (by hand, a container with a copied .env.example), where forged session cookies
would follow from a public SECRET_KEY.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SUPERSET_PY = REPO / ".venv" / "superset" / "bin" / "python"


def _load_config(tmp_path: Path, secret: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPERSET")}
    env.update({"SUPERSET_SECRET_KEY": secret, "STACK_VAR_DIR": str(tmp_path / "var")})
    code = "import runpy, sys; runpy.run_path(sys.argv[1])"
    return subprocess.run(
        [str(SUPERSET_PY), "-c", code, str(REPO / "superset" / "superset_config.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("placeholder", ["<generated>", "changeme", "CHANGE_ME", "secret"])
def test_a_placeholder_secret_key_stops_superset(tmp_path, placeholder):
    result = _load_config(tmp_path, placeholder)
    assert result.returncode != 0 and "SUPERSET_SECRET_KEY is a placeholder" in result.stderr, result.stderr[-1500:]


def test_a_random_secret_key_is_accepted(tmp_path):
    result = _load_config(tmp_path, os.urandom(24).hex())
    assert result.returncode == 0, result.stderr[-1500:]

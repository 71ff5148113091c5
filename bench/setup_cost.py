"""Set-up cost: time and disk for `make install` from a fresh clone with cold package caches.

Clones the repository's committed HEAD into a temporary folder, runs `make install` there with an
empty uv cache (and no pip cache), and measures the environments on disk. Downloads ~500 MB from
PyPI, hence only with `python -m bench --setup`. Uncommitted changes are not part of a clone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def _du(path: Path) -> str:
    result = subprocess.run(["du", "-sh", str(path)], capture_output=True, text=True, check=False)  # noqa: S603, S607
    return result.stdout.split("\t", 1)[0] if result.returncode == 0 else "-"


def measure_setup(repo: Path) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-setup-"))
    try:
        clone, cache = tmp / "clone", tmp / "uv-cache"
        began = time.monotonic()
        subprocess.run(["git", "clone", "--quiet", str(repo), str(clone)], check=True)  # noqa: S603, S607
        clone_s = time.monotonic() - began
        env = {**os.environ, "UV_CACHE_DIR": str(cache), "PIP_NO_CACHE_DIR": "1"}
        began = time.monotonic()
        result = subprocess.run(["make", "install"], cwd=clone, env=env, capture_output=True, text=True, check=False)  # noqa: S607
        install_s = time.monotonic() - began
        if result.returncode != 0:
            return {"error": f"make install exited {result.returncode}: {result.stderr.strip().splitlines()[-1:]}"}
        venvs = clone / ".venv"
        disk = {"total": _du(venvs), **{p.name: _du(p) for p in sorted(venvs.iterdir()) if p.is_dir()}}
        return {"clone_s": clone_s, "install_s": install_s, "disk": disk, "uv_cache": _du(cache)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

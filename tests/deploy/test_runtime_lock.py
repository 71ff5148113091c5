"""The production image installs the runtime lock: the development lock's versions, minus the tools.

`make lock` compiles requirements/pipeline-dev.in (production + tests + lint) into
pipeline.lock.txt, which `make install` and CI use, and requirements/pipeline.in into
pipeline-runtime.lock.txt with the first as constraints. The image in docker/ must install the
second: the same code at the same versions, without pytest, ruff, sqlfluff or a browser driver.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "requirements"
DEV_TOOLS = {
    "pytest",
    "pytest-timeout",
    "pytest-xdist",
    "aiosmtpd",
    "ruff",
    "sqlfluff",
    "sqlfluff-templater-dbt",
    "playwright",
}


def _pins(lock: Path) -> dict[str, str]:
    pins = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1).lower())] = match.group(2)
    return pins


def _requirements(in_file: Path) -> set[str]:
    names = set()
    for line in in_file.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.sub(r"[-_.]+", "-", re.split(r"[<>=\[!~ ]", line, maxsplit=1)[0].lower()))
    return names


def test_the_runtime_lock_has_the_development_versions_without_the_tools():
    dev, runtime = _pins(REQUIREMENTS / "pipeline.lock.txt"), _pins(REQUIREMENTS / "pipeline-runtime.lock.txt")
    assert DEV_TOOLS <= set(dev), "the development lock holds the test and lint tools"
    assert not DEV_TOOLS & set(runtime), f"tools in the runtime lock: {sorted(DEV_TOOLS & set(runtime))}"
    assert {name: dev.get(name) for name in runtime} == runtime, "a runtime pin differs from the development lock"
    # everything production names is in the image
    assert _requirements(REQUIREMENTS / "pipeline.in") <= set(runtime)
    assert _requirements(REQUIREMENTS / "pipeline-dev.in") - DEV_TOOLS <= set(runtime)


def test_the_tools_are_named_only_in_the_development_requirements():
    assert not DEV_TOOLS & _requirements(REQUIREMENTS / "pipeline.in")
    assert DEV_TOOLS == _requirements(REQUIREMENTS / "pipeline-dev.in")


def test_the_pipeline_image_installs_the_runtime_lock_only():
    dockerfile = (REPO / "docker" / "pipeline.Dockerfile").read_text()
    installs = [line for line in dockerfile.splitlines() if "pip install" in line and "uv==" not in line]
    assert installs and all("pipeline-runtime.lock.txt" in line for line in installs), installs
    assert "pipeline.lock.txt" not in dockerfile.replace("pipeline-runtime.lock.txt", "")

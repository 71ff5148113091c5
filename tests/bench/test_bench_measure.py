"""The benchmark's measuring tools report what really happened (fast; no pipeline)."""

from __future__ import annotations

import sys

from bench.measure import run_measured

ALLOCATE = (
    "import time; blob = bytearray({mib} * 1024 * 1024); blob[::4096] = b'x' * len(blob[::4096]); time.sleep(0.5)"
)


def test_a_subprocess_peak_rss_is_its_own() -> None:
    small = run_measured([sys.executable, "-c", ALLOCATE.format(mib=10)])
    big = run_measured([sys.executable, "-c", ALLOCATE.format(mib=300)])
    assert small.returncode == big.returncode == 0
    assert big.peak_rss_mib >= 300 > small.peak_rss_mib
    assert big.wall_s >= 0.5


def test_a_process_over_the_cap_is_killed_and_says_so() -> None:
    grow = "import time\nblobs = []\nfor _ in range(40):\n    blobs.append(b'x' * 25 * 1024 * 1024); time.sleep(0.05)"
    result = run_measured([sys.executable, "-c", grow], rss_cap_mib=200)
    assert result.returncode != 0 and result.killed_for_memory
    assert result.peak_rss_mib < 1000


def _in_a_fresh_process(body: str) -> dict:
    """Run `body` (which sets `result`, a dict) in a new Python process and return `result`.

    A stage's peak is the process's RSS high-water mark: in a test worker that has already held
    gigabytes (other tests' fixtures), a new allocation reuses freed memory and raises no mark.
    The measuring tools are meant for the benchmark's own fresh worker processes, so they are
    checked in one.
    """
    import json
    import subprocess
    import textwrap

    code = "import json, sys\nfrom bench.measure import StageMeter, run_measured\n"
    code += f"ALLOCATE = {ALLOCATE!r}\n" + textwrap.dedent(body) + "\nprint(json.dumps(result))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_each_stage_gets_its_own_peak() -> None:
    result = _in_a_fresh_process(
        """
        meter = StageMeter()
        meter.begin("big")
        blob = bytearray(300 * 1024 * 1024)
        blob[::4096] = b"x" * len(blob[::4096])
        del blob
        meter.begin("small")
        meter.end()
        result = {
            "resets": meter.resets_work,
            "big": meter.stages["big"].peak_rss_mib,
            "small": meter.stages["small"].peak_rss_mib,
        }
        """
    )
    assert result["resets"], "this kernel does not reset the RSS high-water mark"
    assert result["big"] >= result["small"] + 250, result


def test_a_child_is_not_charged_with_its_parents_memory() -> None:
    # rusage would report at least the parent's peak for every child it forks
    result = _in_a_fresh_process(
        """
        blob = bytearray(400 * 1024 * 1024)
        blob[::4096] = b"x" * len(blob[::4096])
        meter = StageMeter()
        meter.begin("runs a small child")
        child = run_measured([sys.executable, "-c", ALLOCATE.format(mib=10)])
        meter.end()
        del blob
        stage = meter.stages["runs a small child"]
        result = {
            "child": child.peak_rss_mib,
            "stage_child": stage.child_peak_rss_mib,
            "stage_self": stage.self_peak_rss_mib,
        }
        """
    )
    assert result["child"] < 150, result
    assert result["stage_child"] is not None and result["stage_child"] < 150, result
    assert result["stage_self"] >= 400, result

"""The benchmark's measuring tools report what really happened (fast; no pipeline)."""

from __future__ import annotations

import sys

from bench.measure import StageMeter, run_measured

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


def test_each_stage_gets_its_own_peak() -> None:
    meter = StageMeter()
    meter.begin("big")
    blob = bytearray(300 * 1024 * 1024)
    blob[::4096] = b"x" * len(blob[::4096])
    del blob
    meter.begin("small")
    meter.end()
    assert meter.resets_work, "this kernel does not reset the RSS high-water mark"
    assert meter.stages["big"].peak_rss_mib >= meter.stages["small"].peak_rss_mib + 250


def test_a_child_is_not_charged_with_its_parents_memory() -> None:
    # rusage would report at least the parent's peak for every child it forks
    blob = bytearray(400 * 1024 * 1024)
    blob[::4096] = b"x" * len(blob[::4096])
    meter = StageMeter()
    meter.begin("runs a small child")
    child = run_measured([sys.executable, "-c", ALLOCATE.format(mib=10)])
    meter.end()
    del blob
    assert child.peak_rss_mib < 150
    stage = meter.stages["runs a small child"]
    assert stage.child_peak_rss_mib is not None and stage.child_peak_rss_mib < 150
    assert stage.self_peak_rss_mib >= 400

"""Measuring wall time and peak memory: of a whole subprocess, and of each stage inside one.

Every measured step runs in its own fresh process (`bench.worker`), so its peak RSS is its own.
Peaks are read from the kernel's per-process high-water mark (VmHWM in /proc/<pid>/status), not
from rusage: a child's ru_maxrss starts from its parent's peak at fork/exec, which would charge
the parent's memory to every child. So a sampler thread polls VmHWM of a process tree (the step,
or dbt under the pipeline) until it ends; the worker also reports its own VmHWM on exit. Inside
the pipeline worker, `StageMeter` splits the run into stages: Linux lets a process reset its own
high-water mark (`/proc/self/clear_refs` <- 5), so each stage's own peak is read at its end.
A step over its memory cap is killed (a runaway pandas baseline must not take the machine down).
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

MIB = 1024 * 1024


def _status_kib(field_name: str) -> int | None:
    match = re.search(rf"^{field_name}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) if match else None


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark to its current RSS (False where unsupported)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """This process's RSS high-water mark since start or the last reset."""
    kib = _status_kib("VmHWM")
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024


def current_rss_mib() -> float:
    kib = _status_kib("VmRSS")
    return kib / 1024 if kib is not None else 0.0


def _hwm_mib(pid: int) -> float:
    try:
        match = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    except OSError:
        return 0.0
    return int(match.group(1)) / 1024 if match else 0.0


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


class TreeSampler:
    """Polls the RSS high-water mark of a process's descendants (and itself) in a thread."""

    def __init__(self, root: int, *, include_root: bool, interval: float = 0.1):
        self.root, self.include_root, self.interval = root, include_root, interval
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        pids = _descendants(self.root) + ([self.root] if self.include_root else [])
        for pid in pids:
            # the latest value, not the largest: VmHWM only grows within one address space, and
            # a child caught between fork and exec still shows its parent's (exec starts afresh)
            hwm = _hwm_mib(pid)
            if hwm:
                self.peaks[pid] = hwm

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def stop(self) -> float:
        """Stop sampling; the largest peak of any one process seen (0 when none was seen)."""
        self._stop.set()
        self._thread.join()
        return max(self.peaks.values(), default=0.0)


@dataclass
class StageResult:
    wall_s: float
    peak_rss_mib: float  # the largest process of the stage: this one, or a subprocess it ran
    self_peak_rss_mib: float
    start_rss_mib: float  # this process's RSS when the stage began (memory kept from earlier stages)
    child_peak_rss_mib: float | None = None  # the largest subprocess the stage ran (dbt), if any


@dataclass
class StageMeter:
    """Collects wall time and peak RSS per named stage of an in-process run."""

    stages: dict[str, StageResult] = field(default_factory=dict)
    _current: str | None = None
    _began: float = 0.0
    _children: TreeSampler | None = None
    _start_rss: float = 0.0
    resets_work: bool = True

    def begin(self, stage: str) -> None:
        if self._current is not None:
            self.end()
        self.resets_work = reset_peak_rss() and self.resets_work
        self._start_rss = current_rss_mib()
        self._children = TreeSampler(os.getpid(), include_root=False)
        self._current = stage
        self._began = time.monotonic()

    @property
    def current(self) -> str | None:
        return self._current

    def end(self) -> None:
        if self._current is None:
            return
        wall = time.monotonic() - self._began
        own = peak_rss_mib()
        child = self._children.stop() if self._children else 0.0
        child = child or None
        self.stages[self._current] = StageResult(wall, max(own, child or 0.0), own, self._start_rss, child)
        self._current = None

    def progress_hook(self, first_stage: str):
        """A `progress` callback for `pipelines.runner.run_range` that also marks stage boundaries.

        run_range reports "  <stage> ..." when a stage starts and "  <stage> done in ..." when it
        ends; everything before the first report is `first_stage` (extract+land), begun here.
        """
        self.begin(first_stage)

        def hook(message: str) -> None:
            text = message.strip()
            if text.endswith(" ..."):
                self.begin(text[: -len(" ...")])
            elif " done in " in text:
                self.end()
            print(message, file=sys.stderr, flush=True)

        return hook


@dataclass
class ProcessResult:
    """A measured subprocess: wall time, the largest peak RSS of it or a descendant, exit status."""

    wall_s: float
    peak_rss_mib: float  # sampled: a peak in the last ~0.1 s of a process's life can be missed
    returncode: int
    killed_for_memory: bool = False
    stderr_tail: str = ""


def run_measured(
    argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, rss_cap_mib: float | None = None
) -> ProcessResult:
    """Run argv to completion; stderr passes through (and its tail is kept for errors)."""
    began = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stderr=subprocess.PIPE, text=True)  # noqa: S603
    sampler = TreeSampler(proc.pid, include_root=True)
    tail: list[str] = []
    killed = threading.Event()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
            tail.append(line)
            del tail[:-40]

    def watch(cap: float) -> None:
        statm = Path(f"/proc/{proc.pid}/statm")
        page = os.sysconf("SC_PAGE_SIZE")
        while proc.poll() is None:
            try:
                rss = int(statm.read_text().split()[1]) * page / MIB
            except (OSError, ValueError, IndexError):
                break
            if rss > cap:
                killed.set()
                proc.kill()
                break
            time.sleep(0.2)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    if rss_cap_mib:
        threading.Thread(target=watch, args=(rss_cap_mib,), daemon=True).start()
    proc.wait()
    reader.join(timeout=5)
    return ProcessResult(
        wall_s=time.monotonic() - began,
        peak_rss_mib=sampler.stop(),
        returncode=proc.returncode,
        killed_for_memory=killed.is_set(),
        stderr_tail="".join(tail[-15:]),
    )


def machine() -> dict[str, str | int | float]:
    """What the numbers were measured on."""
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        cpu = match.group(1).strip() if match else cpu
    mem_kib = _meminfo_kib("MemTotal")
    import duckdb

    return {
        "cpu": cpu,
        "nproc": os.cpu_count() or 0,
        "ram_gib": round(mem_kib / 1024 / 1024, 1) if mem_kib else 0.0,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
    }


def _meminfo_kib(name: str) -> int | None:
    path = Path("/proc/meminfo")
    if not path.exists():
        return None
    match = re.search(rf"^{name}:\s+(\d+) kB", path.read_text(), re.MULTILINE)
    return int(match.group(1)) if match else None


def write_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=_default))


def _default(value: object) -> object:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)  # type: ignore[arg-type]
    return str(value)

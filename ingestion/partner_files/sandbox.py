"""Check partner files in a worker process, one file at a time, under a time limit.

`validate.check_file` parses bytes that anyone with access to the inbox chose. Whatever such bytes
do to the parser (run for hours, exhaust the stack or memory, crash the interpreter), it happens
in a child process: the parent waits at most the file's time limit for the answer, kills the
worker when it is late or gone, and reports why, so the file is quarantined and the run goes on
with the next file. A new worker is started for the next file after a kill. One worker serves the
whole process (`shared_worker`): starting one costs the imports (about a second), not a file's time.

Protocol (stdin/stdout of `python -m ingestion.partner_files.sandbox`): length-prefixed pickles.
The worker sends ("ready",) once imported; then each request `(path, file_name, partner, today,
limits)` gets `("ok", CheckedFile)` or `("error", "Type: message")`. The pickles only travel
between this parent and the child it started, and the file itself is read by the child from the
pipeline's own archive copy.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from ingestion.partner_files.limits import Limits
from ingestion.partner_files.validate import CheckedFile

_LENGTH = struct.Struct("!Q")
_REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 120.0  # importing pyarrow on a busy machine; not counted against a file's limit


class WorkerUnavailable(RuntimeError):
    """The worker process cannot be started: a fault of the pipeline, not of any file (the run fails)."""


class CheckFailed(Exception):
    """The check did not finish: `code` is time_limit or check_failed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CheckWorker:
    """A child process that runs `check_file`; started on first use, restarted after a kill."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._lock = threading.Lock()  # one file at a time through the pipe

    def __enter__(self) -> CheckWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self, path: Path, file_name: str, partner: str, today: dt.date, limits: Limits) -> CheckedFile:
        """The verdict on the file at `path`; raises CheckFailed when there is none within the limit."""
        with self._lock:
            return self._check(path, file_name, partner, today, limits)

    def _check(self, path: Path, file_name: str, partner: str, today: dt.date, limits: Limits) -> CheckedFile:
        proc = self._ensure_started()
        try:
            _write_frame(proc.stdin, (str(path), file_name, partner, today, limits))
        except (BrokenPipeError, OSError) as exc:
            self._kill()
            raise CheckFailed("check_failed", f"the check worker could not take the file: {exc}") from None
        try:
            status, value = self._read_frame(time.monotonic() + limits.max_seconds)
        except TimeoutError:
            self._kill()
            raise CheckFailed(
                "time_limit",
                f"checking the file took longer than {limits.max_seconds:g}s (PARTNER_FILES_MAX_SECONDS); "
                "the check was stopped",
            ) from None
        except EOFError:
            code = self._kill()
            raise CheckFailed(
                "check_failed", f"the check worker died while reading the file (exit code {code})"
            ) from None
        if status != "ok":
            raise CheckFailed("check_failed", f"the file could not be checked: {value}")
        return value

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()

    def prestart(self) -> None:
        """Start the worker now without waiting for it, so its imports overlap the parent's work."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._kill()
                self._spawn()

    def _spawn(self) -> None:
        self._ready = False
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ingestion.partner_files.sandbox"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            env=env,
            cwd=_REPO_ROOT,
        )

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None and self._ready:
            return self._proc
        if self._proc is None or self._proc.poll() is not None:
            self._kill()
            self._spawn()
        try:
            ready = self._read_frame(time.monotonic() + STARTUP_SECONDS)
        except (TimeoutError, EOFError):
            code = self._kill()
            raise WorkerUnavailable(f"the partner-file check worker did not start (exit code {code})") from None
        if ready != ("ready",):
            self._kill()
            raise WorkerUnavailable(f"the partner-file check worker answered {ready!r} instead of ready")
        self._ready = True
        assert self._proc is not None
        return self._proc

    def _kill(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        return code

    def _read_frame(self, deadline: float) -> Any:
        length = _LENGTH.unpack(self._read_exact(_LENGTH.size, deadline))[0]
        return pickle.loads(self._read_exact(length, deadline))  # noqa: S301 - from our own child

    def _read_exact(self, size: int, deadline: float) -> bytes:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        parts: list[bytes] = []
        missing = size
        while missing:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError
            chunk = os.read(fd, min(missing, 1 << 20))
            if not chunk:
                raise EOFError
            parts.append(chunk)
            missing -= len(chunk)
        return b"".join(parts)


_SHARED: CheckWorker | None = None
_SHARED_LOCK = threading.Lock()


def shared_worker() -> CheckWorker:
    """The process's worker (started on its first file, closed when the process exits)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = CheckWorker()
            atexit.register(_SHARED.close)
        return _SHARED


def _write_frame(stream: IO[bytes] | None, value: object) -> None:
    assert stream is not None
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(payload)) + payload)
    stream.flush()


def _read_request(stream: IO[bytes]) -> Any:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(head)
    return pickle.loads(stream.read(length))  # noqa: S301 - from the parent that started us


def _serve() -> None:
    """The worker's loop: answer check requests until the parent closes stdin."""
    # Frames go to a private copy of stdout; anything printed on the way goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    from ingestion.partner_files.contracts import CONTRACTS
    from ingestion.partner_files.validate import check_file

    _write_frame(out, ("ready",))
    while (request := _read_request(sys.stdin.buffer)) is not None:
        path, file_name, partner, today, limits = request
        try:
            answer: tuple[str, object] = (
                "ok",
                check_file(Path(path).read_bytes(), file_name, CONTRACTS[partner], today, limits=limits),
            )
        except Exception as exc:
            answer = ("error", f"{type(exc).__name__}: {str(exc)[:300]}")
        _write_frame(out, answer)


if __name__ == "__main__":
    _serve()

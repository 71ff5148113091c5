"""Background services for `make run`: start detached, find again by pid file, stop by group.

Generic on purpose (Superset and Airflow both use it): a service is a name, a command and an
environment. `start()` runs the command in its own session (so it survives the shell that started
it and owns a process group), writes `<run_dir>/<name>.pid` and appends its output to
`<run_dir>/<name>.log`. `stop()` signals the whole process group (gunicorn masters and their
workers, Airflow's forked children), SIGTERM first and SIGKILL after a timeout.

The pid file also records the process start time, so a stale pid file whose pid has been reused by
an unrelated program (after a reboot, say) is recognised as stale and never signalled.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from core.ports import free_port  # noqa: F401 - the services' and tests' way to a port
from core.settings import get_settings

_PROC = Path("/proc")


class ServiceError(RuntimeError):
    """A background service could not be started, reached or stopped."""


class PortInUseError(ServiceError):
    """The port a service should listen on is taken by another program."""


def _run_dir(run_dir: Path | None) -> Path:
    return run_dir if run_dir is not None else get_settings().run_dir


def pid_file(name: str, run_dir: Path | None = None) -> Path:
    return _run_dir(run_dir) / f"{name}.pid"


def log_file(name: str, run_dir: Path | None = None) -> Path:
    return _run_dir(run_dir) / f"{name}.log"


def _start_time(pid: int) -> str | None:
    """Kernel start time of `pid` (clock ticks since boot), or None where /proc is unavailable."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may contain spaces, so split after its closing ')'.
    return stat.rsplit(")", 1)[1].split()[19]


def _pid_alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    _reap(pid)
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to signal 0 (counts zombies as alive)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def read_pid(name: str, run_dir: Path | None = None) -> int | None:
    """The pid of service `name` if its pid file points at the process we started, else None."""
    try:
        fields = pid_file(name, run_dir).read_text().split()
        pid = int(fields[0])
    except (OSError, ValueError, IndexError):
        return None
    if not _pid_alive(pid):
        return None
    recorded = fields[1] if len(fields) > 1 else None
    current = _start_time(pid)
    if recorded and current and recorded != current:
        return None  # the pid was reused by another program
    return pid


def is_running(name: str, run_dir: Path | None = None) -> bool:
    """True if service `name` was started by `start()` and its main process is still alive."""
    return read_pid(name, run_dir) is not None


def start(
    name: str,
    command: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    run_dir: Path | None = None,
) -> int:
    """Start `command` detached as service `name` and return its pid (= its process group id)."""
    if is_running(name, run_dir):
        raise ServiceError(f"{name} is already running (pid {read_pid(name, run_dir)})")
    run = _run_dir(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    log_path = log_file(name, run)
    args = [os.fspath(part) for part in command]
    with log_path.open("ab") as log:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n=== {stamp} starting {name}: {' '.join(args)}\n".encode())
        log.flush()
        process = subprocess.Popen(  # noqa: S603 - callers pass their own fixed commands
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,  # own session and process group: stop() signals the group
            close_fds=True,
        )
    tmp = pid_file(name, run).with_suffix(".pid.tmp")
    tmp.write_text(f"{process.pid} {_start_time(process.pid) or ''}\n")
    tmp.replace(pid_file(name, run))
    return process.pid


def _reap(pid: int) -> None:
    """Collect `pid` if it is our own exited child (else it lingers as a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _group_alive(pgid: int) -> bool:
    """True while any non-zombie process is left in process group `pgid`."""
    if not _PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in {"Z", "X"}:
            return True
    return False


def stop(name: str, run_dir: Path | None = None, timeout: float = 20.0) -> bool:
    """Stop service `name` and its whole process group; False if it was not running."""
    pid = read_pid(name, run_dir)
    path = pid_file(name, run_dir)
    if pid is None:
        path.unlink(missing_ok=True)
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            _reap(pid)
            if not _group_alive(pid):
                break
            time.sleep(0.1)
        else:
            continue  # still alive after SIGTERM: escalate
        break
    _reap(pid)
    if _group_alive(pid):
        raise ServiceError(f"{name} (process group {pid}) did not exit after SIGKILL")
    path.unlink(missing_ok=True)
    return True


def ensure_port_free(port: int, service_name: str, port_env: str | None = None, host: str = "127.0.0.1") -> None:
    """Raise PortInUseError with a fix-it message if `host:port` cannot be bound.

    The message names `port_env` (default `<SERVICE_NAME>_PORT`) as the setting to change.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Allow TIME_WAIT leftovers of our own last run; refuse a live listener.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            env_name = port_env or f"{service_name.upper()}_PORT"
            raise PortInUseError(
                f"port {port} is already in use by another program; stop it or set {env_name}"
            ) from None


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file ('' if it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_for_http(
    url: str,
    timeout: float,
    process_name: str,
    *,
    run_dir: Path | None = None,
    interval: float = 0.25,
) -> float:
    """Poll `url` until it answers 200; return the seconds waited.

    Fails early, with the end of the service's log, if the service's process has exited.
    """
    started = time.monotonic()
    last_error = "no answer yet"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - http(s) health URL
                if response.status == 200:
                    return time.monotonic() - started
                last_error = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last_error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(getattr(exc, "reason", exc))
        if not is_running(process_name, run_dir):
            log = log_file(process_name, run_dir)
            raise ServiceError(f"{process_name} exited before {url} answered; end of {log}:\n{tail(log)}")
        if time.monotonic() - started > timeout:
            log = log_file(process_name, run_dir)
            raise ServiceError(
                f"{url} did not answer 200 within {timeout:.0f} s ({last_error}); end of {log}:\n{tail(log)}"
            )
        time.sleep(interval)

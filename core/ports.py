"""Free loopback ports for services a command or a test starts on its own (a Spark cluster for
the bench, Airflow or Superset in a test): chosen so that parallel callers never collide.
"""

from __future__ import annotations

import os
import socket

# free_port() hands out ports from 20000-32767: below Linux's ephemeral range (32768-60999), where
# the kernel picks the local port of every outgoing connection and of every bind to port 0, so
# no client socket (or another caller's bind to 0) takes a port between its choice and the
# service's bind. Each pytest-xdist worker has its own band of 1000 ports there.
_PORT_BASE, _PORT_BAND, _PORT_BANDS = 20000, 1000, 12
_given_ports: set[int] = set()


class NoFreePortError(OSError):
    """Every port of this process' band is taken."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free right now.

    Never the same one twice in a process, and never one another test worker may choose (their
    bands do not overlap): two services started at once in parallel tests cannot both be told it.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    band = int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    first = _PORT_BASE + (band % _PORT_BANDS) * _PORT_BAND
    offset = int.from_bytes(os.urandom(2), "big") % _PORT_BAND
    for n in range(_PORT_BAND):
        port = first + (offset + n) % _PORT_BAND
        if port in _given_ports:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _given_ports.add(port)
        return port
    raise NoFreePortError(f"no free port left in {first}-{first + _PORT_BAND - 1} on {host}")

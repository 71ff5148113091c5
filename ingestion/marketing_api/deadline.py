"""An overall deadline for one HTTP request: headers and body together, however slowly they come.

A read timeout only bounds the wait for the *next* bytes: a server that sends one byte every two
seconds never trips a 10-second read timeout and can hold a request for as long as it likes. The
deadline here bounds the whole exchange: a `requests` adapter whose connections report their
socket to the request's `Deadline` when they start reading the response, and a timer that shuts
that socket down when time is up, which ends any blocking read at once. The caller then sees a
broken connection and asks `Deadline.expired` whether that was the deadline.
"""

from __future__ import annotations

import contextvars
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_CURRENT: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("marketing_api_deadline", default=None)


class Deadline:
    """Shuts the request's socket down `seconds` after it started."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.expired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    def attach(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            if self.expired:
                self._shutdown()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """The block's HTTP request (made through `DeadlineAdapter`) ends within `seconds`."""
    guard = Deadline(seconds)
    token = _CURRENT.set(guard)
    guard.start()
    try:
        yield guard
    finally:
        guard.cancel()
        _CURRENT.reset(token)


class _Watched:
    """Mixin: when the response is about to be read, hand the socket to the current deadline."""

    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        guard = _CURRENT.get()
        if guard is not None:
            guard.attach(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """A requests adapter whose requests honour `deadline()`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

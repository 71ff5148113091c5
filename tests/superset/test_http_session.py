"""The REST client's session resends a read-only request when a keep-alive connection drops.

A real HTTP server on 127.0.0.1 drops the first connection of each test without answering (as a
server closing an idle keep-alive connection does at the moment a request arrives) and answers
the next one. A GET must succeed on the second connection; a POST must not be sent twice.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from superset.provision import http_session


class _DropFirstServer:
    """Accepts connections; closes the first without a response, answers the others with 200."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                head = conn.recv(65536)
                self.requests.append(head.split(b"\r\n", 1)[0])
                if len(self.requests) == 1:
                    continue  # drop it: "Remote end closed connection without response"
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    def close(self) -> None:
        self.sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[_DropFirstServer]:
    running = _DropFirstServer()
    yield running
    running.close()


def test_a_get_is_resent_once_after_the_connection_drops(server: _DropFirstServer) -> None:
    response = http_session().get(f"{server.url}/api/v1/dashboard/", timeout=10)
    assert response.status_code == 200 and response.text == "ok"
    assert server.requests == [b"GET /api/v1/dashboard/ HTTP/1.1"] * 2


def test_a_post_is_never_sent_twice(server: _DropFirstServer) -> None:
    with pytest.raises(requests.ConnectionError):
        http_session().post(f"{server.url}/api/v1/chart/data", json={}, timeout=10)
    assert server.requests == [b"POST /api/v1/chart/data HTTP/1.1"]

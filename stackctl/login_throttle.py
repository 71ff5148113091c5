"""Login throttling for Airflow's API server: repeated wrong passwords get 429, not more guesses.

Airflow's simple auth manager checks a password as often as it is asked. This ASGI middleware
(installed by `stackctl/airflow_plugins/login_throttle.py`) sits in front of the login endpoints
(`POST /auth/token`, `/auth/token/cli`, which the UI's login form also calls) and counts failed
logins in a small SQLite file next to Airflow's metadata, so every API-server worker process sees
the same counts and a restart does not reset them:

- after `max_failures` (5) failed logins for one user from one address within `window` (300 s),
  that pair is refused with 429 and `Retry-After` until the oldest failure leaves the window;
- after `address_max_failures` (20) failed logins from one address for any users, the address is
  refused the same way (password spraying);
- a successful login clears the pair's failures. Other users and addresses are not affected, so
  an attacker cannot lock the administrator out from another machine.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.parse
from contextlib import closing
from pathlib import Path

LOGIN_PATHS = ("/auth/token", "/auth/token/cli")
MAX_BODY = 64 * 1024


class FailureLog:
    """Failed logins per (address, user), shared by processes through one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("create table if not exists failures (address text, username text, at real)")
            con.execute("create index if not exists failures_at on failures (address, at)")

    def _connect(self) -> closing[sqlite3.Connection]:
        # closing(): sqlite3's own context manager ends a transaction but leaves the file open.
        return closing(sqlite3.connect(self.path, timeout=5, isolation_level=None))

    def record(self, address: str, username: str, now: float) -> None:
        with self._connect() as con:
            con.execute("insert into failures values (?, ?, ?)", [address, username, now])

    def clear(self, address: str, username: str) -> None:
        with self._connect() as con:
            con.execute("delete from failures where address = ? and username = ?", [address, username])

    def blocked_for(self, address: str, username: str, now: float, limits: tuple[int, int, float]) -> float:
        """Seconds until this address/user may try again (0: now)."""
        max_failures, address_max, window = limits
        since = now - window
        with self._connect() as con:
            con.execute("delete from failures where at < ?", [since])
            pair = con.execute(
                "select count(*), min(at) from failures where address = ? and username = ? and at >= ?",
                [address, username, since],
            ).fetchone()
            anyone = con.execute(
                "select count(*), min(at) from failures where address = ? and at >= ?", [address, since]
            ).fetchone()
        waits = [first + window - now for count, first in (pair, anyone) if first is not None]
        if pair[0] >= max_failures or anyone[0] >= address_max:
            return max(1.0, max(waits))
        return 0.0


def _username(body: bytes, content_type: str) -> str:
    try:
        if "json" in content_type:
            value = json.loads(body or b"{}").get("username", "")
        else:
            value = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("username", [""])[0]
    except (ValueError, AttributeError):
        return ""
    return str(value)[:200]


class LoginThrottle:
    """ASGI middleware: see the module docstring."""

    def __init__(
        self, app, *, state_file: str, max_failures: int = 5, address_max_failures: int = 20, window: float = 300
    ) -> None:
        self.app = app
        self.failures = FailureLog(Path(state_file))
        self.limits = (max_failures, address_max_failures, window)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(LOGIN_PATHS):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY:
                await _respond(send, 413, {"detail": "login request too large"})
                return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        username = _username(body, headers.get("content-type", ""))
        address = (scope.get("client") or ("unknown", 0))[0]
        wait = self.failures.blocked_for(address, username, time.time(), self.limits)
        if wait:
            await _respond(
                send,
                429,
                {"detail": f"too many failed logins: try again in {int(wait)} s"},
                [(b"retry-after", str(int(wait)).encode())],
            )
            return

        sent_body = False

        async def replay():
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status: list[int] = []

        async def watch(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, replay, watch)
        if status and status[0] in (401, 403):
            self.failures.record(address, username, time.time())
        elif status and 200 <= status[0] < 300:
            self.failures.clear(address, username)


async def _respond(send, status: int, payload: dict, headers: list | None = None) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})

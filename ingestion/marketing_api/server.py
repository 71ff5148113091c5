"""A fake third-party marketing API on 127.0.0.1: the external source `make run` and the tests use.

It behaves like the vendors we integrate with, including their bad days:

    GET /v1/spend?date=YYYY-MM-DD[&cursor=...]   spend per campaign per day (ad platform)
    GET /v1/fx?date=YYYY-MM-DD[&cursor=...]      EUR per unit of GBP, SEK, USD (FX provider)
    GET /healthz                                 readiness, no auth

Responses are `{"date": ..., "data": [...], "next_cursor": "..." | null}` with a small page size.
Bearer token auth (401), a per-token rate limit (429 + Retry-After), and per-instance faults:
random 5xx, slow responses, dropped connections, and schema drift (a new field, a renamed field,
a type change). `hostile` modes answer every data request in one deliberately bad way, for the
client's defences: a body trickled byte by byte, a huge or endless body, a gzip bomb, HTML or
broken JSON, duplicate keys, an endless or repeating cursor, a storm of 429s (see HOSTILE_MODES).
Every request is recorded in `FakeMarketingApi.requests` so tests can check
what the client really did (waits, retries, bytes sent).

By hand: `MARKETING_API_TOKEN=... python -m ingestion.marketing_api.server --port 8090 [--error-rate 0.2 ...]`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import functools
import gzip
import hashlib
import hmac
import json
import logging
import math
import os
import random
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ingestion.marketing_api import fake_data

log = logging.getLogger(__name__)

DRIFT_MODES = ("new_field", "renamed_field", "type_change")
# One bad answer per mode (to every data request while set); `hostile_bytes` sizes the big ones.
HOSTILE_MODES = (
    "trickle_body",  # a correct page, one byte every `trickle_seconds` after the headers
    "trickle_headers",  # the status line and headers one byte at a time
    "huge_body",  # a Content-Length of `hostile_bytes` and that many bytes
    "endless_body",  # chunked, no length, never ends
    "gzip_bomb",  # a small gzip body that inflates to `hostile_bytes`
    "html",  # 200 with an HTML error page (a proxy or captive portal)
    "json_as_text",  # a correct page labelled text/plain
    "empty_body",  # 200 with no body at all
    "malformed_json",  # a page cut off mid-record, correct length and type
    "nested_json",  # 100,000 nested arrays
    "duplicate_keys",  # records with "spend" twice
    "infinite_number",  # spend 1e999, which JSON parsers read as infinity
    "data_not_list",  # "data" is an object
    "null_records",  # "data" holds nulls
    "cursor_not_string",  # "next_cursor" is a number
    "endless_paging",  # a fresh cursor on every page, for ever
    "repeat_cursor",  # the same cursor again and again
    "storm_429",  # every request: 429 with Retry-After: 0
    "retry_after_garbage",  # every request: 429 with an unreadable Retry-After
    "empty_day",  # a well-formed answer with no records, for a day it answered before
)
# What each drift mode does to a record, per endpoint: the vendor's "minor API update".
_DRIFTS = {
    "spend": {
        "new_field": lambda r: {**r, "conversions": r["clicks"] // 40},
        "renamed_field": lambda r: {("cost" if k == "spend" else k): v for k, v in r.items()},
        "type_change": lambda r: {**r, "spend": f"{r['spend']:.2f}"},
    },
    "fx": {
        "new_field": lambda r: {**r, "source": "reference-rate"},
        "renamed_field": lambda r: {("rate" if k == "eur_per_unit" else k): v for k, v in r.items()},
        "type_change": lambda r: {**r, "eur_per_unit": str(r["eur_per_unit"])},
    },
}


@dataclass(frozen=True)
class ServerConfig:
    """One API instance's behaviour. Replace `FakeMarketingApi.config` to change it while running."""

    token: str
    seed: int = 7
    scale: float = 1.0  # multiplies spend, like the shop simulator's SIM_SCALE
    page_size: int = 5
    rate_limit: int = 20  # requests per second per token; 0 = unlimited
    retry_after: int | None = None  # seconds sent with 429; default: until the window frees up
    error_rate: float = 0.0  # probability of a 500/502/503
    slow_rate: float = 0.0  # probability that a response waits `slow_seconds` first
    slow_seconds: float = 0.0
    latency_seconds: float = 0.0  # every answer waits this long: the round trip to a remote SaaS API
    drop_rate: float = 0.0  # probability of closing the connection without answering
    drift: str | None = None  # one of DRIFT_MODES
    drift_endpoints: tuple[str, ...] = ("spend",)
    fault_seed: int = 0  # faults are random but reproducible
    hostile: str | None = None  # one of HOSTILE_MODES
    hostile_bytes: int = 64 * 1024 * 1024
    trickle_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("the fake marketing API needs a token: set MARKETING_API_TOKEN or pass --token")
        if self.drift is not None and self.drift not in DRIFT_MODES:
            raise ValueError(f"drift must be one of {DRIFT_MODES}, not {self.drift!r}")
        if self.hostile is not None and self.hostile not in HOSTILE_MODES:
            raise ValueError(f"hostile must be one of {HOSTILE_MODES}, not {self.hostile!r}")
        if self.page_size < 1:
            raise ValueError("page_size must be >= 1")


@dataclass(frozen=True)
class RequestRecord:
    """What the server saw and answered; `status` 0 means the connection was dropped."""

    at: float  # time.monotonic() on arrival
    path: str
    params: dict[str, str]
    token_ok: bool
    status: int
    fault: str | None = None  # error | slow | drop | None
    body_sha256: str | None = None
    body_bytes: int = 0


def encode_cursor(day: str, offset: int) -> str:
    raw = json.dumps({"d": day, "o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, day: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset = int(data["o"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise ValueError("invalid cursor") from exc
    if data.get("d") != day or offset < 0:
        raise ValueError("cursor belongs to another query")
    return offset


class FakeMarketingApi(ThreadingHTTPServer):
    """The API as a threaded HTTP server; `start()` serves it from a background thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, config: ServerConfig, host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), _Handler)
        self._config = config
        self.config = config  # the setter below
        self.requests: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._windows: dict[str, deque[float]] = {}
        self._faults = random.Random(config.fault_seed)  # noqa: S311 - test faults, not secrets
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> ServerConfig:
        return self._config

    @config.setter
    def config(self, config: ServerConfig) -> None:
        if config.hostile == "gzip_bomb":
            # Compressed now, not in the first request: compressing tens of MB takes a second or more
            # of CPU on a busy machine, and a client's read timeout would end the request before the
            # bomb is sent, so the client's defence against it would go untested.
            _gzip_bomb(config.hostile_bytes)
        self._config = config

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeMarketingApi:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-marketing-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeMarketingApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_faults(self, **changes: object) -> None:
        """Change behaviour while running (e.g. `set_faults(error_rate=1.0)`)."""
        self.config = replace(self.config, **changes)

    # -- used by the handler ----------------------------------------------------------------

    def record(self, rec: RequestRecord) -> None:
        with self._lock:
            self.requests.append(rec)

    def admit(self, token: str, now: float) -> float | None:
        """Count a request against the token's 1-second window; seconds to wait if over the limit."""
        limit = self.config.rate_limit
        if limit <= 0:
            return None
        with self._lock:
            window = self._windows.setdefault(token, deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                return window[0] + 1.0 - now
            window.append(now)
            return None

    def roll(self, probability: float) -> bool:
        if probability <= 0:
            return False
        with self._lock:
            return self._faults.random() < probability

    def error_status(self) -> int:
        with self._lock:
            return self._faults.choice((500, 502, 503))


class _Handler(BaseHTTPRequestHandler):
    server: FakeMarketingApi
    protocol_version = "HTTP/1.1"  # keep-alive, like a real API behind a load balancer
    server_version = "FakeMarketingAPI/1.0"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms a page.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        log.info("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        arrived = time.monotonic()
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        cfg = self.server.config
        endpoint = {"/v1/spend": "spend", "/v1/fx": "fx"}.get(parts.path)

        def done(status: int, payload: dict, fault: str | None = None, headers: dict | None = None, ok: bool = True):
            body = json.dumps(payload).encode()
            # Recorded in arrival order, before a slow response's delay, so the log is complete
            # as soon as the client has given up.
            self.server.record(
                RequestRecord(
                    arrived, parts.path, params, ok, status, fault, hashlib.sha256(body).hexdigest(), len(body)
                )
            )
            delay = cfg.latency_seconds + (cfg.slow_seconds if fault == "slow" else 0.0)
            self._send(status, body, headers or {}, delay=delay)

        if parts.path == "/healthz":
            return done(200, {"status": "ok"})
        if endpoint is None:
            return done(404, {"error": "not_found", "message": f"no such endpoint {parts.path}"})
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if not (token and hmac.compare_digest(token.encode(), cfg.token.encode())):
            return done(
                401,
                {"error": "invalid_token", "message": "missing or invalid bearer token"},
                headers={"WWW-Authenticate": 'Bearer realm="marketing-api"'},
                ok=False,
            )
        wait = self.server.admit(token, arrived)
        if wait is not None:
            seconds = cfg.retry_after if cfg.retry_after is not None else max(1, math.ceil(wait))
            return done(
                429,
                {"error": "rate_limited", "message": f"more than {cfg.rate_limit} requests per second"},
                headers={"Retry-After": str(seconds)},
            )
        if self.server.roll(cfg.drop_rate):
            self.server.record(RequestRecord(arrived, parts.path, params, True, 0, "drop"))
            self.close_connection = True
            return None
        if self.server.roll(cfg.error_rate):
            return done(
                self.server.error_status(), {"error": "upstream_error", "message": "try again later"}, fault="error"
            )
        try:
            day = dt.date.fromisoformat(params.get("date", "")).isoformat()
            offset = decode_cursor(params["cursor"], day) if params.get("cursor") else 0
        except ValueError as exc:
            message = str(exc) if "cursor" in str(exc) else "date=YYYY-MM-DD is required"
            return done(400, {"error": "bad_request", "message": message})
        rows = self._rows(endpoint, dt.date.fromisoformat(day), cfg)
        page = rows[offset : offset + cfg.page_size]
        following = offset + cfg.page_size
        payload = {
            "date": day,
            "data": page,
            "next_cursor": encode_cursor(day, following) if following < len(rows) else None,
        }
        if cfg.hostile:
            self.server.record(RequestRecord(arrived, parts.path, params, True, 200, cfg.hostile))
            return self._hostile(cfg, payload, day, following)
        return done(200, payload, fault="slow" if self.server.roll(cfg.slow_rate) else None)

    def _hostile(self, cfg: ServerConfig, payload: dict, day: str, following: int) -> None:
        """Answer in the configured bad way (see HOSTILE_MODES); a client hanging up ends it."""
        mode = cfg.hostile
        page = json.dumps(payload).encode()
        try:
            if mode in ("storm_429", "retry_after_garbage"):
                retry = "0" if mode == "storm_429" else "soon-ish"
                body = b'{"error": "rate_limited"}'
                return self._raw_answer(429, body, {"Content-Type": "application/json", "Retry-After": retry})
            if mode == "trickle_headers":
                head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(page)}\r\n\r\n"
                for byte in head.encode():
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(cfg.trickle_seconds)
                self.wfile.write(page)
                return None
            if mode == "trickle_body":
                self._raw_head(200, {"Content-Type": "application/json", "Content-Length": str(len(page))})
                for byte in page:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(cfg.trickle_seconds)
                return None
            if mode == "huge_body":
                self._raw_head(200, {"Content-Type": "application/json", "Content-Length": str(cfg.hostile_bytes)})
                return self._stream_padding(cfg.hostile_bytes)
            if mode == "endless_body":
                self.close_connection = True
                self._raw_head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
                chunk = b" " * 65536
                while True:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            if mode == "gzip_bomb":
                body = _gzip_bomb(cfg.hostile_bytes)
                headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
                return self._raw_answer(200, body, headers)
            as_json = "application/json"
            bodies = {
                "html": (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
                "json_as_text": (page, "text/plain"),
                "empty_body": (b"", as_json),
                "malformed_json": (page[: len(page) // 2], as_json),
                "nested_json": (b"[" * 100_000 + b"]" * 100_000, as_json),
                "duplicate_keys": (page.replace(b'"spend": ', b'"spend": 0.0, "spend": '), as_json),
                "infinite_number": (re.sub(rb'"spend": [0-9.e+-]+', b'"spend": 1e999', page), as_json),
                "data_not_list": (_dumps({**payload, "data": {"rows": payload["data"]}}), as_json),
                "null_records": (_dumps({**payload, "data": [None, *payload["data"]]}), as_json),
                "cursor_not_string": (_dumps({**payload, "next_cursor": 12345}), as_json),
                "endless_paging": (_dumps({**payload, "next_cursor": encode_cursor(day, following)}), as_json),
                "repeat_cursor": (_dumps({**payload, "next_cursor": encode_cursor(day, 1)}), as_json),
                "empty_day": (_dumps({**payload, "data": [], "next_cursor": None}), as_json),
            }
            body, content_type = bodies[mode]
            return self._raw_answer(200, body, {"Content-Type": content_type})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up: that is the point
            return None

    def _raw_head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()

    def _raw_answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self._raw_head(status, {**headers, "Content-Length": str(len(body))})
        self.wfile.write(body)

    def _stream_padding(self, size: int) -> None:
        """A JSON document of `size` bytes, mostly one long string, written in chunks."""
        head, tail = b'{"data": [], "next_cursor": null, "pad": "', b'"}'
        self.wfile.write(head)
        left = size - len(head) - len(tail)
        chunk = b"x" * 65536
        while left > 0:
            self.wfile.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
        self.wfile.write(tail)

    def _rows(self, endpoint: str, day: dt.date, cfg: ServerConfig) -> list[dict]:
        rows = fake_data.spend_rows(cfg.seed, day, cfg.scale) if endpoint == "spend" else fake_data.fx_rows(day)
        if cfg.drift and endpoint in cfg.drift_endpoints:
            rows = [_DRIFTS[endpoint][cfg.drift](r) for r in rows]
        return rows

    def _send(self, status: int, body: bytes, headers: dict[str, str], delay: float) -> None:
        if delay:
            time.sleep(delay)  # a remote or slow upstream (a slow one: the client's read timeout should fire)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting


def _dumps(value: object) -> bytes:
    return json.dumps(value).encode()


@functools.lru_cache(maxsize=4)
def _gzip_bomb(size: int) -> bytes:
    """gzip of a JSON document of `size` bytes that is nearly all spaces (it compresses about 1000:1)."""
    inner = b'{"data": [], "next_cursor": null}'
    return gzip.compress(inner + b" " * (size - len(inner)), compresslevel=9)


def serve_in_background(port: int = 0, host: str = "127.0.0.1", **config: object) -> FakeMarketingApi:
    """Start the API in a daemon thread of this process; the token defaults to MARKETING_API_TOKEN."""
    config.setdefault("token", os.environ.get("MARKETING_API_TOKEN", ""))
    return FakeMarketingApi(ServerConfig(**config), host=host, port=port).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("MARKETING_API_PORT", "8090")))
    parser.add_argument(
        "--token", default=os.environ.get("MARKETING_API_TOKEN", ""), help="default: $MARKETING_API_TOKEN"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=float, default=float(os.environ.get("SIM_SCALE", "1.0")))
    parser.add_argument("--page-size", type=int, default=5)
    parser.add_argument("--rate-limit", type=int, default=20, help="requests per second per token (0 = off)")
    parser.add_argument("--error-rate", type=float, default=0.0, help="probability of a 5xx")
    parser.add_argument("--slow-rate", type=float, default=0.0, help="probability of a slow response")
    parser.add_argument("--slow-seconds", type=float, default=0.0)
    parser.add_argument(
        "--latency",
        type=float,
        default=float(os.environ.get("MARKETING_API_LATENCY_SECONDS", "0")),
        help="seconds every answer waits, like a remote API's round trip (default $MARKETING_API_LATENCY_SECONDS or 0)",
    )
    parser.add_argument("--drop-rate", type=float, default=0.0, help="probability of a dropped connection")
    parser.add_argument("--drift", choices=DRIFT_MODES, default=None)
    parser.add_argument("--drift-endpoint", choices=("spend", "fx", "all"), default="spend")
    parser.add_argument("--hostile", choices=HOSTILE_MODES, default=None, help="answer every data request badly")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = ServerConfig(
            token=args.token,
            seed=args.seed,
            scale=args.scale,
            page_size=args.page_size,
            rate_limit=args.rate_limit,
            error_rate=args.error_rate,
            slow_rate=args.slow_rate,
            slow_seconds=args.slow_seconds,
            latency_seconds=args.latency,
            drop_rate=args.drop_rate,
            drift=args.drift,
            drift_endpoints=("spend", "fx") if args.drift_endpoint == "all" else (args.drift_endpoint,),
            hostile=args.hostile,
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        server = FakeMarketingApi(config, host=args.host, port=args.port)
    except OSError as exc:
        raise SystemExit(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
    log.info(
        "fake marketing API listening on %s (rate limit %s/s, page size %s)",
        server.url,
        args.rate_limit,
        args.page_size,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

"""The HTTP client of the marketing API: pages through a day, politely and persistently.

- a client-side rate limit (at most N requests in any second) so we normally never see a 429;
- timeouts on connect and read, so a hung upstream cannot hang the task, and an overall deadline
  per request (`deadline.py`), so a server that trickles its answer byte by byte cannot either;
- a cap on the response size, enforced while the body streams in (a Content-Length over the cap
  fails before reading); an answer over the cap fails the request at once, without retries;
- answers are checked before they are used: JSON content type, valid JSON without duplicate keys,
  NaN or infinite numbers, an envelope with a `data` list of objects and a string cursor;
- retries with exponential backoff and jitter on 5xx, timeouts, dropped connections and
  truncated bodies; a 429 or 503 waits what its Retry-After says, and at least the backoff;
- no retries on 401/403 (a wrong token does not get better by hammering) or other 4xx;
- a clear error after the last attempt, naming the request and the last failure.

Each page comes back with its body exactly as received, for the lake.

Where the API is and its token: `ClientConfig.from_env` reads MARKETING_API_URL / MARKETING_API_TOKEN
(the bench, `python -m stackctl`); under Airflow the DAG reads the `marketing_api` Connection (http,
the token as its password, masked in task logs) and passes them in. `connection_fields` and
`base_url_from_connection` convert between the two without importing Airflow.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import requests

from core.settings import env_float, env_int
from ingestion import strict_json
from ingestion.marketing_api.deadline import DeadlineAdapter, deadline

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {500, 502, 503, 504}
DEFAULT_URL = "http://127.0.0.1:8090"
# The Airflow Connection the DAG reads (AIRFLOW_CONN_MARKETING_API, made by stackctl from .env).
CONN_ID = "marketing_api"


class MarketingApiError(RuntimeError):
    """The API could not be read: the message says which request and why."""


class MarketingApiAuthError(MarketingApiError):
    """The API rejected our credentials; retrying would not help."""


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    token: str
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    max_attempts: int = 6  # per request, first try included
    backoff_base: float = 0.5  # seconds; doubles per attempt
    backoff_max: float = 30.0
    max_retry_after: float = 120.0  # a longer Retry-After fails the request instead of blocking the task
    requests_per_second: float | None = 15.0  # client-side limit, below the vendor's 20/s; None = off
    max_pages: int = 10_000  # guard against a cursor that never ends
    request_deadline: float = 60.0  # seconds for one request, connect to last body byte
    max_response_bytes: int = 50 * 1024 * 1024  # a page is kilobytes; anything near this is not a page
    # Log every request's headers as sent (the Authorization header included), to debug an exchange
    # with the vendor. Airflow's task logs show the token as ***; anywhere else it is printed (the
    # console of `python -m stackctl`, of `airflow dags test`, and the scheduler's, which repeats
    # the task logs unmasked under the LocalExecutor): for debugging only.
    log_headers: bool = False

    @classmethod
    def from_env(cls, **overrides: object) -> ClientConfig:
        """MARKETING_API_URL (default http://127.0.0.1:8090), MARKETING_API_TOKEN (required unless
        `token` is given), the limits, MARKETING_API_LOG_HEADERS=1; `overrides` win (the DAG passes
        `base_url` and `token` from the marketing_api connection)."""
        token = os.environ.get("MARKETING_API_TOKEN", "")
        if not token and "token" not in overrides:
            raise MarketingApiAuthError("MARKETING_API_TOKEN is not set: put the API token in .env (make env)")
        values: dict = {
            "base_url": os.environ.get("MARKETING_API_URL") or DEFAULT_URL,
            "token": token,
            # 0 turns the client-side limit off
            "requests_per_second": env_float("MARKETING_API_RPS", cls.requests_per_second) or None,
            "request_deadline": env_float("MARKETING_API_REQUEST_DEADLINE", cls.request_deadline, 0.001),
            "max_response_bytes": env_int("MARKETING_API_MAX_RESPONSE_BYTES", cls.max_response_bytes, 1),
            "log_headers": os.environ.get("MARKETING_API_LOG_HEADERS", "").strip() == "1",
        }
        return cls(**{**values, **overrides})


def connection_fields(base_url: str, token: str) -> dict:
    """The Airflow Connection (JSON form) of the API at `base_url`: conn type http, schema/host/port
    from the URL as Airflow's HTTP connection has them, the token as password; a path in the URL
    (an API mounted under a prefix) goes to extra `base_path`."""
    parts = urlsplit(base_url)
    if not parts.scheme or not parts.hostname:
        raise MarketingApiError(f"MARKETING_API_URL={base_url!r} is not a URL such as https://api.example.com")
    fields: dict = {"conn_type": "http", "schema": parts.scheme, "host": parts.hostname}
    if parts.port:
        fields["port"] = parts.port
    if token:
        fields["password"] = token
    if parts.path.strip("/"):
        fields["extra"] = {"base_path": parts.path.rstrip("/")}
    return fields


def base_url_from_connection(fields: Mapping) -> str:
    """The API's base URL from an HTTP Connection's fields (schema, host, port, extra `base_path`).

    A host that already holds a scheme (`https://api.example.com`) is taken as the base, as
    Airflow's HTTP hook takes it."""
    host = (fields.get("host") or "").rstrip("/")
    if not host:
        raise MarketingApiError("the marketing_api connection has no host: set it to the API's host name")
    if "://" in host:
        base = host
    else:
        base = f"{fields.get('schema') or 'http'}://{host}"
        if fields.get("port"):
            base += f":{int(fields['port'])}"
    base_path = str((fields.get("extra") or {}).get("base_path") or "").strip("/")
    return f"{base}/{base_path}" if base_path else base


@dataclass(frozen=True)
class Page:
    """One response page: the body as received, and what we parsed from it."""

    number: int
    url: str  # the request, without credentials
    body: bytes
    records: list[dict]
    next_cursor: str | None
    attempts: int
    received_at: str


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    waited_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


class RateLimiter:
    """At most `rate` requests in any `window` seconds (a sliding window, like the server's)."""

    def __init__(
        self,
        rate: float | None,
        window: float = 1.0,
        margin: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.limit = int(rate) if rate else 0
        # A small margin: the server counts arrivals, which lag our sends by a little.
        self.window = window + margin
        self.clock, self.sleep = clock, sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until a request may go out; returns the seconds waited."""
        if self.limit <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            waited = 0.0
            while len(self._sent) >= self.limit:
                wait = self._sent[0] + self.window - now
                if wait <= 0:
                    self._sent.popleft()
                    continue
                self.sleep(wait)
                waited += wait
                now = self.clock()
            self._sent.append(now)
            return waited


_LIMITERS: dict[tuple[str, str, float | None], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def shared_limiter(config: ClientConfig, sleep: Callable[[float], None] = time.sleep) -> RateLimiter:
    """One limiter per API and token in this process: the vendor counts per token, not per client object
    (a headless backfill makes a client per day, and their requests share one budget)."""
    key = (config.base_url.rstrip("/"), hashlib.sha256(config.token.encode()).hexdigest(), config.requests_per_second)
    with _LIMITERS_LOCK:
        if key not in _LIMITERS:
            _LIMITERS[key] = RateLimiter(config.requests_per_second, sleep=sleep)
        return _LIMITERS[key]


class MarketingApiClient:
    """Reads one endpoint for one day, page by page, following the server's cursors."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        jitter: random.Random | None = None,
    ):
        self.config = config
        self.sleep = sleep
        self.jitter = jitter or random.Random()  # noqa: S311 - jitter, not cryptography
        self.limiter = shared_limiter(config, sleep)
        self.stats = ClientStats()
        self.session = requests.Session()
        adapter = DeadlineAdapter()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(
            {
                "Authorization": f"Bearer {config.token}",
                "Accept": "application/json",
                "User-Agent": "shop-data-platform/marketing_api",
            }
        )

    def __enter__(self) -> MarketingApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def fetch_pages(self, path: str, ds: dt.date) -> Iterator[Page]:
        """Every page of `path` for day `ds`, in order; raises MarketingApiError when it cannot."""
        cursor: str | None = None
        seen: set[str] = set()
        for number in range(1, self.config.max_pages + 1):
            params = {"date": ds.isoformat(), **({"cursor": cursor} if cursor else {})}
            body, attempts, url = self._get(path, params)
            records, cursor = self._parse(body, url)
            yield Page(number, url, body, records, cursor, attempts, _now())
            if not cursor:
                return
            if cursor in seen:
                raise MarketingApiError(f"GET {url}: the API sent a cursor it sent before (paging loop)")
            seen.add(cursor)
        raise MarketingApiError(f"GET {path} for {ds}: more than {self.config.max_pages} pages, giving up")

    def _parse(self, body: bytes, url: str) -> tuple[list[dict], str | None]:
        try:
            payload = strict_json.loads(body)  # it parsed in _get; these are the checks that are not retried
        except ValueError as exc:
            raise MarketingApiError(f"GET {url}: the response is not usable JSON: {exc}") from None
        data = payload.get("data") if isinstance(payload, dict) else None
        cursor = payload.get("next_cursor") if isinstance(payload, dict) else None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise MarketingApiError(f"GET {url}: the response has no 'data' list of records (envelope changed?)")
        if cursor is not None and not isinstance(cursor, str):
            raise MarketingApiError(f"GET {url}: 'next_cursor' is {type(cursor).__name__}, expected a string")
        return data, cursor

    def _get(self, path: str, params: dict[str, str]) -> tuple[bytes, int, str]:
        cfg = self.config
        url = f"{cfg.base_url.rstrip('/')}{path}?{urlencode(params)}"
        started = time.monotonic()
        last_error = ""
        for attempt in range(1, cfg.max_attempts + 1):
            self.stats.waited_seconds += self.limiter.acquire()
            self.stats.requests += 1
            retry_after: float | None = None
            with deadline(cfg.request_deadline) as guard:
                try:
                    response = self.session.get(url, timeout=(cfg.connect_timeout, cfg.read_timeout), stream=True)
                    if cfg.log_headers:
                        sent = dict(response.request.headers)
                        log.info("GET %s -> HTTP %s, sent %s", url, response.status_code, sent)
                    try:
                        body = self._read_body(response, url)  # a cut-off body raises inside the try
                    finally:
                        response.close()
                except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                    last_error = f"{type(exc).__name__}: {_first_line(exc)}"
                    if guard.expired:
                        last_error = (
                            f"no complete answer within the {cfg.request_deadline:g}s deadline per request "
                            "(MARKETING_API_REQUEST_DEADLINE): the server sends too slowly"
                        )
                    response = None
            if response is not None:
                status = response.status_code
                if status == 200:
                    content_type = response.headers.get("Content-Type", "")
                    if not _is_json_type(content_type):
                        last_error = f"HTTP 200 with Content-Type {content_type[:80]!r}, not JSON ({len(body)} bytes)"
                    else:
                        try:
                            json.loads(body)
                        except (ValueError, RecursionError):
                            last_error = f"HTTP 200 with a body that is not JSON ({len(body)} bytes)"
                        else:
                            return body, attempt, url
                elif status in (401, 403):
                    raise MarketingApiAuthError(
                        f"GET {url}: HTTP {status}, the API rejected the token; check MARKETING_API_TOKEN "
                        "(under Airflow: the marketing_api connection's password) (not retried)"
                    )
                elif status == 429 or status in RETRYABLE_STATUS:
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                    last_error = f"HTTP {status} {response.reason}"
                    if status == 429:
                        self.stats.rate_limited += 1
                    if retry_after is not None and retry_after > cfg.max_retry_after:
                        raise MarketingApiError(
                            f"GET {url}: HTTP {status} asks to retry after {retry_after:.0f}s, "
                            f"more than the {cfg.max_retry_after:.0f}s we wait"
                        )
                else:
                    raise MarketingApiError(f"GET {url}: HTTP {status}: {body[:300].decode(errors='replace')}")
            self.stats.errors.append(last_error)
            if attempt == cfg.max_attempts:
                break
            # Retry-After is a minimum: a storm of "Retry-After: 0" still backs off exponentially.
            wait = self._backoff(attempt) if retry_after is None else max(retry_after, self._backoff(attempt))
            log.warning("GET %s attempt %d/%d: %s; retrying in %.2fs", url, attempt, cfg.max_attempts, last_error, wait)
            self.stats.retries += 1
            self.stats.waited_seconds += wait
            self.sleep(wait)
        raise MarketingApiError(
            f"GET {url} failed after {cfg.max_attempts} attempts in {time.monotonic() - started:.1f}s; "
            f"last error: {last_error}"
        )

    def _read_body(self, response: requests.Response, url: str) -> bytes:
        """The whole body, streamed, up to `max_response_bytes`; a larger one fails at once (no retry)."""
        cap = self.config.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise MarketingApiError(
                f"GET {url}: the response announces {int(declared):,} bytes, more than the {cap:,}-byte cap "
                "(MARKETING_API_MAX_RESPONSE_BYTES); not read"
            )
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=64 * 1024):  # decoded: a gzip bomb counts as it expands
            size += len(chunk)
            if size > cap:
                raise MarketingApiError(
                    f"GET {url}: the response is larger than the {cap:,}-byte cap "
                    "(MARKETING_API_MAX_RESPONSE_BYTES); aborted after reading "
                    f"{size:,} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _backoff(self, attempt: int) -> float:
        # Exponential with "equal jitter": at least half the step, so retries of many clients spread out.
        step = min(self.config.backoff_max, self.config.backoff_base * 2 ** (attempt - 1))
        return step / 2 + self.jitter.uniform(0, step / 2)


def _is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _retry_after(value: str | None) -> float | None:
    """Retry-After is seconds or an HTTP date (RFC 9110); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")

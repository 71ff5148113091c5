"""The marketing API's bad answers, against the real stand-in server on 127.0.0.1: each fails cleanly.

One fake vendor serves a good day first (landed and loaded), then answers in one hostile way per
case (`server.HOSTILE_MODES`, plus drift, auth and fault settings): a body trickled byte by byte,
huge, endless or a gzip bomb, HTML, broken or nested JSON, duplicate keys, an infinite number, a
wrong envelope, endless or repeating cursors, 429 storms, wrong types, missing fields. Every case
runs `land_day` for the good day again and is computed once, up front; each is then checked on its
own: the error and its one-line reason, how many requests it cost, that it ended in bounded time,
and that the lake's typed tables and the warehouse still hold the last good day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from core.settings import Settings, get_settings
from ingestion.marketing_api.batch import EmptyDayError, land_day, load_days
from ingestion.marketing_api.client import ClientConfig, MarketingApiAuthError, MarketingApiError
from ingestion.marketing_api.drift import SchemaDriftError
from ingestion.marketing_api.server import HOSTILE_MODES, FakeMarketingApi, ServerConfig
from tests.conftest import stack_environment

TOKEN = "corpus-token-81f3"
DAY = dt.date(2026, 3, 3)
CAP = 1024 * 1024
DEADLINE = 1.5
ATTEMPTS = 2
MAX_PAGES = 20


@dataclass(frozen=True)
class ApiCase:
    id: str
    server: dict  # ServerConfig changes for this case
    error: type[Exception]
    message: str  # a piece of the one-line error
    requests: int | None = None  # requests the client may spend on it (None: not checked)
    max_seconds: float = 5.0
    client: dict | None = None  # ClientConfig changes


def _hostile(mode: str, message: str, requests: int | None, **server: object) -> ApiCase:
    return ApiCase(mode, {"hostile": mode, **server}, MarketingApiError, message, requests)


CASES: tuple[ApiCase, ...] = (
    ApiCase(
        "trickle_body",
        {"hostile": "trickle_body", "trickle_seconds": 0.3},
        MarketingApiError,
        f"within the {DEADLINE:g}s deadline per request",
        ATTEMPTS,
        max_seconds=ATTEMPTS * DEADLINE + 2.0,
    ),
    ApiCase(
        "trickle_headers",
        {"hostile": "trickle_headers", "trickle_seconds": 0.3},
        MarketingApiError,
        f"within the {DEADLINE:g}s deadline per request",
        ATTEMPTS,
        max_seconds=ATTEMPTS * DEADLINE + 2.0,
    ),
    _hostile("huge_body", "announces 314,572,800 bytes, more than the 1,048,576-byte cap", 1, hostile_bytes=300 << 20),
    _hostile("endless_body", "larger than the 1,048,576-byte cap", 1),
    _hostile("gzip_bomb", "larger than the 1,048,576-byte cap", 1, hostile_bytes=64 << 20),
    _hostile("html", "Content-Type 'text/html', not JSON", ATTEMPTS),
    _hostile("json_as_text", "Content-Type 'text/plain', not JSON", ATTEMPTS),
    _hostile("empty_body", "a body that is not JSON (0 bytes)", ATTEMPTS),
    _hostile("malformed_json", "a body that is not JSON", ATTEMPTS),
    _hostile("nested_json", "a body that is not JSON (200000 bytes)", ATTEMPTS),
    _hostile("duplicate_keys", "key 'spend' appears twice in one object", 1),
    _hostile("infinite_number", "number 1e999 is out of range", 1),
    _hostile("data_not_list", "no 'data' list of records", 1),
    _hostile("null_records", "no 'data' list of records", 1),
    _hostile("cursor_not_string", "'next_cursor' is int, expected a string", 1),
    _hostile("endless_paging", f"more than {MAX_PAGES} pages, giving up", MAX_PAGES),
    _hostile("repeat_cursor", "a cursor it sent before (paging loop)", 2),
    _hostile("storm_429", "last error: HTTP 429", ATTEMPTS),
    _hostile("retry_after_garbage", "last error: HTTP 429", ATTEMPTS),
    ApiCase(
        "retry_after_a_day",
        {"rate_limit": 1, "page_size": 1, "retry_after": 86_400},
        MarketingApiError,
        "asks to retry after 86400s",
    ),
    ApiCase("server_errors", {"error_rate": 1.0}, MarketingApiError, "last error: HTTP 50", ATTEMPTS),
    ApiCase(
        "dropped_connections", {"drop_rate": 1.0}, MarketingApiError, f"failed after {ATTEMPTS} attempts", ATTEMPTS
    ),
    ApiCase("wrong_types", {"drift": "type_change"}, SchemaDriftError, "field 'spend' is string, expected number"),
    ApiCase("missing_field", {"drift": "renamed_field"}, SchemaDriftError, "field 'spend' missing in"),
    ApiCase("rejected_token", {}, MarketingApiAuthError, "HTTP 401", 1, client={"token": "wrong-token"}),
    # Well-formed but empty for a day already landed: a vendor fault far more often than a withdrawn day.
    ApiCase("empty_day", {"hostile": "empty_day"}, EmptyDayError, "not replacing a day that is already landed"),
)


@dataclass
class ApiResult:
    error: BaseException | None
    seconds: float
    requests: int
    typed_changed: bool
    warehouse_changed: bool


@dataclass
class ApiCorpus:
    settings: Settings
    results: dict[str, ApiResult]


def _typed_files(settings: Settings) -> dict[str, str]:
    root = settings.lake_raw_dir / "marketing_api"
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for table in ("marketing_spend", "exchange_rates")
        for p in (root / table).rglob("*")
        if p.is_file()
    }


def _warehouse(settings: Settings) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return [
            con.execute(f"select * exclude (_run_id, _loaded_at) from raw.{t} order by all").fetchall()
            for t in ("marketing_spend", "exchange_rates")
        ]


def _client(api: FakeMarketingApi, **changes: object) -> ClientConfig:
    values: dict = {
        "base_url": api.url,
        "token": TOKEN,
        "connect_timeout": 1.0,
        "read_timeout": 1.0,
        "request_deadline": DEADLINE,
        "max_response_bytes": CAP,
        "max_attempts": ATTEMPTS,
        "backoff_base": 0.02,
        "backoff_max": 0.1,
        "max_pages": MAX_PAGES,
        "requests_per_second": None,
    }
    return ClientConfig(**{**values, **changes})


@pytest.fixture(scope="module")
def api_corpus(tmp_path_factory: pytest.TempPathFactory) -> ApiCorpus:
    root: Path = tmp_path_factory.mktemp("api-corpus")
    with stack_environment(root, "corpus-key"), FakeMarketingApi(ServerConfig(TOKEN, rate_limit=0, page_size=3)) as api:
        os.environ.pop("ALERT_WEBHOOK_URL", None)
        settings = get_settings()
        land_day(settings, DAY, "good", _client(api))
        load_days(settings, [DAY], "good")
        typed_before, warehouse_before = _typed_files(settings), _warehouse(settings)
        good = api.config
        results = {}
        for case in CASES:
            api.config = ServerConfig(**{**good.__dict__, **case.server})
            asked = len(api.requests)
            began = time.monotonic()
            error: BaseException | None = None
            try:
                land_day(settings, DAY, f"case-{case.id}", _client(api, **(case.client or {})))
            except Exception as exc:  # the verdict under test
                error = exc
            seconds = time.monotonic() - began
            load_days(settings, [DAY], f"reload-{case.id}")  # whatever the lake holds now goes in
            results[case.id] = ApiResult(
                error,
                seconds,
                len(api.requests) - asked,
                _typed_files(settings) != typed_before,
                _warehouse(settings) != warehouse_before,
            )
            if results[case.id].typed_changed or results[case.id].warehouse_changed:
                api.config = good  # put the good day back, so one failure does not spill into the next case
                land_day(settings, DAY, "good", _client(api))
                load_days(settings, [DAY], "good")
                typed_before, warehouse_before = _typed_files(settings), _warehouse(settings)
        api.config = good
        return ApiCorpus(settings, results)


def test_every_hostile_mode_of_the_stand_in_is_in_the_corpus():
    assert set(HOSTILE_MODES) <= {c.server.get("hostile") for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_bad_answer_fails_cleanly_and_keeps_the_last_good_day(api_corpus: ApiCorpus, case: ApiCase):
    result = api_corpus.results[case.id]
    assert isinstance(result.error, case.error), repr(result.error)
    message = str(result.error)
    assert case.message in message and "\n" not in message, message
    if case.requests is not None:
        assert result.requests == case.requests, f"{result.requests} requests"
    assert result.seconds < case.max_seconds, f"took {result.seconds:.1f}s"
    assert not result.typed_changed, "the typed tables keep the last good day"
    assert not result.warehouse_changed, "the warehouse keeps the last good day"

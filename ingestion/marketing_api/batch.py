"""One run of the marketing API source: fetch and land a day, then load it into `raw`.

The functions the `marketing_api_daily` DAG's tasks call (and a headless runner can call for
history). Both take the day and the run id explicitly and are idempotent for that day.

`land_day` order, so that every failure leaves a consistent lake:
1. fetch every page of every endpoint into hidden staging folders (a fetch error discards them all);
2. check each endpoint's records against the contract (drift report);
3. swap the raw pages in, drift report included - kept even when the drift is fatal;
4. fatal drift -> raise SchemaDriftError; otherwise write the typed Parquet partitions
   `lake/raw/marketing_api/<table>/ds=.../part-<run_id>.parquet` (tables == warehouse tables).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import asdict

from core.settings import Settings, env_flag
from ingestion.lake import read_manifest, write_partition
from ingestion.marketing_api.client import ClientConfig, MarketingApiClient, MarketingApiError
from ingestion.marketing_api.contract import CONTRACTS, SOURCE_NAME
from ingestion.marketing_api.drift import SchemaDriftError, check_drift
from ingestion.marketing_api.landing import RawPageStage
from ingestion.warehouse import LoadResult, load_source_days

log = logging.getLogger(__name__)

TABLES = tuple(c.table for c in CONTRACTS.values())  # raw.marketing_spend, raw.exchange_rates
ALLOW_EMPTY_VARIABLE = "MARKETING_API_ALLOW_EMPTY_REPLACEMENT"


class EmptyDayError(MarketingApiError):
    """An empty answer for a day that already holds rows: refused, the landed day is kept.

    An API that suddenly returns `data: []` for a day it answered before is far more often a
    vendor fault (a broken export, a wrong account) than a withdrawn day; replacing the day would
    silently zero its spend on the dashboards. Retried like any API error, then it fails loudly.
    """


def _emptied_days(settings: Settings, contracts, stages, ds: dt.date) -> list[str]:
    """The tables this fetch would replace with zero rows although the lake holds rows for `ds`."""
    if env_flag(ALLOW_EMPTY_VARIABLE):
        return []
    emptied = []
    for contract, stage in zip(contracts, stages, strict=True):
        if stage.records:
            continue
        try:
            held = read_manifest(settings.lake_raw_dir, SOURCE_NAME, contract.table, ds).row_count
        except FileNotFoundError:
            continue
        if held:
            emptied.append(f"{contract.table} (landed: {held} rows)")
    return emptied


def land_day(
    settings: Settings,
    ds: dt.date,
    run_id: str,
    config: ClientConfig | None = None,
    endpoints: Iterable[str] | None = None,
) -> dict[str, dict]:
    """Fetch day `ds` from the API, land raw pages and typed tables; returns what was landed.

    Result: `{"raw": {endpoint: manifest}, "tables": {table: manifest}, "drift": {endpoint: report},
    "api": {requests, retries, ...}}`. Raises MarketingApiError (API unreachable/refusing; nothing
    landed) or SchemaDriftError (raw pages landed with the report, typed tables not written).
    """
    contracts = [CONTRACTS[e] for e in (endpoints or CONTRACTS)]
    config = config or ClientConfig.from_env()
    began = time.monotonic()
    stages: list[RawPageStage] = []
    with MarketingApiClient(config) as client:
        try:
            for contract in contracts:
                stage = RawPageStage(settings.lake_raw_dir, SOURCE_NAME, contract.endpoint, ds, run_id)
                stages.append(stage)
                for page in client.fetch_pages(contract.path, ds):
                    stage.add(page)
        except BaseException:
            for stage in stages:
                stage.discard()
            raise
        stats = asdict(client.stats)
    fetched = time.monotonic()
    emptied = _emptied_days(settings, contracts, stages, ds)
    if emptied:
        for stage in stages:
            stage.discard()
        raise EmptyDayError(
            f"{SOURCE_NAME} ds={ds}: the API answered no rows for {', '.join(emptied)}; "
            "not replacing a day that is already landed (the lake and warehouse keep it). If the vendor really "
            f"withdrew the day, land it with {ALLOW_EMPTY_VARIABLE}=1"
        )
    reports = [check_drift(c, s.records, SOURCE_NAME, ds, run_id) for c, s in zip(contracts, stages, strict=True)]
    raw = {s.endpoint: asdict(s.commit(r)) for s, r in zip(stages, reports, strict=True)}
    for report in reports:
        if report.tolerated:
            log.warning("schema drift (tolerated, recorded): %s", report.summary())
    fatal = [r for r in reports if r.fatal]
    if fatal:
        reason = " | ".join(r.summary() for r in fatal)
        raise SchemaDriftError(
            f"schema drift, not loaded: {reason} (raw pages kept in lake/raw/{SOURCE_NAME}/; "
            "adapt ingestion/marketing_api/contract.py or ask the vendor)",
            fatal,
        )
    # Type every table before writing any, so a contract violation leaves no table half updated.
    typed = [(c, c.to_table(s.records, ds)) for c, s in zip(contracts, stages, strict=True)]
    tables = {}
    for contract, table in typed:
        manifest = write_partition(
            settings.lake_raw_dir, SOURCE_NAME, contract.table, ds, table.to_batches(), contract.schema, run_id
        )
        tables[contract.table] = asdict(manifest)
    log.info(
        "landed %s ds=%s: %s; %d requests (%d retries, %d rate-limited, %.2fs waiting); fetch %.2fs, total %.2fs",
        SOURCE_NAME,
        ds,
        ", ".join(f"{e} {m['row_count']} rows/{m['bytes']} bytes" for e, m in raw.items()),
        stats["requests"],
        stats["retries"],
        stats["rate_limited"],
        stats["waited_seconds"],
        fetched - began,
        time.monotonic() - began,
    )
    return {
        "raw": raw,
        "tables": tables,
        "drift": {r.endpoint: r.to_dict() for r in reports},
        "api": {k: v for k, v in stats.items() if k != "errors"} | {"errors": stats["errors"][-5:]},
    }


def load_days(
    settings: Settings, days: Iterable[dt.date], run_id: str, tables: Iterable[str] | None = None
) -> list[LoadResult]:
    """Replace `days` of raw.marketing_spend and raw.exchange_rates from the landed partitions, in one transaction."""
    return load_source_days(settings, SOURCE_NAME, tables or TABLES, days, run_id)

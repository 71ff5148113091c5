"""The external HTTP source: an ad platform's marketing spend and an FX provider's EUR rates.

Flow: `client` pages through the API (retries, backoff, rate limit, a deadline and a size cap per
request via `deadline`) -> `landing` keeps every raw
page unchanged in the lake -> `drift` compares what arrived with `contract` -> typed Parquet
tables -> `batch.load_days` replaces the days in `raw.marketing_spend` / `raw.exchange_rates`.
`server` is the fake third party that plays the API on 127.0.0.1 for `make run` and the tests.
"""

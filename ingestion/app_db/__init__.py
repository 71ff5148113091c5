"""The internal source: the shop's operational database (SQLite by default, PostgreSQL by URL).

In code the package is named for what it reads (`app_db`: `contract`, `extract`, `deletes`, and
`batch`, the day's land and load, as `marketing_api.batch` is for the API); in the data the
source is named for the business it records: `shop` (`contract.SOURCE_NAME`: `lake/raw/shop/`,
the dbt source `shop`, the `shop_daily` DAG).
"""

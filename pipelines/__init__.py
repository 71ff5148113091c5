"""Step sequences: the stack's stages run in order, above the packages that provide them.

- `runner`: the headless pipeline (extract+land, gate 1, load, dbt build, gate 2, publish) that
  `make run` and the bench use for a range of days;
- `publishing`: publish to serving, then clear Superset's cache (a step after publish, so serving
  does not depend on the dashboards);
- `marts`: rebuild every mart from raw, gate it and publish it (what an erasure needs).

Airflow DAGs wire the same steps as tasks. `pipelines` may import any domain package
(ingestion, quality, serving, governance, ml, superset); none of them imports `pipelines`.
"""

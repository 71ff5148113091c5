# Superset 6.1 with the same duckdb version as the pipeline (DuckDB files are one-way compatible).
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 SUPERSET_CONFIG_PATH=/opt/stack/superset/superset_config.py
RUN apt-get update && apt-get install -y --no-install-recommends build-essential libpq-dev && rm -rf /var/lib/apt/lists/*
RUN pip install uv==0.9.30
COPY requirements/superset.lock.txt /tmp/superset.lock.txt
RUN uv pip install --system --compile-bytecode -r /tmp/superset.lock.txt && uv pip install --system psycopg2-binary redis
COPY superset /opt/stack/superset
WORKDIR /opt/stack

# Airflow + dbt + GX + Cosmos and this repo's code: the image every Airflow service runs.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=0 PIP_NO_CACHE_DIR=1 AIRFLOW_HOME=/opt/airflow PYTHONPATH=/opt/stack
RUN pip install uv==0.9.30
COPY requirements/pipeline.lock.txt /tmp/pipeline.lock.txt
RUN uv pip install --system --compile-bytecode -r /tmp/pipeline.lock.txt \
    && uv pip install --system "apache-airflow-providers-celery" "redis"
COPY . /opt/stack
WORKDIR /opt/stack

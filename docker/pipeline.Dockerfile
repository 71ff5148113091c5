# Airflow + dbt + GX + Cosmos and this repo's code: the image every Airflow service runs.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=0 PIP_NO_CACHE_DIR=1 AIRFLOW_HOME=/opt/airflow PYTHONPATH=/opt/stack
RUN pip install uv==0.9.30
# The runtime lock: the production packages (the Celery provider and redis included), without the
# test and lint tools of the development lock, at the same versions.
COPY requirements/pipeline-runtime.lock.txt /tmp/pipeline-runtime.lock.txt
RUN uv pip install --system --compile-bytecode -r /tmp/pipeline-runtime.lock.txt
COPY . /opt/stack
WORKDIR /opt/stack

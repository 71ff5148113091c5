# The stack's entry points. `make run` and `make test` are all a new user needs; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.9.30
VENV := .venv
UV := $(VENV)/tools/bin/uv
PIPELINE_PY := $(VENV)/pipeline/bin/python
SUPERSET_PY := $(VENV)/superset/bin/python
STACKCTL := $(PIPELINE_PY) -m stackctl
export UV_CACHE_DIR ?= $(HOME)/.cache/uv
# Precompiled bytecode is 2-3x faster to import; the machine sets PYTHONDONTWRITEBYTECODE.
UV_SYNC := $(UV) pip sync --quiet --compile-bytecode --python

.PHONY: help browser java spark spark-env run test stop status up airflow env install simulate pipeline dbt-parse dbt-build dbt-exposures docs gx-docs quarantine freshness superset-export bench lint lock clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

run: install ## install what is missing, build the demo data, start Airflow + Superset
	$(STACKCTL) run

test: install browser spark-env ## run the test suite (real Airflow, dbt, DuckDB, GX, Superset, Spark and Chromium processes)
	$(PIPELINE_PY) -m pytest

# Dashboard tests drive Debian's Chromium (never a downloaded browser). Installing it needs root
# and apt; without them the browser tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing Debian's chromium for the dashboard browser tests ..."; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "chromium not installed and no root/apt: browser tests will be skipped"; fi; }

stop: ## stop the services `make run` started
	@if [ -x $(PIPELINE_PY) ]; then $(STACKCTL) stop; else echo "nothing to stop (no environment yet)"; fi

status: ## show which services are running
	@$(STACKCTL) status

# MODE=cluster|embedded|spark; unset, STACK_MODE and MARTS_ENGINE (environment or .env) decide,
# embedded on DuckDB by default. spark: embedded Airflow, the marts built on a local Spark cluster.
MODE ?=
up: install $(if $(filter spark,$(MODE)),spark-env) ## start Airflow and Superset on existing data (MODE=cluster: PostgreSQL, Celery workers on Redis; MODE=spark: marts on a local Spark cluster)
	$(STACKCTL) up $(if $(MODE),--mode $(MODE))

# Airflow's configuration (AIRFLOW_HOME, AIRFLOW__*, the connections) lives in the environment
# stackctl gives Airflow, not in var/airflow/airflow.cfg: this runs the CLI inside it.
airflow: install ## Airflow's own CLI as the stack runs it: make airflow ARGS="dags test shop_daily 2026-01-02"
	@$(STACKCTL) airflow $(ARGS)

env: install ## create the untracked .env with generated credentials
	$(STACKCTL) env

install: $(VENV)/pipeline/.synced $(VENV)/superset/.synced ## create/refresh both virtual environments from the locks

$(UV):
	$(PYTHON) -m venv $(VENV)/tools
	$(VENV)/tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Airflow and Superset pin incompatible libraries (SQLAlchemy 2 vs 1.4): two environments.
$(VENV)/pipeline/.synced: requirements/pipeline.lock.txt | $(UV)
	@echo "installing the pipeline environment (Airflow, dbt, GX, Cosmos) ..."
	@[ -x $(PIPELINE_PY) ] || $(UV) venv --quiet --python $(PYTHON) $(VENV)/pipeline
	$(UV_SYNC) $(PIPELINE_PY) $<
	@touch $@

$(VENV)/superset/.synced: requirements/superset.lock.txt | $(UV)
	@echo "installing the Superset environment ..."
	@[ -x $(SUPERSET_PY) ] || $(UV) venv --quiet --python $(PYTHON) $(VENV)/superset
	$(UV_SYNC) $(SUPERSET_PY) $<
	@touch $@

# Spark mode only: the Spark distribution (pyspark's jars, ~500 MB) in its own environment.
$(VENV)/spark/.synced: requirements/spark.lock.txt | $(UV)
	@echo "installing the Spark environment (Spark 4.3 jars from PyPI's pyspark) ..."
	@[ -x $(VENV)/spark/bin/python ] || $(UV) venv --quiet --python $(PYTHON) $(VENV)/spark
	$(UV_SYNC) $(VENV)/spark/bin/python $<
	@touch $@

spark-env: java $(VENV)/spark/.synced

spark: install spark-env ## Spark mode: start a Spark master, 2 workers and the Thrift server on 127.0.0.1, register the lake
	$(STACKCTL) spark up
	$(STACKCTL) spark register

# Spark runs on Java 17 (Debian's headless runtime when none is installed).
java:
	@command -v java >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing Debian's OpenJDK 17 runtime for Spark mode ..."; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
		else echo "java not found and no root/apt: install a Java 17 runtime for Spark mode" >&2; exit 1; fi; }

# Wheels only (docs/decisions/0002-dbt-parser-pin.md), but for the packages that ship only as an
# sdist whose build needs nothing beyond PyPI (setuptools): halo (dbt-metricflow's spinner) and
# dbt-spark's Thrift client (pyhive, thrift, thrift-sasl, pure-sasl; thrift's C speedup is optional).
# The runtime lock (the image's) takes its versions from the development lock, so the two agree.
SDISTS := --no-binary halo --no-binary pyhive --no-binary thrift --no-binary thrift-sasl --no-binary pure-sasl
lock: $(UV) ## re-resolve requirements/*.in into the lock files
	$(UV) pip compile --quiet --only-binary :all: $(SDISTS) --python-version 3.11 requirements/pipeline-dev.in -o requirements/pipeline.lock.txt
	$(UV) pip compile --quiet --only-binary :all: $(SDISTS) --python-version 3.11 requirements/pipeline.in \
		-c requirements/pipeline.lock.txt -o requirements/pipeline-runtime.lock.txt
	$(UV) pip compile --quiet --python-version 3.11 requirements/superset.in -o requirements/superset.lock.txt
	$(UV) pip compile --quiet --python-version 3.11 requirements/spark.in -o requirements/spark.lock.txt

simulate: install ## generate/extend the shop's app DB (DEMO_DAYS, SIM_SCALE, SIM_SEED, SIM_DRIFT_FROM)
	$(STACKCTL) simulate

pipeline: install ## run the pipeline headless: make pipeline FROM=2026-01-01 TO=2026-01-31
	$(STACKCTL) pipeline --from $(FROM) --to $(TO)

dbt-parse: install ## write the dbt manifest Cosmos renders
	$(STACKCTL) dbt-parse

DBT_TARGET ?= prod
DOCS_PORT ?= 8081
# SELECT takes dbt's node selection syntax, several selectors separated by spaces (their union):
# SELECT='fct_daily_revenue+ tag:marketing'. Each word is passed quoted, so the shell never expands
# a `*` in it. Empty, the whole project is built.
SELECT ?=
dbt-build: install ## dbt build (DBT_TARGET=dev builds your own copy in warehouse/dev.duckdb; SELECT='fct_daily_revenue+' builds a selection)
	DBT_TARGET=$(DBT_TARGET) $(STACKCTL) dbt build$(if $(strip $(SELECT)), --select $(foreach s,$(SELECT),'$(s)'))

dbt-exposures: install ## rewrite dbt's exposures from superset/assets/ (one per dashboard; after superset-export, commit both)
	$(STACKCTL) superset exposures

docs: install ## build dbt docs (lineage, KPI dictionary) on the dev target and serve them on 127.0.0.1:$(DOCS_PORT)
	DBT_TARGET=dev $(STACKCTL) dbt docs generate
	@echo "dbt docs on http://127.0.0.1:$(DOCS_PORT) (Ctrl-C to stop)"
	DBT_TARGET=dev $(STACKCTL) dbt docs serve --host 127.0.0.1 --port $(DOCS_PORT) --no-browser

quarantine: install ## what gate 1 and the partner inbox hold in lake/quarantine, and why; ARGS="show|release|patch|dismiss <id>"
	$(STACKCTL) quality quarantine $(or $(ARGS),list)

freshness: install ## check every source against its freshness SLA (alerts when late)
	$(STACKCTL) quality freshness

GX_DOCS_PORT ?= 8082
gx-docs: install ## rebuild Great Expectations Data Docs and serve them on 127.0.0.1:$(GX_DOCS_PORT)
	@site=$$($(STACKCTL) quality docs --keep-days 90) && echo "GX Data Docs: http://127.0.0.1:$(GX_DOCS_PORT)/index.html" && $(PIPELINE_PY) -m http.server --bind 127.0.0.1 --directory "$$(dirname $$site)" $(GX_DOCS_PORT)

superset-export: install ## write dashboards edited in the Superset UI back to superset/assets/ (review, then commit)
	$(STACKCTL) superset export


bench: install browser ## benchmarks: pipeline per stage vs the DuckDB floor and pandas, Superset latency (about two hours; BENCH_ARGS="--scales 100k" for minutes)
	$(STACKCTL) bench $(BENCH_ARGS)

lint: install ## ruff on Python, sqlfluff (dbt templater) on the dbt models
	$(VENV)/pipeline/bin/ruff check .
	$(VENV)/pipeline/bin/ruff format --check .
	cd dbt_project && WAREHOUSE_PATH=/tmp/sqlfluff-lint.duckdb PII_HASH_KEY=lint DBT_TARGET_PATH=/tmp/sqlfluff-target \
		../$(VENV)/pipeline/bin/sqlfluff lint models tests

clean: stop ## delete generated data and run state (keeps .env and the environments)
	rm -rf appdb lake warehouse var dbt_project/target dbt_project/logs

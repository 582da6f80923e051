# hive-assets: `make demo` and `make test` on a fresh machine (Python 3.11, no Docker).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HIVE_HOME ?= $(CURDIR)/.hive
DAGSTER_HOME ?= $(HIVE_HOME)/dagster
SPECIALISTS := business technical behavior evolution architecture
DEMO_PLANS ?= 4000
DEMO_SEED ?= 42
export HIVE_HOME DAGSTER_HOME

.PHONY: install demo test services services-down validate clean bench bench-ferretdb bench-drift

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# constraints.txt pins every transitive version: installs are reproducible.
$(VENV)/.installed: $(BIN)/activate pyproject.toml setup.py hive_assets/features/_flatten.c constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(VENV)/.installed

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: install $(DAGSTER_HOME)/dagster.yaml
	@echo "== simulating production data into $(HIVE_HOME)"
	$(BIN)/hive simulate --plans $(DEMO_PLANS) --days 60 --seed $(DEMO_SEED)
	@for s in $(SPECIALISTS); do \
	  echo "== materializing the asset graph for $$s"; \
	  $(BIN)/dagster asset materialize -m hive_assets.definitions --select '*' --partition $$s \
	    > $(HIVE_HOME)/demo-$$s.log 2>&1 || { tail -n 40 $(HIVE_HOME)/demo-$$s.log; exit 1; }; \
	done
	@echo
	$(BIN)/hive report --strict

validate: install
	DAGSTER_HOME=$$(mktemp -d) $(BIN)/dagster definitions validate -w workspace.yaml

# Real services (mlflow server, FerretDB, Kafka) are started by the test fixtures; `services`
# installs them first. Locally a missing service skips; with HIVE_REQUIRE_SERVICES=1 it fails.
services:
	bash scripts/services.sh install || [ "$${HIVE_REQUIRE_SERVICES:-0}" != 1 ]

services-down:
	bash scripts/services.sh down || true

# The fixtures stop what they start (private run dirs); a developer's own `services.sh up` stays up.
test: install services
	$(BIN)/pytest -ra $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_demo.py
	$(BIN)/python benchmarks/bench_collect.py

# The collect benchmark against FerretDB on a private PostgreSQL cluster (BENCHMARKS.md), in a run
# directory of its own; the services are stopped afterwards whatever the outcome.
# e.g. a quick look: make bench-ferretdb BENCH_COLLECT_ARGS="--plans 500 --in-chunks-too"
BENCH_RUN := $(CURDIR)/.hive/bench-services
bench-ferretdb: install services
	export HIVE_SERVICES_RUN_DIR=$(BENCH_RUN) HIVE_FERRETDB_HANDLER=postgresql; \
	trap 'bash scripts/services.sh clean' EXIT; \
	bash scripts/services.sh up ferretdb && set -a && . $(BENCH_RUN)/env && set +a && \
	$(BIN)/python benchmarks/bench_collect.py --mongodb-uri "$$HIVE_TEST_MONGODB_URI" \
	  --mongodb-label "PostgreSQL backend, loopback" --naive-sample-mongodb 1000 $(BENCH_COLLECT_ARGS)

# The drift benchmark compares with Evidently, which lives in its own venv (.venv-bench): its pins
# (pandas < 3, ...) must not disturb the project's. e.g. a quick look: BENCH_DRIFT_ARGS="--rows 100000"
BENCH_VENV := .venv-bench
EVIDENTLY_VERSION ?= 0.7.23
$(BENCH_VENV)/.installed:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet 'evidently==$(EVIDENTLY_VERSION)' 'pandas<3' pyarrow
	touch $@

bench-drift: install $(BENCH_VENV)/.installed
	$(BIN)/python benchmarks/bench_drift.py --evidently-python $(BENCH_VENV)/bin/python $(BENCH_DRIFT_ARGS)

clean:
	rm -rf .hive

# hive-assets: `make demo` and `make test` on a fresh machine (Python 3.11, no Docker).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Absolute, so that the dagster CLI (which refuses a relative DAGSTER_HOME) and hive agree whatever the
# working directory; an exported DAGSTER_HOME wins, as it does for the hive CLI.
HIVE_HOME ?= $(CURDIR)/.hive
override HIVE_HOME := $(abspath $(HIVE_HOME))
DAGSTER_HOME ?= $(HIVE_HOME)/dagster
override DAGSTER_HOME := $(abspath $(DAGSTER_HOME))
SPECIALISTS := business technical behavior evolution architecture
DEMO_PLANS ?= 4000
DEMO_SEED ?= 42
# The demo lives in simulated time: the home's clock is pinned at DEMO_START (`hive clock pin`, kept in
# $HIVE_HOME/clock.json), where the history ends and the first training happens; `hive loop` then plays
# DEMO_DAYS from there and leaves the clock at its end (`hive clock advance` / `release` move it on). A fixed start
# makes the whole demo deterministic: the same seed prints the same timeline on any day.
DEMO_START ?= 2026-01-05T00:00:00Z
DEMO_DAYS ?= 6
export HIVE_HOME DAGSTER_HOME

.PHONY: install demo test services services-down validate clean bench bench-ferretdb bench-kafka bench-drift

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# constraints.txt pins every transitive version: installs are reproducible.
$(VENV)/.installed: $(BIN)/activate pyproject.toml setup.py constraints.txt \
		hive_assets/features/_flatten.c hive_assets/data/_structure.c
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(VENV)/.installed

# The review queue (group review) is left out: it is off unless its sensor runs, and a queue refreshed
# here (champions already registered: a second `make demo`) would write requests with the default budget.
# `hive env` creates the Dagster instance with the project's settings (the root dagster.yaml, the
# only copy) and prints the exports to reuse it: the dagster runs below land where `hive report` reads.
# The demo's metadata links to the MLflow UI the closing block says how to start (`mlflow ui`, port 5000),
# and its MLflow runs link back to `dagster dev` (port 3000).
demo: export MLFLOW_UI_URL ?= http://127.0.0.1:5000
demo: export DAGSTER_WEBSERVER_URL ?= http://127.0.0.1:3000
demo: install
	@echo "== Dagster instance (to reuse it: eval \"\$$($(BIN)/hive env)\")"
	@$(BIN)/hive env
	@$(BIN)/hive clock pin $(DEMO_START) --no-earlier
	@echo "== simulating 60 days of production data into $(HIVE_HOME), up to $(DEMO_START)"
	$(BIN)/hive simulate --plans $(DEMO_PLANS) --days 60 --seed $(DEMO_SEED)
	@n=0; for s in $(SPECIALISTS); do \
	  n=$$((n + 1)); log=$(HIVE_HOME)/demo-$$s.log; start=$$SECONDS; \
	  echo "== [$$n/$(words $(SPECIALISTS))] materializing the asset graph for $$s (log: $$log)"; \
	  $(BIN)/dagster asset materialize -m hive_assets.definitions --select 'not group:review' --partition $$s > $$log 2>&1 \
	    || { echo "== $$s FAILED; the last 40 lines of $$log:"; tail -n 40 $$log; exit 1; }; \
	  echo "   $$s done in $$((SECONDS - start)) s"; \
	done
	@echo
	$(BIN)/hive report --strict
	@echo
	@echo "== the closed loop: $(DEMO_DAYS) simulated days from $(DEMO_START) (a line per day; then the timeline)"
	$(BIN)/hive loop --days $(DEMO_DAYS) --seed $(DEMO_SEED)

# `dagster definitions validate -w` is the one check that reads the workspace.yaml deployments use (`dg check
# defs` builds its own from a dg project), so its SupersessionWarning is filtered; the throwaway instance
# has an empty dagster.yaml (no "defaulting" warning) and is removed afterwards.
validate: install
	@home=$$(mktemp -d) && trap 'rm -rf "$$home"' EXIT && touch "$$home/dagster.yaml" && \
	  DAGSTER_HOME=$$home PYTHONWARNINGS='ignore:Function `definitions_validate_command` is superseded' \
	  $(BIN)/dagster definitions validate -w workspace.yaml

# Real services (mlflow server, FerretDB, Kafka, PostgreSQL, SeaweedFS) are started by the test fixtures;
# `services` installs them first. Locally a missing service skips; with HIVE_REQUIRE_SERVICES=1 it fails.
# SeaweedFS's cold build (the last one here: 21 min on 2 shared cores) runs in the background, overlapping
# the tests: the one test that needs S3 runs last (conftest) and its fixture waits for the build.
services:
	bash scripts/services.sh install --seaweedfs-in-background || [ "$${HIVE_REQUIRE_SERVICES:-0}" != 1 ]

services-down:
	bash scripts/services.sh down || true

# The fixtures stop what they start (private run dirs); a developer's own `services.sh up` stays up.
# Three workers (pytest-xdist), one test file at a time each: a file's module fixtures (the closed loop's
# trained home) are built once, and many tests wait on a subprocess or a service, so the 2 cores stay busy
# (on two workers a fresh-clone run kept them ~60 % busy: 36 CPU min in 29.8 min; three: 1,412 s against
# 1,516-1,692 s on two, BENCHMARKS.md; serial was 27.4 min against 18.6 on two). PYTEST_WORKERS=0: serial.
# The 30 slowest tests close the log (what to shorten when a cold CI run nears its 30 minutes).
PYTEST_WORKERS ?= 3
test: install services
	$(BIN)/pytest -ra --durations=30 -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_demo.py
	$(BIN)/python benchmarks/bench_collect.py
	$(BIN)/python benchmarks/bench_simulate.py

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

# The audit events from a real KRaft broker against the collection (BENCHMARKS.md), the same way.
# e.g. BENCH_KAFKA_ARGS="--events 1000000 --repeats 2"
bench-kafka: install services
	export HIVE_SERVICES_RUN_DIR=$(BENCH_RUN)-kafka; \
	trap 'bash scripts/services.sh clean' EXIT; \
	bash scripts/services.sh up kafka && set -a && . $(BENCH_RUN)-kafka/env && set +a && \
	$(BIN)/python benchmarks/bench_kafka_audit.py --bootstrap "$$HIVE_TEST_KAFKA_BOOTSTRAP" $(BENCH_KAFKA_ARGS)

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

# The home `make demo` played in (HIVE_HOME, default .hive): removed when it lies inside this checkout; a home
# elsewhere may be someone's data, so it is named, not removed
clean:
	@rm -rf $(BENCH_RUN)
	@case "$(HIVE_HOME)/" in \
	  "$(CURDIR)/"?*) rm -rf "$(HIVE_HOME)" && echo "removed $(HIVE_HOME)" ;; \
	  *) echo "make clean: HIVE_HOME=$(HIVE_HOME) is not a directory inside this checkout: not removed (rm -rf it yourself)" >&2; \
	     exit 2 ;; \
	esac

# The two commands a newcomer needs: `make demo` and `make test`. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
ENV ?= dev
# The machine's Node 20 is past jsii's support window but runs the CLI and jsii correctly.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

LAKE ?= .lake
DATE ?= $(shell $(PYTHON) -c "import datetime as d; print(d.date.today() - d.timedelta(days=1))")

.PHONY: setup demo test lint format synth deploy diff rerun backfill check-job-requirements clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pipeline_code/requirements.txt \
		local_run/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

## demo: run the whole pipeline locally on demo data for yesterday (or DATE=YYYY-MM-DD), with
## the settings of environment ENV in cdk.json (default dev). Demo data goes only into a new or
## empty LAKE folder, or one an earlier `make demo` created.
demo: setup
	$(PY) -m local_run run --lake $(LAKE) --date $(DATE) --demo --env $(ENV)

## test: lint, then the whole suite (unit, infra with the real CDK CLI, local end to end)
test: setup lint
	$(PY) -m pytest -n 2 --dist loadfile

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: setup
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

## synth / diff / deploy for one environment: make deploy ENV=prod
synth: setup
	$(CDK) synth -c env=$(ENV)

# `cdk diff` compares every stack of the app by default; it has no --all option.
diff: setup
	$(CDK) diff -c env=$(ENV)

deploy: setup
	$(CDK) deploy --all -c env=$(ENV)

## re-run one data day (WAIT=1 follows it to the end), or backfill a range and wait for it:
## make rerun ENV=prod DATE=2026-11-20 WAIT=1; make backfill ENV=prod FROM=2026-11-01 TO=2026-11-20
## DRY_RUN=1 shows the dates, pipeline, account and region and starts nothing; a backfill skips
## days whose latest execution succeeded unless FORCE=1, and asks before more than 5 unless YES=1.
CONCURRENCY ?= 2
WAIT ?=
DRY_RUN ?=
FORCE ?=
YES ?=
RERUN_FLAGS = $(if $(DRY_RUN),--dry-run) $(if $(FORCE),--force) $(if $(YES),--yes)
rerun: setup
	$(if $(filter command line environment,$(origin DATE)),,$(error DATE is required: make rerun ENV=$(ENV) DATE=YYYY-MM-DD (the data day to re-run)))
	$(PY) -m rerun --env $(ENV) --date $(DATE) $(if $(WAIT),--wait) $(RERUN_FLAGS)

backfill: setup
	$(if $(and $(FROM),$(TO)),,$(error FROM and TO are required: make backfill ENV=$(ENV) FROM=YYYY-MM-DD TO=YYYY-MM-DD))
	$(PY) -m rerun --env $(ENV) --from $(FROM) --to $(TO) \
	  --concurrency $(CONCURRENCY) --wait $(RERUN_FLAGS)

## the pins in pipeline_code/requirements.txt must resolve as wheels for the job image's Python
check-job-requirements: setup
	$(PY) -m pip download --quiet --only-binary=:all: --python-version 3.11 \
	  --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
	  -r pipeline_code/requirements.txt -d $$(mktemp -d)

## clean: build caches, and what `make demo` wrote in LAKE (a folder it did not create is left alone)
clean:
	rm -rf cdk.out .pytest_cache .ruff_cache
	@if [ -e "$(LAKE)" ]; then \
	  [ -x $(PY) ] || $(MAKE) --no-print-directory setup; \
	  $(PY) -m local_run clean --lake "$(LAKE)"; \
	fi

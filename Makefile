# Every target a developer types. `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
# The Azure CLI lives in its own venv (~3 minutes to install): its pins must not meet the app's.
AZ_VENV := .venv-az
AZ_STAMP := $(AZ_VENV)/.installed

.PHONY: help setup demo test lint format schema clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-8s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(PY_STAMP) $(NPM_STAMP) $(AZ_STAMP) ## Create .venv, .venv-az (Azure CLI) and install the pinned Python and npm packages (idempotent)

$(PY_STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --config-settings editable_mode=compat -e .
	@touch $@

$(AZ_STAMP): requirements-az.txt
	@test -x $(AZ_VENV)/bin/python || $(PYTHON) -m venv $(AZ_VENV)
	$(AZ_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-az.txt
	@touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

demo: setup ## The main job on the sandbox: a request through the queue to its completed event
	$(BIN)/gpuprov demo

lint: $(PY_STAMP) ## Lint: ruff (lint + format check), mypy, import-linter, schema in sync
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup lint check-infra ## Set up if needed, lint, check the infrastructure, then run every test
	$(BIN)/pytest

format: $(PY_STAMP) ## Rewrite the code in the house style (ruff)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schema: $(PY_STAMP) ## Regenerate schemas/provision-request.schema.json from the model
	$(BIN)/gpuprov schema > schemas/provision-request.schema.json

clean: ## Remove the venv, npm packages and caches
	rm -rf $(VENV) .venv-infra $(AZ_VENV) node_modules .mypy_cache .ruff_cache .pytest_cache

# checkov lives in its own venv: its many dependencies must not enter the app's .venv.
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed

.PHONY: check-infra

$(INFRA_STAMP): requirements-infra.txt
	@test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	@touch $@

check-infra: $(INFRA_STAMP) ## checkov over infra/: every Bicep file parses; a failed check fails unless skipped with a reason
	$(INFRA_VENV)/bin/checkov --directory infra --framework bicep --skip-download --compact \
		--output cli --output json --output-file-path console,$(INFRA_VENV)/checkov.json
	@$(INFRA_VENV)/bin/python -c 'import json, sys; n = json.load(open(sys.argv[1]))["summary"]["parsing_errors"]; sys.exit("checkov could not parse %d file(s) in infra/" % n if n else 0)' \
		$(INFRA_VENV)/checkov.json

.PHONY: bench
bench: setup ## Benchmarks: billed compute, cloud calls, cold start, throughput (bench/results.json)
	$(BIN)/python -m bench

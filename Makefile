# Boomerang: two commands for a newcomer (`make run`, `make test`); the rest are for developers.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
MOTO_PORT ?= 5000
PYTEST_WORKERS ?= 2

.PHONY: run test lint typecheck unit integration workflow e2e infra-test openapi bench redrive cli clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(VENV)/.stamp-infra: requirements-infra.txt infrastructure/package.json infrastructure/package-lock.json | $(VENV)/.stamp-dev
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	cd infrastructure && npm ci --no-audit --no-fund --loglevel=error
	touch $@

dev: $(VENV)/.stamp-dev

## make run: the whole system on this machine (moto as AWS, our state machines executing, API on $(PORT))
run: $(VENV)/.stamp-dev
	$(BIN)/python -m local --port $(PORT) --moto-port $(MOTO_PORT)

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.stamp-dev
	$(BIN)/mypy

unit: $(VENV)/.stamp-dev
	$(BIN)/pytest tests/unit -q

integration: $(VENV)/.stamp-dev
	$(BIN)/pytest tests/integration tests/workflow -q -n $(PYTEST_WORKERS)

e2e: $(VENV)/.stamp-dev
	$(BIN)/pytest tests/e2e -q

infra-test: $(VENV)/.stamp-infra
	$(BIN)/pytest tests/infrastructure -q

## make test: lint, types and every test suite, with branch coverage
test: $(VENV)/.stamp-dev $(if $(wildcard infrastructure/package.json),$(VENV)/.stamp-infra)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile --cov --cov-report=term:skip-covered --cov-report=xml

openapi: $(VENV)/.stamp-dev
	$(BIN)/python -m chalicelib.api.openapi > docs/openapi.json

bench: $(VENV)/.stamp-dev
	$(BIN)/python -m bench

## make redrive QUEUE=tracking|photos|notifications [MAX=N] [DRY_RUN=1] [LOCAL=1]: a DLQ's messages back to its queue
redrive: $(VENV)/.stamp-dev
	$(if $(QUEUE),,$(error QUEUE is required: make redrive QUEUE=tracking|photos|notifications))
	MOTO_PORT=$(MOTO_PORT) $(BIN)/python -m infrastructure.redrive --queue $(QUEUE) \
		$(if $(MAX),--max $(MAX)) $(if $(DRY_RUN),--dry-run) $(if $(LOCAL),--local)

## make cli ARGS="returns list --sku SHIRT-M" [LOCAL=1]: the command line (infrastructure/cli.py; --help lists commands)
cli: $(VENV)/.stamp-dev
	MOTO_PORT=$(MOTO_PORT) $(BIN)/python -m infrastructure.cli $(if $(LOCAL),--local) $(ARGS)

clean:
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache .coverage coverage.xml infrastructure/cdk.out

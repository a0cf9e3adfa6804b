# churn-ab: two commands on a fresh machine.
#   make serve   install, train on the real data, serve on http://127.0.0.1:3000
#   make test    install everything the tests need and run the whole suite
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 3000
# Training data: DATA=path, else $CHURN_DATA, else the loader downloads the
# public file (checksum-verified). Tests use the shared sample when it exists.
DATA ?= $(CHURN_DATA)
SHARED_SAMPLE := $(abspath ../shared/data/telco-customer-churn.sample.csv)
TEST_DATA := $(or $(CHURN_DATA),$(wildcard $(SHARED_SAMPLE)))

.PHONY: help setup system-deps venv train serve test test-fast lint typecheck build ci-image-test simulate fuzz clean

help:  ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

system-deps:  ## Debian packages the tests need (prometheus, jsonnet, wrk, ...)
	scripts/install-system-deps.sh

venv: $(VENV)/.installed  ## the virtualenv with the project and dev tools

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev,postgres,explain]"
	touch $@

setup: system-deps venv  ## everything: system packages and the virtualenv

train: venv  ## train both models into the BentoML store (DATA=path to use a file)
	$(BIN)/python -m training $(if $(DATA),--data "$(DATA)")

serve: train  ## fresh machine: install, train on the real data, bentoml serve
	$(BIN)/bentoml serve service:ChurnAB --host $(HOST) --port $(PORT)

test: setup lint typecheck  ## fresh machine: install and run the whole test suite
	CHURN_DATA="$(TEST_DATA)" $(BIN)/python -m pytest --durations=25

test-fast: venv  ## tests/unit only: pure, from the venv alone, under a minute
	CHURN_DATA="$(TEST_DATA)" $(BIN)/python -m pytest tests/unit

lint: venv  ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv  ## mypy on the packages and service.py
	$(BIN)/mypy

build: train  ## bentoml build (the Bento with both models)
	$(BIN)/bentoml build

ci-image-test: venv  ## CI: install the container tools, then the image test
	scripts/install-system-deps.sh image
	$(MAKE) image-test

simulate: venv  ## A/A and A/B simulations of the decision rule
	$(BIN)/python -m ab_router simulate

clean:  ## remove caches (keeps the venv and the model store)
	rm -rf .pytest_cache .mypy_cache .ruff_cache

include grafana/mixin.mk
include deploy/deploy.mk
-include benchmarks/bench.mk

fuzz: venv  ## a long schemathesis run against a real server (zero 5xx expected)
	SCHEMATHESIS_MAX_EXAMPLES=$${SCHEMATHESIS_MAX_EXAMPLES:-500} CHURN_DATA="$(TEST_DATA)" \
		$(BIN)/python -m pytest -q tests/e2e/test_schemathesis.py

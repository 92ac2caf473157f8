# The claims pipeline. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
BIN     = $(VENV)/bin

.PHONY: help system setup format lint test test-unit test-integration test-e2e run bench chaos broker-start broker-stop broker-status clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

system:  ## install Java 17 and Maven if missing (apt on Debian/Ubuntu, as root or with sudo)
	infra/system-packages.sh

setup: system $(VENV)/.installed  ## create .venv and install the project with its dev tools

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

format: setup  ## format the code (ruff format) and apply ruff's safe fixes
	$(BIN)/ruff format pipeline processors tests setup.py
	$(BIN)/ruff check --fix pipeline processors tests setup.py

lint: setup  ## ruff (lint and format check), mypy and the import contracts (pyproject.toml)
	$(BIN)/ruff check pipeline processors tests setup.py
	$(BIN)/ruff format --check pipeline processors tests setup.py
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint  ## the whole suite: lint, types, unit, integration and end-to-end on a real broker
	infra/system-packages.sh --tests
	$(PY) -m pytest

test-unit: setup  ## unit tests only (no broker)
	$(PY) -m pytest -m unit

test-integration: setup  ## integration tests only (a real broker, agents in process)
	$(PY) -m pytest -m integration

test-e2e: setup  ## end-to-end tests only (worker processes on a real broker; Chromium)
	infra/system-packages.sh --tests
	$(PY) -m pytest -m e2e

run: setup  ## the main job: broker, topics, workers, 2,000 synthetic encounters, summary in out/
	$(BIN)/claims demo --encounters 2000 --seed 7 --out out

bench: setup  ## throughput and latency benchmark (JSON on stdout)
	$(BIN)/claims bench

chaos: setup  ## crash injection: 10,000 encounters, 20 worker kills + a broker kill per topology, against a reference run
	$(BIN)/claims chaos --encounters 10000 --kills 20 --topology both --out out/chaos

broker-start: setup  ## start the local Kafka broker
	$(BIN)/claims broker start

broker-stop: setup  ## stop the local Kafka broker
	$(BIN)/claims broker stop

broker-status: setup  ## is the local broker running?
	$(BIN)/claims broker status

clean:  ## remove the virtualenv, broker data and outputs
	-$(BIN)/claims broker stop
	rm -rf $(VENV) .data out

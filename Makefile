# The targets the README and CI call. `make up` runs the fleet, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test processes running at once (pytest-xdist). Each holds its own PostgreSQL database and Redis
# logical database (tests/conftest.py) and every test its own queue and key prefixes; most of a
# test's time is spent waiting on worker processes, so three share two cores well.
TEST_PROCESSES ?= 3

.PHONY: setup services tools up test lint typecheck unit integration bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

services:
	bash .ci/services.sh

# Debian packages the tests drive (chromium, promtool, docker-compose), installed when missing.
tools:
	bash .ci/tools.sh

up: setup services
	$(BIN)/fleet up

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest tests/unit tests/contract

integration: setup services
	$(BIN)/pytest -n $(TEST_PROCESSES) tests/integration

test: setup services tools lint typecheck
	$(BIN)/pytest -n $(TEST_PROCESSES) --durations=25

bench: setup services
	$(BIN)/python -m bench.run --broker redis
	$(BIN)/python -m bench.run --broker amqp

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache fleet.db* celerybeat-schedule*

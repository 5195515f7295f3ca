# One entry point for developers and CI. `make test` is the gate; `make run` is the local demo.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt layers/dependencies/requirements.txt | cksum | cut -d' ' -f1)
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv test lint typecheck pytest run bench clean

help:
	@echo "make run    - run the whole system locally against embedded emulators"
	@echo "make test   - lint, type-check and run every test"
	@echo "make bench  - run the benchmarks and print side-by-side ratios"

venv: $(STAMP)

$(STAMP): requirements-dev.txt layers/dependencies/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

test: venv lint typecheck pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check handler

typecheck: venv
	$(BIN)/mypy handler

pytest: venv
	$(BIN)/python -m pytest --cov --cov-report=term --cov-fail-under=90 $(PYTEST_ARGS)

run: venv
	$(BIN)/python -m devstack.demo $(ARGS)

clean:
	rm -rf $(VENV) .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage

# orderstream: `make demo` runs the whole pipeline, `make test` runs every test. Both set up a fresh machine first.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test lint test-unit bench setup system venv broker-start broker-stop clean

demo: setup
	$(BIN)/orderstream demo

test: setup lint
	$(BIN)/pytest

# ruff (lint and format) and the layer contracts of DESIGN.md (import-linter, configured in pyproject.toml)
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test-unit: venv
	$(BIN)/pytest tests/unit -q

bench: setup
	$(BIN)/python -m bench

setup: system venv

system:
	./scripts/setup-system.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test,bench,docker,browser,tracing]"
	touch $(STAMP)

broker-start: setup
	$(BIN)/orderstream broker start

broker-stop:
	$(BIN)/orderstream broker stop

clean:
	-$(BIN)/orderstream broker stop
	rm -rf .orderstream

# Rampart — every gate is a make target, so CI and a laptop run the same thing.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install demo test lint typecheck unit integration e2e coverage-summary clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv from the hash-pinned locks and install rampart into it

$(STAMP): requirements/dev.txt requirements/lambda.txt pyproject.toml
	@echo "==> [install] creating $(VENV) with $$($(PYTHON) --version)"
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@echo "==> [install] installing hash-pinned dev lock (requirements/dev.txt)"
	@PIP_CONFIG_FILE=/dev/null $(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/dev.txt
	@echo "==> [install] installing rampart (editable, no dependencies resolved outside the lock)"
	@PIP_CONFIG_FILE=/dev/null $(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)
	@echo "==> [install] done: $(BIN)/rampart"

demo: install ## Run the whole pipeline end to end on this machine (no AWS account)
	@$(BIN)/rampart demo

lint: install ## ruff lint + format check
	@echo "==> [lint] ruff check"
	@$(BIN)/ruff check .
	@echo "==> [lint] ruff format --check"
	@$(BIN)/ruff format --check .

typecheck: install ## mypy (strict) over src/rampart
	@echo "==> [typecheck] mypy"
	@$(BIN)/mypy

PYTEST_ARGS ?=
unit: install ## Unit tests only
	@$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: install ## Integration tests against an embedded PostgreSQL (TLS, verify-full)
	@$(BIN)/pytest tests/integration $(PYTEST_ARGS)

pytest-all: install
	@echo "==> [tests] pytest: unit, integration (real PostgreSQL over TLS), e2e, iac, policies"
	@$(BIN)/pytest --cov --cov-report=term:skip-covered --cov-report=json:.coverage.json \
	  -p no:cacheprovider $(PYTEST_ARGS) | tee .pytest.out
	@$(BIN)/python scripts/test_summary.py .pytest.out .coverage.json

openapi: install ## Regenerate docs/openapi.json and docs/event.schema.json from the code
	@$(BIN)/python -m rampart.api.openapi > docs/openapi.json
	@$(BIN)/python -m rampart.events > docs/event.schema.json
	@echo "==> [openapi] docs/openapi.json and docs/event.schema.json written"
.PHONY: openapi

bench: install ## Run every benchmark; writes docs/benchmarks.md and docs/benchmarks.png (see bench/)
	@$(BIN)/python -m bench.run_all

bench-smoke: install ## Each benchmark at a tiny size: proves they still run (measures nothing)
	@echo "==> [bench-smoke] every benchmark, tiny sizes"
	@$(BIN)/python -m bench.run_all --smoke
.PHONY: bench bench-smoke

# Gate targets owned by other areas are defined in mk/*.mk and appended to TEST_STEPS there.
TEST_STEPS := lint typecheck pytest-all bench-smoke
-include mk/*.mk

test: install ## Every test and gate (what CI runs)
	@start=$$(date +%s); \
	for step in $(TEST_STEPS); do \
	  echo "==> [make test] $$step"; \
	  $(MAKE) --no-print-directory $$step; \
	done; \
	mkdir -p build; echo $$(( $$(date +%s) - start )) > build/make-test.seconds; \
	echo "==> [make test] all steps passed in $$(( $$(date +%s) - start ))s: $(TEST_STEPS)"; \
	cat build/test-summary.txt

clean: ## Remove build artefacts (keeps .venv)
	rm -rf build dist .pytest.out .coverage .coverage.* .coverage.json .mypy_cache .ruff_cache

# checkov pins old boto3/packaging/networkx, so it gets its own hash-pinned virtualenv.
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
$(CHECKOV_VENV)/.installed: requirements/checkov.txt
	@echo "==> [install] creating $(CHECKOV_VENV) (checkov, hash-pinned)"
	@test -d $(CHECKOV_VENV) || $(PYTHON) -m venv $(CHECKOV_VENV)
	@PIP_CONFIG_FILE=/dev/null $(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/checkov.txt
	@touch $@
checkov-install: $(CHECKOV_VENV)/.installed
.PHONY: checkov-install

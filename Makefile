# padlock — every entry point a developer, CI or a platform team uses.
# `make demo` and `make test` do all set-up on a fresh machine (see README.md).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.padlock-installed
PYTEST_ARGS ?=

.PHONY: setup lint test test-unit demo up down controlplane bench clean help

help:
	@grep -E '^[a-z-]+:.*?## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml tools/setup-system.sh
	@bash tools/setup-system.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip
	@$(BIN)/pip install -q -e '.[dev]'
	@touch $@

setup: $(STAMP) ## venv with padlock (editable) + dev tools; Debian packages when missing

lint: setup ## ruff, mypy --strict, import-linter (DESIGN.md layers)
	$(BIN)/ruff check operator tests bench
	$(BIN)/ruff format --check operator tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

controlplane: setup ## build (once) or find etcd, kube-apiserver, kube-controller-manager
	@bash tools/controlplane/build.sh

test: setup controlplane ## every test tier that runs on this machine
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: setup ## fast tests only
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

demo: setup ## end to end on the embedded defaults
	@bash tools/demo.sh

up: setup controlplane ## start the local control plane (and padlock) under .padlock/
	@bash tools/up.sh

down: ## stop everything `make up` started
	@bash tools/down.sh

bench: setup ## run every script in bench/ and rewrite bench/RESULTS.md
	$(BIN)/python bench/run_all.py

clean:
	rm -rf .padlock .pytest_cache .mypy_cache .ruff_cache

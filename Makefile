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
	$(BIN)/python -m padlock.api.crdgen --out crds/ --check

controlplane: setup ## build (once) or find etcd, kube-apiserver, kube-controller-manager
	@bash tools/controlplane/build.sh

test: setup controlplane ## every test tier that runs on this machine
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: setup ## fast tests only
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

demo: setup controlplane ## end to end on the embedded defaults
	@bash tools/demo.sh

up: setup controlplane ## start the local control plane (and padlock) under .padlock/
	@bash tools/up.sh

down: ## stop everything `make up` started
	@bash tools/down.sh

bench: setup controlplane ## run every script in bench/ and rewrite bench/RESULTS.md
	@bash tools/setup-system.sh --bench
	$(BIN)/python bench/run_all.py

clean:
	rm -rf .padlock .pytest_cache .mypy_cache .ruff_cache

# --- kind + Helm: padlock on a laptop cluster (charts/padlock, tools/kind/) -------------------
# kind-* and image need Docker and kind on your machine; each fails at once, naming what is
# missing. helm-check runs anywhere (helm comes from tools/fetch-kubectl-helm.sh).
KIND_CLUSTER ?= padlock
IMAGE ?= padlock:dev
KIND_ENV := KIND_CLUSTER=$(KIND_CLUSTER) IMAGE=$(IMAGE)

.PHONY: kind-up image kind-load kind-install e2e-kind kind-down helm-check

kind-up: ## create the kind cluster $(KIND_CLUSTER) from kind-config.yaml
	@$(KIND_ENV) bash tools/kind/kind.sh up

image: ## build the container image $(IMAGE) (Dockerfile)
	@$(KIND_ENV) bash tools/kind/kind.sh image

kind-load: ## load $(IMAGE) into the kind cluster
	@$(KIND_ENV) bash tools/kind/kind.sh load

kind-install: ## dev key ceremony + helm install with charts/padlock/values-kind.yaml
	@$(KIND_ENV) bash tools/kind/kind.sh install

e2e-kind: ## apply manifests/examples; wait for Ready, a rolled Deployment, OCSP good/revoked
	@$(KIND_ENV) bash tools/kind/kind.sh e2e

kind-down: ## delete the kind cluster and .padlock/kind
	@$(KIND_ENV) bash tools/kind/kind.sh down

helm-check: setup ## helm lint/template + strict schema validation of the chart, Dockerfile lint
	$(BIN)/pytest -q tests/unit/chart

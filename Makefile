# browserfarm's dev loop. `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))

# google/api and google/rpc protos our protos (and Envoy's transcoder) need, copied
# from the installed googleapis-common-protos package.
GOOGLE_PROTOS := api/annotations api/http api/httpbody api/field_behavior rpc/status
PROTO_SOURCES := $(shell find protos -name '*.proto')
PROTO_STAMP := libs/protos/src/farm/.generated
PROTO_DEPS := build/proto-deps
SYNC_STAMP := $(VENV)/.synced

PUPPETEER := tests/e2e/puppeteer
PUPPETEER_STAMP := $(PUPPETEER)/node_modules/.installed

.PHONY: help setup run test test-fast lint format protos chromium observe-deps docs-deps node-deps bench bench-tracing bench-chaos clean

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)

$(SYNC_STAMP): $(BIN)/uv uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	$(BIN)/uv sync --frozen --all-packages --inexact --compile-bytecode
	@# xds-protos (auth's gRPC ext_authz messages, no longer a dependency but still in
	@# older .venvs) ships an older copy of opentelemetry-proto's modules; whichever
	@# wheel uv unpacked last won. opentelemetry-proto's own goes last.
	$(BIN)/uv sync --frozen --all-packages --inexact --compile-bytecode --reinstall-package opentelemetry-proto
	touch $@

chromium: ## Install Debian's chromium and chromium-headless-shell (task browsers) if missing.
	@test -x /usr/bin/chromium -a -x /usr/lib/chromium/chromium-headless-shell || { $(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends chromium chromium-headless-shell; }

observe-deps: ## Install Debian's prometheus (Prometheus, promtool) for `farm up --observe` and the rule tests.
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { $(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends prometheus; }

docs-deps: ## Install Debian's jq, which the docs' shell examples pipe through (tests/e2e/test_shell_docs.py runs them).
	@command -v jq >/dev/null || { $(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends jq; }

$(PROTO_STAMP): $(PROTO_SOURCES) buf.yaml buf.gen.yaml tools/protoc_gen_grpc_python.py $(SYNC_STAMP)
	@# google.api is a namespace package (googleapis-common-protos ships no __init__.py).
	google_dir=$$($(BIN)/python -c 'import google.api, os; print(os.path.dirname(next(iter(google.api.__path__))))'); \
	for name in $(GOOGLE_PROTOS); do \
		mkdir -p $(PROTO_DEPS)/google/$$(dirname $$name); \
		cp $$google_dir/$$name.proto $(PROTO_DEPS)/google/$$name.proto; \
	done
	find libs/protos/src/farm -name '*_pb2*.py*' -delete
	$(BIN)/buf generate
	$(BIN)/buf build --exclude-source-info -o envoy/farm.binpb
	touch $@

protos: $(PROTO_STAMP) ## Generate the Python stubs and Envoy's descriptor set from protos/.

setup: $(SYNC_STAMP) chromium protos ## Virtualenv, packages, chromium and stubs: what run and test need.
	@# Every farm process imports these; where PYTHONDONTWRITEBYTECODE is set nothing
	@# would cache their bytecode, and each start would compile them again.
	$(BIN)/python -m compileall -q -j 0 libs services

run: setup ## Start the whole farm on this machine (farm up; ARGS="--agents 2 --observe" passes options).
	@# Prometheus is installed only for a farm that asks for it.
	$(if $(findstring --observe,$(ARGS)),@$(MAKE) --no-print-directory observe-deps)
	$(BIN)/farm up $(ARGS)

lint: setup ## buf lint and format, ruff lint and format, mypy.
	$(BIN)/buf lint
	$(BIN)/buf format --diff --exit-code protos
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup ## Rewrite protos and Python in the house style.
	$(BIN)/buf format -w protos
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(PUPPETEER_STAMP): $(PUPPETEER)/package.json $(PUPPETEER)/package-lock.json
	@# Puppeteer attaches to a session in the end-to-end tests; its -core package
	@# downloads no browser. Without Node.js that test is skipped and says so.
	@if command -v npm >/dev/null; then \
		npm ci --prefix $(PUPPETEER) --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the Puppeteer session test will be skipped"; fi

node-deps: $(PUPPETEER_STAMP) ## npm packages the tests use (Puppeteer), if Node.js is here.

# Two workers: most tests wait on browsers and processes, so two share the two cores well.
# Each test file stays on one worker, and with it the farm its tests share; so does each
# subpackage of tests/e2e, whose modules share a farm (tests/farm_scopes.py). The files go
# out in tests/conftest.py's order (those marked slow first), so the run does not end
# with one worker idle while the other starts a long module's farm.
# A worker that dies (the watchdog in pyproject.toml ends a hung one) ends the run: a
# replacement started after the last test is never told to stop, and the run would hang.
PYTEST_WORKERS ?= 2
PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --max-worker-restart 0

test: lint node-deps observe-deps docs-deps ## The whole suite: lint, unit, integration, end-to-end; end-to-end again on PostgreSQL.
	$(BIN)/pytest $(PARALLEL) -m "not multihost" $(PYTEST_ARGS)
	@# The multi-host farm (a dozen processes and a NATS cluster) runs alone: beside
	@# another worker's farm it starved both.
	$(BIN)/pytest -m multihost tests/e2e $(PYTEST_ARGS)
	@# The end-to-end tests again with every farm's metadata in PostgreSQL (the machine's
	@# server or DATABASE_URL's), but for the database_neutral modules and tests (browser
	@# steps, MCP, traces, clients, input checks, console page checks, session size limits,
	@# autoscaling, an agent's upload retries: their rows are the same the others write);
	@# the multi-host farm already runs on PostgreSQL.
	FARM_TEST_DATABASE=postgres $(BIN)/pytest $(PARALLEL) tests/e2e -m "not multihost and not database_neutral" $(PYTEST_ARGS)

test-fast: setup ## Unit tests only.
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

bench: setup ## Benchmarks: figures printed against a baseline in the same run.
	$(BIN)/python bench/pickup.py
	$(BIN)/python bench/screenshots.py $(ARGS)
	$(BIN)/python bench/warm.py $(ARGS)
	$(BIN)/python bench/concurrency.py
	$(BIN)/python bench/sessions.py
	$(BIN)/python bench/cache_hit.py
	$(BIN)/python bench/submit.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/cli_start.py
	$(BIN)/python bench/scale.py

bench-tracing: setup ## Tracing's cost: the screenshot bench through farms with traces off and on.
	$(BIN)/python bench/tracing_cost.py $(ARGS)

bench-chaos: setup ## Chaos soak: tasks while agents are SIGKILLed, against an undisturbed run.
	$(BIN)/python bench/chaos.py $(ARGS)

clean: ## Remove the virtualenv, build outputs and generated stubs (not .farm/).
	rm -rf $(VENV) build envoy/farm.binpb $(PUPPETEER)/node_modules
	find libs/protos/src/farm -name '*_pb2*.py*' -delete
	rm -f $(PROTO_STAMP)

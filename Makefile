# The golden template's own tasks. `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_DIR ?= .bakes/demo
WORKERS ?= auto
# The tools come from the committed requirements-dev.lock: every package pinned with its hashes,
# resolved by uv for every platform from the dev group in pyproject.toml (a lock that names no index
# host, so the index is whatever uv is set up to use). Where no `uv` is on PATH, the first install puts
# one (from PyPI, with pip) into a small virtualenv of its own under UV_BOOTSTRAP, outside the clone.
UV_BOOTSTRAP ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/uv-bootstrap
UV ?= $(or $(shell command -v uv 2>/dev/null),$(UV_BOOTSTRAP)/bin/uv)

define ensure_uv
	@test -x $(UV) || { echo "uv not found: installing it with pip into $(UV_BOOTSTRAP)"; \
	  $(PYTHON) -m venv $(UV_BOOTSTRAP) && $(UV_BOOTSTRAP)/bin/python -m pip install --quiet 'uv>=0.9'; }
endef

.PHONY: help demo test bench lock upgrade clean

help: ## List the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

LOCK := requirements-dev.lock
COMPILE = $(UV) pip compile pyproject.toml --group dev --universal --generate-hashes \
	--python-version 3.11 --no-header --quiet --output-file $(LOCK)

$(INSTALLED): $(LOCK)
	$(ensure_uv)
	@test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --require-hashes --python $(BIN)/python $(LOCK)
	@touch $@

demo: $(INSTALLED) ## Bake a service with the default answers into .bakes/demo and run it
	rm -rf $(DEMO_DIR)
	$(BIN)/cookiecutter --no-input --output-dir $(DEMO_DIR) .
	$(MAKE) -C $(DEMO_DIR)/my_service run

test: $(INSTALLED) ## Run the template's test suite (bakes, lints and tests generated projects)
	@$(BIN)/python -m pytest -n $(WORKERS) $(PYTEST_ARGS); status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests: a failure, not a pass"; fi; \
	  exit $$status

bench: $(INSTALLED) ## Bake a service and benchmark it: raw baselines, hostile sitemaps, memory (docs/performance.md)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

lock: ## Update requirements-dev.lock after editing the dev group in pyproject.toml
	$(ensure_uv)
	$(COMPILE)

upgrade: ## Move requirements-dev.lock to the newest allowed versions (then: make test, review its diff)
	$(ensure_uv)
	$(COMPILE) --upgrade

clean: ## Remove the virtualenv and every bake
	rm -rf $(VENV) .bakes .pytest_cache

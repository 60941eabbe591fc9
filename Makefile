# The golden template's own tasks. `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_DIR ?= .bakes/demo
WORKERS ?= auto

.PHONY: help demo test bench clean

help: ## List the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-6s %s\n", $$1, $$2}'

$(INSTALLED): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
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

clean: ## Remove the virtualenv and every bake
	rm -rf $(VENV) .bakes .pytest_cache

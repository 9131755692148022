# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint demo clean rules

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

## run: install, migrate, create demo accounts, serve on 127.0.0.1:8000 with a worker and beat
run: $(VENV)/.runtime
	./scripts/run.sh

## test: install, then ruff, missing-migration check, import contracts, mypy on the pure modules, alert rules, pytest
test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy $(PURE_MODULES)
	$(MAKE) --no-print-directory rules
	$(BIN)/pytest $(PYTEST_ARGS)

## rules: check the Prometheus alert rules and run their unit tests (promtool, Debian package prometheus)
rules:
	@if command -v promtool >/dev/null 2>&1; then \
	  promtool check rules ops/prometheus/rules.yml && \
	  cd ops/prometheus && promtool test rules rules_test.yml; \
	else echo "promtool not found: alert rules NOT checked (apt-get install prometheus; CI installs it)"; fi

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check . || true

clean:
	rm -rf $(VENV) data staticfiles .pytest_cache .ruff_cache .mypy_cache

PURE_MODULES := common/errors.py common/validation.py common/wording.py config/env.py experiments/hashing.py experiments/stats.py experiments/decision.py \
	rollout/histogram.py rollout/health.py rollout/comparison.py rollout/wording.py rollout/plan.py conversations/memory.py conversations/responders \
	recommendations/engines recommendations/demo_data.py conversations/engine.py

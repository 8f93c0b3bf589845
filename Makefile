# mmmst: one command per job; each sets up its own environment first (tools/setup_env.sh, idempotent).
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup test lint format demo

setup:
	@bash tools/setup_env.sh

demo: setup
	$(PY) tools/demo.py $(DEMO_ARGS)

test: setup
	$(PY) -m pytest tests $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check mmmst tools tests configs setup.py
	$(PY) -m ruff format --check mmmst tools tests setup.py

format: setup
	$(PY) -m ruff check --fix mmmst tools tests configs setup.py
	$(PY) -m ruff format mmmst tools tests setup.py

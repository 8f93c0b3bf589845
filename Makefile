# mmmst: one command per job; each sets up its own environment first (tools/setup_env.sh, idempotent).
#   make demo    the core tier (no compiler runs), Fashion-MNIST (Debian's package, else a download), the demo
#   make test    the full tier (mmcv with ops, mmdet, mmseg, test tools), then the test suite
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup setup-core test lint format demo

setup:
	@bash tools/setup_env.sh full

setup-core:
	@bash tools/setup_env.sh core

demo: setup-core
	$(PY) tools/dataset_converters/prepare_fashion_mnist.py
	$(PY) tools/demo.py $(DEMO_ARGS)

# two or more test processes (pytest-xdist, at most 4): most tests wait on a command they started; an idle process
# takes tests queued for a busy one (worksteal)
test: setup
	$(PY) -m pytest tests -n auto --maxprocesses 4 --dist worksteal $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check mmmst tools tests configs projects setup.py
	$(PY) -m ruff format --check mmmst tools tests projects setup.py

format: setup
	$(PY) -m ruff check --fix mmmst tools tests configs projects setup.py
	$(PY) -m ruff format mmmst tools tests projects setup.py

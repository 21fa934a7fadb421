# The two commands of the README: `make demo` and `make test`. Each creates .venv
# and installs what it needs, from nothing but Python 3.11, pip and make.
# `make test` runs the whole suite on TensorFlow; `make test-backends` runs tests/backends
# on JAX and on PyTorch, each in its own process (.ci/run does both).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BACKENDS_STAMP := $(VENV)/.installed-backends
# The torch of the backend tests: pinned, because an unpinned torch resolves to the
# multi-GB CUDA build on Linux; 2.13.0 is a CPU wheel here.
TORCH ?= torch==2.13.0
export TF_CPP_MIN_LOG_LEVEL ?= 2
export KERAS_BACKEND ?= tensorflow
export NO_MKDOCS_2_WARNING ?= 1
# The suite runs in two processes (pytest-xdist, one file per process at a time: module fixtures
# stay shared): about 1.6x faster on two cores. `make test PYTEST_WORKERS=0` runs it in one process.
PYTEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(PYTEST_WORKERS)),-p no:xdist,-n $(PYTEST_WORKERS) --dist loadfile)

.PHONY: demo test test-backends lint format docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[tensorflow,dev,docs]"
	touch $(STAMP)

$(BACKENDS_STAMP): $(STAMP)
	$(PY) -m pip install -e ".[jax]" "$(TORCH)"
	touch $(BACKENDS_STAMP)

demo: $(STAMP)
	$(PY) -m keras_vizcallbacks.demo $(DEMO_ARGS)

test: $(STAMP) $(BACKENDS_STAMP)
	$(PY) -m ruff check keras_vizcallbacks tests examples benchmarks scripts
	$(PY) -m ruff format --check keras_vizcallbacks tests examples benchmarks scripts
	$(PY) -m mkdocs build --strict --quiet
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q $(XDIST) --ignore=tests/backends $(PYTEST_ARGS)
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q $(XDIST) --confcutdir=tests/backends tests/backends $(PYTEST_ARGS)

# tests/backends on JAX and PyTorch, one process each; --confcutdir keeps tests/conftest.py
# (which imports the package for the TensorFlow suite) out of them.
test-backends: $(BACKENDS_STAMP)
	KERAS_BACKEND=jax $(PY) -m pytest -q $(XDIST) --confcutdir=tests/backends tests/backends $(PYTEST_ARGS)
	KERAS_BACKEND=torch $(PY) -m pytest -q $(XDIST) --confcutdir=tests/backends tests/backends $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check keras_vizcallbacks tests examples benchmarks scripts
	$(PY) -m ruff format --check keras_vizcallbacks tests examples benchmarks scripts

format: $(STAMP)
	$(PY) -m ruff check --fix keras_vizcallbacks tests examples benchmarks scripts
	$(PY) -m ruff format keras_vizcallbacks tests examples benchmarks scripts

docs: $(STAMP)
	$(PY) -m mkdocs build --strict

bench: $(STAMP)
	$(PY) benchmarks/overhead.py --quick

clean:
	rm -rf $(VENV) logs site .pytest_cache

# The two commands of the README: `make demo` and `make test`. Each creates .venv
# and installs what it needs, from nothing but Python 3.11, pip and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export KERAS_BACKEND ?= tensorflow
export NO_MKDOCS_2_WARNING ?= 1

.PHONY: demo test lint format docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev,docs]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m keras_vizcallbacks.demo $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m ruff check keras_vizcallbacks tests examples benchmarks scripts
	$(PY) -m ruff format --check keras_vizcallbacks tests examples benchmarks scripts
	$(PY) -m mkdocs build --strict --quiet
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q $(PYTEST_ARGS)

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

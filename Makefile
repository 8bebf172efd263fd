# Two entry points that work on a fresh machine with Python 3.11 and Java 17: `make demo`, `make test`.
# Both create (or reuse) .venv and install the project with its pinned dependencies first.
PY := $(shell command -v python3.11 || command -v python3)
VENV := .venv
PYTHON := $(VENV)/bin/python

.PHONY: demo test bench install

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PYTHON) notebooks/demo.py

test: $(VENV)/.installed
	$(PYTHON) -m pytest -q

bench: $(VENV)/.installed
	$(PYTHON) benchmarks/lakehouse_vs_deltalake.py

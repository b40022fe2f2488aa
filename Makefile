# Two commands for a fresh machine with Python 3.11: `make demo` and `make test`.
# Both create .venv if it is missing and install what they need into it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Large-array CPU timings need transparent huge pages for XLA's output buffers (see bench/).
export GLIBC_TUNABLES := glibc.malloc.hugetlb=1

.PHONY: demo test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.examples-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[examples]'
	touch $@

$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@

demo: $(VENV)/.examples-installed
	$(BIN)/python examples/quickstart.py

test: $(VENV)/.test-installed
	$(BIN)/python -m ruff check jaxloss tests examples bench
	$(BIN)/python -m ruff format --check jaxloss tests examples bench
	$(BIN)/python -m pytest -n 2 -q

bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench $(ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/python -m ruff check jaxloss tests examples bench
	$(BIN)/python -m ruff format --check jaxloss tests examples bench

clean:
	rm -rf $(VENV) build *.egg-info

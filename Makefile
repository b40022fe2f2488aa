# Commands for a fresh machine with Python 3.11: each creates .venv if it is missing and
# installs what it needs into it. `make help` lists them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
LINTED := jaxloss tests examples bench tools
# Large-array CPU timings need transparent huge pages for XLA's output buffers (see bench/).
export GLIBC_TUNABLES := glibc.malloc.hugetlb=1
export NO_MKDOCS_2_WARNING := 1

# The test suite compiles thousands of tiny XLA programs and compile time dominates it, so its
# XLA:CPU kernels are compiled without LLVM optimisation (about 10% less time; the arithmetic is
# the same IEEE arithmetic: XLA:CPU enables no fast-math at any level). The multi-device and
# two-process tests set their own XLA_FLAGS; the benchmarks and the examples keep the default.
TEST_XLA_FLAGS := --xla_backend_optimization_level=0

.PHONY: help demo test test-fast lint typecheck docs gallery bench wheel-check clean

help:  ## this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The test environment also builds the docs and runs the PyTorch migration page's doctests,
# with PyTorch 2.13.0 (the CPU build; an open range would let pip pick a multi-GB CUDA build).
$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	$(BIN)/python -m pip install --quiet torch==2.13.0
	touch $@

$(VENV)/.examples-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[examples]'
	touch $@

$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@

$(VENV)/.docs-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@

demo: $(VENV)/.examples-installed  ## run examples/quickstart.py
	$(BIN)/python examples/quickstart.py

test: $(VENV)/.test-installed  ## everything CI runs: ruff, format, pyright, pytest + doctests + docs build
	$(BIN)/python -m ruff check $(LINTED)
	$(BIN)/python -m ruff format --check $(LINTED)
	$(BIN)/pyright
	XLA_FLAGS="$(TEST_XLA_FLAGS) $$XLA_FLAGS" $(BIN)/python -m pytest -n 2 -q

test-fast: $(VENV)/.test-installed  ## quick development subset: lint, API, contract, reducer, doctests
	$(BIN)/python -m ruff check $(LINTED)
	XLA_FLAGS="$(TEST_XLA_FLAGS) $$XLA_FLAGS" $(BIN)/python -m pytest -n 2 -q jaxloss \
		tests/test_api.py tests/test_reduction.py \
		tests/test_contract.py

lint: $(VENV)/.test-installed  ## ruff check and ruff format --check
	$(BIN)/python -m ruff check $(LINTED)
	$(BIN)/python -m ruff format --check $(LINTED)

typecheck: $(VENV)/.test-installed  ## pyright on jaxloss/ ([tool.pyright] in pyproject.toml)
	$(BIN)/pyright

docs: $(VENV)/.docs-installed  ## the documentation site, offline and strict, into build/site/
	$(BIN)/python -m mkdocs build --strict
	@echo "open build/site/index.html"

gallery: $(VENV)/.test-installed  ## run the examples, commit their output to docs/_gallery/ (ARGS=names)
	MPLBACKEND=Agg $(BIN)/python -m tools.gallery $(ARGS)

bench: $(VENV)/.bench-installed  ## benchmarks into build/bench/ (ARGS="--quick", "--write-results")
	$(BIN)/python -m bench $(ARGS)

wheel-check: | $(BIN)/python  ## build the wheel, install it alone in a fresh venv, import it
	rm -rf build/wheel build/wheel-venv
	$(BIN)/python -m pip wheel --quiet --no-deps . -w build/wheel
	$(BIN)/python -m zipfile -l build/wheel/jaxloss-*.whl | grep -E 'py.typed|licenses/LICENSE'
	$(PYTHON) -m venv build/wheel-venv
	build/wheel-venv/bin/pip install --quiet build/wheel/jaxloss-*.whl
	build/wheel-venv/bin/python -c "import jaxloss, jax.numpy as jnp; \
		print('jaxloss', jaxloss.__version__, len(jaxloss.__all__), 'names;', \
		jaxloss.huber_loss(jnp.array([3.0])))"
	build/wheel-venv/bin/pip list 2>/dev/null | grep -iE '^(optax|chex|torch) ' && exit 1 || true

clean:  ## remove .venv and build outputs
	rm -rf $(VENV) build *.egg-info

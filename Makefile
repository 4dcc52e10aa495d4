# The two commands a newcomer needs: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint format bench venv clean

# `make demo` installs the runtime only ('.'); tests, lint and bench add the dev tools ('.[dev]').
# --no-compile: Python writes bytecode for the modules a run imports, not all ~100 MB of it (most of
# it plotly's, numpy's and numba's never-imported modules) at install time; the venv's own pip
# (3.11+ bundles one with editable installs) is used as is: upgrading it cost a download per venv.
$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "error: $(PY) not found (Python 3.11+ needed; set PY=python3.x)"; exit 2; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --no-compile -e .
	touch $(STAMP)

# the test suite starts hundreds of processes: compile the bytecode the runtime install skipped
$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev]'
	-$(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null
	touch $(DEV_STAMP)

venv: $(DEV_STAMP)

demo: $(STAMP)
	$(BIN)/python -m mmbot.cli demo

test: $(DEV_STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not slow" tests

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: $(DEV_STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(DEV_STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) artifacts .pytest_cache

# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test test-airflow check lint format-check typecheck imports bench bench-emulator bench-engine bench-server bench-bulk clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Stamps re-run the install when packaging metadata changes.
$(VENV)/.installed-base: $(PY) setup.cfg pyproject.toml
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-test: $(PY) setup.cfg pyproject.toml
	$(PIP) install -e '.[test]'
	touch $@ $(VENV)/.installed-base

## run: start the embedded emulator, run the YAML createJob -> getJob -> updateJob flow, print responses
run: $(VENV)/.installed-base
	$(PY) examples/demo.py

## test: install with test extras and run the whole suite (slow tests included, started first: tests/conftest.py)
# More workers than the 2 cores CI has: most tests wait on loopback servers, subprocesses and
# sleeps, so 6 workers keep both cores busy (on 2 idle cores: -n 3 139 s, -n 4 118-122 s, -n 6 110 s).
# Override: make test TEST_WORKERS=2
# --dist worksteal: an idle worker takes tests queued on a busy one (the default hands each worker a
# fixed share, and one worker used to end the run alone for 2 minutes with the kill tests).
# PYTHONDONTWRITEBYTECODE is cleared for the suite: the tests start the CLI, the emulator and the
# server as subprocesses hundreds of times, and without bytecode caches each start compiles sfbulk
# again (a third of the suite's CPU on a machine that sets it). The caches are in .gitignore.
# Caches are warmed first, on both cores: on a fresh clone each of the 6 workers used to compile
# sfbulk and rewrite every test module's asserts on its own (pytest keeps the rewritten modules in
# __pycache__): 5.5 s of CPU per worker to collect instead of 1.7 s, 23 s of the suite's CPU for
# 3.5 s of warming. A collection error is reported by the run itself, so the warming output is dropped.
TEST_WORKERS ?= 6
WARM := PYTHONDONTWRITEBYTECODE= $(PY) -m pytest --collect-only -q -p no:cacheprovider
test: $(VENV)/.installed-test
	@PYTHONDONTWRITEBYTECODE= $(PY) -m compileall -q -j 0 sfbulk
	@( $(WARM) tests/unit tests/docs tests/test_import_rules.py >/dev/null 2>&1 & \
	   $(WARM) tests/emulator tests/integration >/dev/null 2>&1 & wait )
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal

## test-airflow: the Airflow provider's tests (tests/airflow) with a real Apache Airflow 3, in a venv of
# their own: Airflow brings ~200 packages (a fresh install adds about 1.5 min and 220 MB), which the main
# suite's venv does not need; `make test` skips tests/airflow (tests/airflow/conftest.py says so).
AIRFLOW_VENV := .venv-airflow
AIRFLOW_PY   := $(AIRFLOW_VENV)/bin/python
$(AIRFLOW_PY):
	$(PYTHON) -m venv $(AIRFLOW_VENV)
$(AIRFLOW_VENV)/.installed: $(AIRFLOW_PY) setup.cfg pyproject.toml
	$(AIRFLOW_PY) -m pip --disable-pip-version-check -q install -e '.[airflow,test]'
	touch $@
AIRFLOW_WORKERS ?= 2
test-airflow: $(AIRFLOW_VENV)/.installed
	PYTHONDONTWRITEBYTECODE= $(AIRFLOW_PY) -m pytest -n $(AIRFLOW_WORKERS) --dist worksteal tests/airflow

## check: lint, format check, type-check and import rules (the same tools as .pre-commit-config.yaml)
LINTED := sfbulk tests bench examples
check: lint format-check typecheck imports
lint: $(VENV)/.installed-test
	$(PY) -m ruff check $(LINTED)
format-check: $(VENV)/.installed-test
	$(PY) -m ruff format --check $(LINTED)
# Strictness lives in setup.cfg [mypy], so that the editor, pre-commit and CI agree.
typecheck: $(VENV)/.installed-test
	$(PY) -m mypy sfbulk
imports: $(VENV)/.installed-test
	$(VENV)/bin/lint-imports --no-logo --no-cache

## bench: every benchmark, figures printed (see docs/benchmarks.md)
bench: bench-emulator bench-engine bench-server bench-bulk
bench-emulator: $(VENV)/.installed-test
	$(PY) bench/emulator.py
bench-engine: $(VENV)/.installed-test
	$(PY) bench/engine.py
bench-server: $(VENV)/.installed-test
	$(PY) bench/server.py
bench-bulk: $(VENV)/.installed-test
	$(PY) bench/bulk.py

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

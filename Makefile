# callcontrol: two commands. `make run` starts the lab, the daemon and a demo prison;
# `make test` sets up and runs the whole suite. Everything else here serves those two.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-serial bench screenshots setup system-deps lint format check-format clean help

help:
	@echo "make run    - set up, start the Asterisk lab, the daemon and a demo prison (Ctrl-C stops)"
	@echo "make test   - set up and run the whole test suite (unit, protocol, database, end to end);"
	@echo "              as root the end-to-end tests run in parallel shards, in network namespaces"
	@echo "make test-serial - the same suite in one pytest, one test after another (PYTEST_ARGS=...)"
	@echo "make bench  - set up and run the benchmark (static dialplan, daemon, pyst2 AGI, capacity,"
	@echo "              micro-benchmark on an empty and a 5-million-row database; 30+ min on a quiet"
	@echo "              machine; BENCH_ARGS=... e.g. --no-history, see python -m callcontrol_lab.bench.run --help)"
	@echo "make lint   - ruff check and format check"
	@echo "make screenshots - the staff console's browser tests, saving the docs' screenshots"
	@echo "              (docs/screenshots/*.png)"

# Two distributions, both editable: callcontrol (the product) and callcontrol-lab (lab/: the
# Asterisk lab, simulator, benchmark and demo, with the test tools).
$(BIN)/.installed: pyproject.toml lab/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e . -e './lab[dev]'
	touch $@

setup: system-deps $(BIN)/.installed

# What the lab and the tests need from Debian: debootstrap (the Asterisk root), PostgreSQL's
# server binaries (the tests start a PostgreSQL of their own), python3-venv.
system-deps:
	@bash scripts/system-deps.sh

run: setup
	$(BIN)/python -m callcontrol_lab.demo

# Lint first; then scripts/run_tests.py runs the end-to-end tests in parallel shards, each in a
# network namespace of its own, beside the rest of the suite (serially where it cannot: not root).
# PYTEST_ARGS are extra pytest options for every part; TEST_SHARDS the number of shards.
test: setup lint
	$(BIN)/python scripts/run_tests.py

test-serial: setup lint
	$(BIN)/pytest -ra --durations=20 $(PYTEST_ARGS)

# The benchmark: docs/benchmarks.md says what it measures and what it found. BENCH_ARGS are
# extra options of python -m callcontrol_lab.bench.run (its --help): by default every figure
# of issue 12 in one run, ending with the table of its targets in var/bench/TIME/bench.md.
BENCH_ARGS ?=
bench: setup
	$(BIN)/python -m callcontrol_lab.bench.run --from-make $(BENCH_ARGS)

# The console's and kiosk's browser tests against the real lab, each saving the pages it sees
# into docs/screenshots (tests/e2e/browser.py's screenshot()).
screenshots: setup
	CALLCONTROL_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest -q \
		$(wildcard tests/e2e/test_console_*.py tests/e2e/test_kiosk*.py) $(PYTEST_ARGS)

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

# callcontrol: two commands. `make run` starts the lab, the daemon and a demo prison;
# `make test` sets up and runs the whole suite. Everything else here serves those two.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench setup system-deps lint format check-format clean help

help:
	@echo "make run    - set up, start the Asterisk lab, the daemon and a demo prison (Ctrl-C stops)"
	@echo "make test   - set up and run the whole test suite (unit, protocol, database, end to end)"
	@echo "make bench  - set up and run the benchmark (static dialplan, daemon, pyst2 AGI; about 30 min)"
	@echo "make lint   - ruff check and format check"

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

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -ra --durations=20

# The benchmark: docs/benchmarks.md says what it measures and what it found.
bench: setup
	$(BIN)/python -m callcontrol_lab.bench.run --from-make $(BENCH_ARGS)

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

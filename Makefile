# The newcomer's path: `make demo` sets everything up and runs the demo production line;
# `make test` sets everything up (system packages included) and runs the whole test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup system-packages lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The demo line (inspection, drift watch, report), the closed loop (edge agent -> annotation
# server -> signed model -> back to the agent; it prints the admin password on first start),
# then the annotation server seeded with demo boards; it prints the UI's URL (delete
# demo-output/server to start afresh).
demo: setup
	$(BIN)/thermoscope demo --out demo-output --loop
	$(BIN)/thermoscope serve --demo --data-dir demo-output/server

# System packages the tests need, installed where apt-get exists (without recommended extras):
# Chromium drives the browser tests; the tests start a throwaway PostgreSQL cluster and a
# Mosquitto broker of their own from these packages' programs (tests/services.py) unless
# THERMOSCOPE_TEST_PG / THERMOSCOPE_TEST_MQTT name running ones; gcc and libc6-dev build the
# stand-in for DJI's Thermal SDK that the SDK binding is tested against.
SYSTEM_PACKAGES := chromium fonts-liberation postgresql mosquitto gcc libc6-dev
system-packages:
	@if command -v apt-get >/dev/null && ! dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		$$SUDO apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); \
	fi

test: setup system-packages
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/bench_decode.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache

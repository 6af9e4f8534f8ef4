# Generative AI for single-cell perturbation modelling: set-up, course run and tests.
#
#   make course   set up .venv, fetch the data, run every notebook in full mode, build the book
#   make test     set up .venv, run the unit tests, the notebooks in fast mode (smoke-test budget) and the book build
#                 (with its browser test: `make browser` installs Debian's chromium first if missing;
#                 and the shared-tuning test on PostgreSQL: `make postgres` installs Debian's postgresql)
#   make lab      set up .venv and open JupyterLab on notebooks/ in it (the course environment)
#
# Other targets: env, data, notebooks, book, times, browser, postgres, lint, lab, clean. Variables (override on the command line):
#   PYTHON        interpreter that creates the virtual environment (default: python3.11)
#   VENV          where the virtual environment lives (default: .venv)
#   TORCH         the PyTorch requirement installed first (default: torch==2.13.0)
#   TORCH_PIP_ARGS extra pip arguments for PyTorch only, e.g. a CPU-only wheel index:
#                 make course TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
#   PYTEST_WORKERS number of pytest-xdist workers of `make test` (default: 2)
#   NB_TIMEOUT    per-cell timeout in seconds of `make course` (default: 7200)
#   NB_TEST_TIMEOUT per-cell timeout in seconds of the fast notebook runs of `make test` (default: 1200)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_PIP_ARGS ?=
EXTRAS ?= test,book,notebooks
PYTEST_WORKERS ?= 2
NB_TIMEOUT ?= 7200
NB_TEST_TIMEOUT ?= 1200

BIN := $(abspath $(VENV))/bin
VPY := $(BIN)/python
# Marker of a finished install; redone when pyproject.toml changes or the venv is recreated.
STAMP := $(VENV)/.tutorial-installed

# Tools of the virtual environment (jupyter, jupyter-book) come first on PATH.
export PATH := $(BIN):$(PATH)

.PHONY: help env course data notebooks book times browser postgres test clean

help:
	@awk '!/^#/ {exit} {sub(/^# ?/, ""); print}' Makefile

$(VPY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VPY)
	@# PyTorch first: installing it before the project keeps pip from choosing another build.
	$(VPY) -m pip install $(TORCH_PIP_ARGS) "$(TORCH)"
	$(VPY) -m pip install -e ".[$(EXTRAS)]"
	touch $(STAMP)

env: $(STAMP)

# The course steps live in scripts/run_course.sh, which conda users can run directly.
# Notebooks run in full mode unless TUTORIAL_FAST is set (TUTORIAL_FAST=1 make course: fast mode).
data: env
	bash scripts/run_course.sh data

notebooks: env
	NB_TIMEOUT=$(NB_TIMEOUT) bash scripts/run_course.sh notebooks

book: env
	bash scripts/run_course.sh book

# Time every notebook in fast mode (outputs untouched) and copy the times into the pages.
times: env
	NB_TIMEOUT=$(NB_TIMEOUT) bash scripts/run_course.sh times

course: env
	NB_TIMEOUT=$(NB_TIMEOUT) bash scripts/run_course.sh all

# Headless Chromium for tests/test_book_browser.py: Debian's package, driven by Playwright (whose
# own browser download is not used). Nothing to do when /usr/bin/chromium exists; apt-get runs as
# root or through `sudo -n`. A failed install only warns: the browser test then says why it
# cannot run (skipped locally, failed on CI).
browser:
	@if [ -x /usr/bin/chromium ]; then echo "make browser: /usr/bin/chromium is installed"; \
	elif ! command -v apt-get >/dev/null; then echo "make browser: no apt-get, cannot install chromium"; \
	else sudo=""; if [ "$$(id -u)" -ne 0 ]; then sudo="sudo -n"; fi; \
	  { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium; } \
	    || echo "make browser: installing chromium failed"; fi

# PostgreSQL server for tests/test_tuning_storages.py (shared tuning on a real database server):
# Debian's package; the test starts its own server in a temporary folder (initdb + pg_ctl, as the
# unprivileged `postgres` user under root) and does not use the package's default cluster.
# Nothing to do when initdb is found; apt-get runs as root or through `sudo -n`.
# A failed install only warns: the test then says why it cannot run (skipped locally, failed on CI).
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then \
	  echo "make postgres: PostgreSQL (initdb) is installed"; \
	elif ! command -v apt-get >/dev/null; then echo "make postgres: no apt-get, cannot install postgresql"; \
	else sudo=""; if [ "$$(id -u)" -ne 0 ]; then sudo="sudo -n"; fi; \
	  { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq postgresql; } \
	    || echo "make postgres: installing postgresql failed"; fi

# Unit tests (tests/, including the book build and the environment checks) and every notebook
# in fast mode with the smoke-test budget (TUTORIAL_SMOKE=1: training capped at a few epochs)
# (nbmake) in one pytest-xdist run, one BLAS/torch thread per worker (2 workers on 2 cores;
# NUMBA_NUM_THREADS too: scanpy's numba kernels share libgomp with torch and would raise torch to
# one thread per core). pytest's exit code 5 ("no tests collected")
# is not an error here: notebooks/ may still be empty. The style check (lint) runs first.
test: env browser postgres lint
	@shopt -s nullglob; notebooks=(notebooks/*.ipynb); \
	args=(tests); \
	if [ $${#notebooks[@]} -gt 0 ]; then args+=(--nbmake --nbmake-timeout=$(NB_TEST_TIMEOUT) "$${notebooks[@]}"); \
	else echo "make test: no notebooks in notebooks/ yet; running tests/ only"; fi; \
	rc=0; \
	TUTORIAL_FAST=1 TUTORIAL_SMOKE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(VPY) -m pytest -n $(PYTEST_WORKERS) --durations=10 "$${args[@]}" || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5), treated as success"; rc=0; fi; \
	exit $$rc

# JupyterLab from the course environment (the `notebooks` extra installs it), so the notebooks'
# kernel has tutorial_lib and its dependencies. LAB_ARGS passes options, e.g. LAB_ARGS=--no-browser.
.PHONY: lab
LAB_ARGS ?=
lab: env
	$(BIN)/jupyter lab $(LAB_ARGS) notebooks/

# Style: ruff's linter and formatter, configured in pyproject.toml ([tool.ruff]); `ruff format .`
# and `ruff check --fix .` repair most findings.
.PHONY: lint
lint: env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf _build .pytest_cache

#!/usr/bin/env bash
# Run the course end to end with the Python environment found on PATH (the Makefile puts .venv
# first; with conda, activate the module's environment first).
#
#   bash scripts/run_course.sh [all|data|notebooks|book|times]     (default: all)
#
#   data       fetch Kang et al. 2018 into the cache (python -m tutorial_lib.data)
#   notebooks  execute every notebooks/*.ipynb in full mode (TUTORIAL_FAST=0), in place, in order
#   book       build the book (jupyter-book build . --all -W --keep-going) into _build/html
#   times      time every notebook in fast mode without changing its outputs (metadata tutorial_timings)
#   all        data, notebooks, book
#
# NB_TIMEOUT: per-cell timeout in seconds (default 7200; -1 for none). TUTORIAL_FAST=1 runs the
# notebooks in fast mode instead (minutes instead of hours, on the small committed subset).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step="${1:-all}"
export TUTORIAL_FAST="${TUTORIAL_FAST:-0}"
NB_TIMEOUT="${NB_TIMEOUT:-7200}"

fetch_data() {
    echo "==> Fetching the Kang et al. 2018 data (cache: $(python -c 'from tutorial_lib.config import cache_dir; print(cache_dir())'))"
    python -m tutorial_lib.data
}

run_notebooks() {
    shopt -s nullglob
    local notebooks=(notebooks/*.ipynb)
    shopt -u nullglob
    if [ ${#notebooks[@]} -eq 0 ]; then
        echo "==> No notebooks in notebooks/ yet; nothing to run"
        return 0
    fi
    local mode=full
    case "${TUTORIAL_FAST,,}" in 1|true|yes|on) mode=fast ;; esac
    # One fresh kernel per notebook, run in the notebook's folder, top to bottom; the outputs and
    # a record of the run (mode, date, wall time, versions: metadata "tutorial_execution") are
    # written back in place, only if every cell succeeded. Stops at the first failing notebook.
    python -m course_tools.execution --mode "$mode" --timeout "$NB_TIMEOUT" "${notebooks[@]}"
    # The pages that quote run times (README, set-up, workshop, notebook headers) follow the record.
    python -m course_tools.run_times --write
}

time_fast() {
    # Time every notebook in fast mode on a throwaway copy (the stored outputs stay), then update
    # the pages that quote run times. Run it on an idle machine: the load is recorded beside.
    shopt -s nullglob
    local notebooks=(notebooks/*.ipynb)
    shopt -u nullglob
    python -m course_tools.execution --time-only --mode fast --timeout "$NB_TIMEOUT" "${notebooks[@]}"
    python -m course_tools.run_times --write
}

build_book() {
    echo "==> Building the book"
    jupyter-book build . --all -W --keep-going
    echo "==> Book: $(pwd)/_build/html/index.html"
}

case "$step" in
    data) fetch_data ;;
    notebooks) run_notebooks ;;
    book) build_book ;;
    times) time_fast ;;
    all) fetch_data; run_notebooks; build_book ;;
    *) echo "usage: $0 [all|data|notebooks|book|times]" >&2; exit 2 ;;
esac

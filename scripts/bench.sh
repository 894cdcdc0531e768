#!/usr/bin/env bash
# Runs every benchmark and writes docs/benchmarks.md. DuckDB, for the side-by-side link case,
# comes from a virtual environment this script makes (.venv-bench). Arguments go to the
# benchmark binary (e.g. --quick, --only link,link-duckdb).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-bench/bin/python ] || ! .venv-bench/bin/python -c 'import duckdb' 2>/dev/null; then
    python3 -m venv .venv-bench
    .venv-bench/bin/pip install --quiet 'duckdb==2.0.1'
fi
export LINKLAB_BENCH_PYTHON="$PWD/.venv-bench/bin/python"
cargo run --release -p linklab-bench -- all "$@"

#!/usr/bin/env bash
# Runs every benchmark and writes docs/benchmarks.md. DuckDB (the side-by-side link case) and
# Splink (the peer of the quality and link-probabilistic cases, crates/bench/peers/) come from a
# virtual environment this script makes (.venv-bench), at pinned versions. Arguments go to the
# benchmark binary (e.g. --quick, --only link,link-duckdb).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-bench/bin/python ] || ! .venv-bench/bin/python -c 'import duckdb, splink, numpy' 2>/dev/null; then
    python3 -m venv .venv-bench
    # Splink 5.0.0 needs Python >= 3.10; these four are all it pulls in with the DuckDB backend.
    # numpy: the side-by-side harness's gen_data.py (the harness-* cases).
    .venv-bench/bin/pip install --quiet 'duckdb==2.0.1' 'splink==5.0.0' 'pyarrow==26.0.1' 'sqlglot==30.31.0' 'numpy==2.4.6'
fi
export LINKLAB_BENCH_PYTHON="$PWD/.venv-bench/bin/python"
# The side-by-side harness (harness-* cases): ../shared/bench beside the repository unless set.
export LINKLAB_BENCH_HARNESS="${LINKLAB_BENCH_HARNESS:-$PWD/../shared/bench}"
cargo run --release -p linklab-bench -- all "$@"

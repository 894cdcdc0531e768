#!/usr/bin/env bash
# The one test command: every test of the workspace, the system tests included.
#
# On a fresh Debian machine, run as root with nothing but Rust installed, it first sets up what
# the system tests need, each step idempotent (run it again and it only checks):
#   1. scripts/install-chromium.sh  Debian's Chromium, for the report's and the dashboard's
#                                   browser tests;
#   2. scripts/slurm-up.sh          a single-node Slurm, for tests/slurm.rs (stopped again at
#                                   the end, pass or fail, by scripts/slurm-down.sh);
#   3. scripts/spark-venv.sh        pyspark in .venv-spark (and Java 17), for the Spark tests;
# then runs `cargo test --workspace` with the `system-tests` feature of every crate that has one
# (the disk-full test also needs root, to mount a small tmpfs).
#
# A plain `cargo test --workspace` runs everything except those system tests.
# Extra arguments go to `cargo test`, e.g. `bash scripts/test.sh -- --nocapture`.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "chromium (the report's and the dashboard's browser tests)"
bash scripts/install-chromium.sh

step "single-node Slurm (tests/slurm.rs)"
trap 'bash scripts/slurm-down.sh || true' EXIT
bash scripts/slurm-up.sh

step "pyspark virtualenv (the Spark engine's tests)"
bash scripts/spark-venv.sh

# Every crate that declares a `system-tests` feature, as `package/system-tests`.
features=()
for manifest in crates/*/Cargo.toml; do
    if grep -qx 'system-tests = \[\]' "$manifest"; then
        package="$(sed -n 's/^name = "\(.*\)"$/\1/p' "$manifest" | head -n 1)"
        features+=("$package/system-tests")
    fi
done
if [[ ${#features[@]} -eq 0 ]]; then
    echo "test.sh: no crate declares a system-tests feature; the system tests would not run" >&2
    exit 1
fi

step "cargo test --workspace --no-fail-fast --features $(IFS=,; echo "${features[*]}")"
# --no-fail-fast: one failing test target does not hide the results of the others.
cargo test --workspace --no-fail-fast --features "$(IFS=,; echo "${features[*]}")" "$@"

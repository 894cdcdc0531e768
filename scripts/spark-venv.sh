#!/usr/bin/env bash
# Creates the Python virtual environment the Spark engine of `linklab link --engine spark` runs
# in: `.venv-spark/` at the repository root, holding a pinned `pyspark` (which brings its own
# Spark jars; it needs a Java 17 runtime on PATH or in JAVA_HOME). Idempotent: when the venv
# already has this pyspark version it does nothing.
#
# Tuning (environment):
#   LINKLAB_SPARK_VENV   where to create the venv (default <repo>/.venv-spark)
#   PYTHON               the interpreter that creates it (default python3)
set -euo pipefail

pyspark_version=3.5.7
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${LINKLAB_SPARK_VENV:-$repo/.venv-spark}"
python="${PYTHON:-python3}"

say() { printf 'spark-venv: %s\n' "$*" >&2; }

if ! java -version >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "no Java runtime found; installing Debian's openjdk-17-jre-headless"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
    else
        say "no Java runtime found; Spark needs Java 17 (Debian: apt-get install openjdk-17-jre-headless)"
        exit 1
    fi
fi

if [ -x "$venv/bin/python" ] &&
    "$venv/bin/python" -c "import pyspark, sys; sys.exit(pyspark.__version__ != '$pyspark_version')" 2>/dev/null; then
    say "$venv already has pyspark $pyspark_version"
    exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv"
    "$python" -m venv "$venv"
fi
say "installing pyspark $pyspark_version into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "pyspark==$pyspark_version"
"$venv/bin/python" -c "import pyspark; print('spark-venv: pyspark', pyspark.__version__, 'ready')" >&2

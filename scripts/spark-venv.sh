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

# Installs Debian packages when running as root, else says what is missing and stops.
apt_install() {
    local why="$1"
    shift
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "$why; installing Debian's $*"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        say "$why (Debian: apt-get install $*)"
        exit 1
    fi
}

if ! java -version >/dev/null 2>&1; then
    apt_install "no Java runtime found; Spark needs Java 17" openjdk-17-jre-headless
fi

if [ -x "$venv/bin/python" ] &&
    "$venv/bin/python" -c "import pyspark, sys; sys.exit(pyspark.__version__ != '$pyspark_version')" 2>/dev/null; then
    say "$venv already has pyspark $pyspark_version"
    exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
    # A fresh Debian has no Python, and Debian's Python makes venvs only with python3-venv.
    if ! "$python" -c "import ensurepip, venv" >/dev/null 2>&1; then
        apt_install "no $python that can make a virtualenv" python3 python3-venv
    fi
    say "creating $venv"
    "$python" -m venv "$venv"
fi
say "installing pyspark $pyspark_version into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "pyspark==$pyspark_version"
"$venv/bin/python" -c "import pyspark; print('spark-venv: pyspark', pyspark.__version__, 'ready')" >&2

#!/usr/bin/env bash
# Installs Debian's `chromium` for the browser tests (the report's, the dashboard's and their harness in crates/browser-test).
# Idempotent: does nothing when /usr/bin/chromium is already there. Needs root (or sudo) and
# Debian's package archive; nothing is downloaded from anywhere else.
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: apt-get not found; install Debian's chromium package by hand" >&2
    exit 1
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "install-chromium: must run as root (or with sudo available)" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q chromium

if [[ ! -x /usr/bin/chromium ]]; then
    echo "install-chromium: apt-get finished but /usr/bin/chromium is still missing" >&2
    exit 1
fi
echo "chromium installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"

#!/usr/bin/env bash
# Stops the single-node Slurm that scripts/slurm-up.sh started: slurmd, slurmctld and munged,
# each by its pid file. Run as root. Safe to run when nothing is running. It leaves the packages,
# /etc/slurm/slurm.conf and the munge key in place, so slurm-up.sh starts quickly next time;
# `rm -rf "$LINKLAB_SLURM_DIR"` (default /tmp/linklab-slurm) forgets the jobs and logs.
set -euo pipefail

state_dir="${LINKLAB_SLURM_DIR:-/tmp/linklab-slurm}"

say() { printf 'slurm-down: %s\n' "$*" >&2; }

stop() {
    local name="$1" pid_file="$2" pid
    if [[ ! -f "$pid_file" ]]; then
        return 0
    fi
    pid="$(cat "$pid_file")"
    if kill -0 "$pid" 2>/dev/null; then
        say "stopping $name (pid $pid)"
        kill "$pid"
        for _ in $(seq 1 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name did not stop within 10s; killing it"
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pid_file"
}

stop slurmd "$state_dir/slurmd.pid"
stop slurmctld "$state_dir/slurmctld.pid"
stop munged /run/munge/munged.pid
say "stopped"

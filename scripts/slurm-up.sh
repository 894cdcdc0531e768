#!/usr/bin/env bash
# Starts a single-node Slurm on this machine, for running `linklab plan --format slurm` scripts
# and the Slurm integration test (tests/slurm.rs). Run as root. Idempotent: run it again
# and it starts only what is not running.
#
# What it does:
#   1. installs Debian's `slurm-wlm` and `munge` if they are missing (apt-get);
#   2. makes a munge key if there is none;
#   3. writes a minimal single-node /etc/slurm/slurm.conf (cluster `linklab`, this host as the
#      controller and the only node, partition `debug`, no accounting), with its spool, state,
#      pid and log files under $LINKLAB_SLURM_DIR (default /tmp/linklab-slurm);
#   4. starts `munged` as the munge user, then `slurmctld` and `slurmd` by hand (no systemd);
#   5. waits until `sinfo` shows the node idle, or fails with the tail of the logs.
#
# Slurm's commands (sbatch, squeue, scontrol) read /etc/slurm/slurm.conf, so nothing needs to be
# exported afterwards. It refuses to overwrite a slurm.conf it did not write: a machine with a
# real Slurm does not need this script. scripts/slurm-down.sh stops the daemons again.
#
# Tuning (environment):
#   LINKLAB_SLURM_DIR      where spool, state, pid and log files go (default /tmp/linklab-slurm)
#   LINKLAB_SLURM_TIMEOUT  seconds to wait for the node to become idle (default 60)
set -euo pipefail

state_dir="${LINKLAB_SLURM_DIR:-/tmp/linklab-slurm}"
timeout="${LINKLAB_SLURM_TIMEOUT:-60}"
conf=/etc/slurm/slurm.conf
marker="# written by linklab scripts/slurm-up.sh"

say() { printf 'slurm-up: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    for log in "$state_dir/slurmctld.log" "$state_dir/slurmd.log" /var/log/munge/munged.log; do
        if [[ -f "$log" ]]; then
            printf '\n--- last lines of %s ---\n' "$log" >&2
            tail -n 30 "$log" >&2
        fi
    done
    exit 1
}
# True if the pid in file $1 is a running process.
running() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [[ "$(id -u)" != 0 ]]; then
    die "run this as root (it installs packages and starts daemons)"
fi

# 1. Packages.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
    || ! command -v munged >/dev/null; then
    say "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || say "apt-get update failed; trying the install anyway"
    # The packages' own service start-ups are left to policy-rc.d / systemd; the daemons are
    # started by hand below either way.
    apt-get install -y -qq slurm-wlm munge >/dev/null || die "apt-get install slurm-wlm munge failed"
fi

# 2. Munge key and the folders munged needs.
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    say "making a munge key"
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

# 3. slurm.conf.
host="$(hostname -s)"
cpus="$(nproc)"
# (From /proc/meminfo: `free` is in procps, which a minimal Debian lacks.)
mem_total="$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)"
# Leave a margin so slurmd never sees less memory than configured (which would drain the node).
real_memory=$((mem_total * 9 / 10))
mkdir -p "$state_dir/state" "$state_dir/spool"
new_conf="$(mktemp)"
trap 'rm -f "$new_conf"' EXIT
cat >"$new_conf" <<EOF
$marker
# A single-node Slurm for linklab's tests and for trying \`linklab plan --format slurm\`.
ClusterName=linklab
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
# CPUs are the only consumable: a job that asks for no memory must not take the whole node.
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# Finished jobs stay visible to \`scontrol show job\` for this many seconds.
MinJobAge=600
StateSaveLocation=$state_dir/state
SlurmdSpoolDir=$state_dir/spool
SlurmctldPidFile=$state_dir/slurmctld.pid
SlurmdPidFile=$state_dir/slurmd.pid
SlurmctldLogFile=$state_dir/slurmctld.log
SlurmdLogFile=$state_dir/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$real_memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
mkdir -p /etc/slurm
restart=0
if [[ -f "$conf" ]] && ! grep -qxF "$marker" "$conf"; then
    die "$conf exists and was not written by this script; this machine already has a Slurm set-up (leave it alone, or move it away to use this one)"
fi
if ! cmp -s "$new_conf" "$conf"; then
    say "writing $conf"
    install -m 0644 "$new_conf" "$conf"
    restart=1
fi

# 4. Daemons.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged || die "munged did not start"
    for _ in $(seq 1 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.5
    done
    munge -n | unmunge >/dev/null || die "munge does not answer"
fi
if [[ "$restart" == 1 ]]; then
    # The configuration changed: stop what runs with the old one.
    for pid_file in "$state_dir/slurmd.pid" "$state_dir/slurmctld.pid"; do
        if running "$pid_file"; then
            kill "$(cat "$pid_file")"
            for _ in $(seq 1 20); do running "$pid_file" || break; sleep 0.5; done
        fi
    done
fi
if ! running "$state_dir/slurmctld.pid"; then
    say "starting slurmctld"
    slurmctld || die "slurmctld did not start"
fi
if ! running "$state_dir/slurmd.pid"; then
    say "starting slurmd"
    slurmd || die "slurmd did not start"
fi

# 5. Wait for the node.
deadline=$((SECONDS + timeout))
resumed=0
while true; do
    node_state="$(sinfo -h -N -n "$host" -o %t 2>/dev/null | head -n 1 || true)"
    case "$node_state" in
        idle | mix | alloc) break ;;
        down* | drain* | drng*)
            # A node left down or drained by an earlier run comes back once asked.
            if [[ "$resumed" == 0 ]]; then
                scontrol update NodeName="$host" State=RESUME 2>/dev/null || true
                resumed=1
            fi
            ;;
    esac
    if ((SECONDS >= deadline)); then
        die "the node $host is not idle after ${timeout}s (sinfo says: ${node_state:-nothing})"
    fi
    sleep 1
done
say "Slurm is up: node $host ($cpus CPUs) in partition debug is $node_state"
sinfo

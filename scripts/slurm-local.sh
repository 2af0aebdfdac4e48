#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for the tests of `nq-exp run --launcher
# slurm` and for trying the launcher by hand:
#
#   scripts/slurm-local.sh start [DIR]   # prints `export SLURM_CONF=DIR/slurm.conf`
#   scripts/slurm-local.sh stop [DIR]
#
# DIR (default ${NQ_SLURM_DIR:-/tmp/nq-exp-slurm}) holds the configuration, state, logs and
# pid files; nothing outside it is changed except that munged is started when no munge
# daemon answers. The machine's cores are one node in one partition, `debug`, as root
# (SlurmUser=root, which needs root: run it as root, as CI does). Needs Debian's slurm-wlm
# and munge (`make setup` installs them when missing). Commands that talk to this cluster
# need SLURM_CONF=DIR/slurm.conf in their environment. `stop` ends the daemons by their pid
# files and leaves DIR for its logs.
set -euo pipefail

action="${1:-}"
dir="${2:-${NQ_SLURM_DIR:-/tmp/nq-exp-slurm}}"
die() { printf 'slurm-local: %s\n' "$*" >&2; exit 2; }

stop_pid() {
    local file="$1"
    [[ -f "$file" ]] || return 0
    local pid
    pid=$(cat "$file")
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$file"
}

case "$action" in
start)
    for tool in slurmctld slurmd sbatch munged; do
        command -v "$tool" >/dev/null || [[ -x "/usr/sbin/$tool" ]] ||
            die "$tool not found: install Debian's slurm-wlm and munge ('make setup' does)"
    done
    [[ $(id -u) == 0 ]] || die "SlurmUser=root needs root"
    mkdir -p "$dir"/{state,spool,log}
    dir=$(cd "$dir" && pwd)
    # one munge daemon for the machine: start it only when none answers
    if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        [[ -f /etc/munge/munge.key ]] || {
            if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key
            else /usr/sbin/create-munge-key -f; fi
            chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
        }
        mkdir -p /run/munge /var/log/munge /var/lib/munge
        chown munge:munge /run/munge /var/log/munge /var/lib/munge
        su -s /bin/sh munge -c /usr/sbin/munged
        for _ in $(seq 50); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    fi
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
    cat >"$dir/slurm.conf" <<EOF
ClusterName=nq-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=${NQ_SLURM_PORT:-6817}
SlurmdPort=$(( ${NQ_SLURM_PORT:-6817} + 1 ))
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
AccountingStorageType=accounting_storage/none
MinJobAge=300
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF="$dir/slurm.conf"
    stop_pid "$dir/slurmd.pid"
    stop_pid "$dir/slurmctld.pid"
    slurmctld -f "$SLURM_CONF" -i
    slurmd -f "$SLURM_CONF"
    for _ in $(seq 100); do
        state=$(sinfo -h -o %t 2>/dev/null | head -n 1)
        [[ "$state" == idle || "$state" == mix || "$state" == alloc ]] && break
        sleep 0.2
    done
    [[ "$state" == idle || "$state" == mix || "$state" == alloc ]] ||
        die "the node did not come up (state '${state:-none}'); see $dir/log/"
    echo "export SLURM_CONF=$SLURM_CONF"
    ;;
stop)
    [[ -d "$dir" ]] || exit 0
    stop_pid "$dir/slurmd.pid"
    stop_pid "$dir/slurmctld.pid"
    ;;
*)
    die "usage: $0 start|stop [DIR]"
    ;;
esac

#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the SLURM test (tests/test_slurm.py); no systemd needed.
#   tools/slurm-cluster.sh start DIR   install Debian's SLURM 22.05 and munge where missing, write
#                                      DIR/slurm.conf, start munged, slurmctld and slurmd; prints the
#                                      SLURM_CONF line to export
#   tools/slurm-cluster.sh stop DIR    stop every daemon this script started, by its PID
# Accounting stays off (no slurmdbd, no MariaDB): the workflow is run with
# --slurm-status-command squeue, and MinJobAge keeps finished jobs visible to squeue.
set -euo pipefail

action=${1:?start or stop}
dir=$(realpath -m "${2:?a folder for the cluster config, state and logs}")
here=$(cd "$(dirname "$0")" && pwd)

stop() {
    for daemon in slurmd slurmctld munged; do
        if [[ -f "$dir/$daemon.pid" ]]; then
            pid=$(cat "$dir/$daemon.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$dir/$daemon.pid"
        fi
    done
    if [[ -L /etc/slurm/slurm.conf && $(readlink /etc/slurm/slurm.conf) == "$dir/slurm.conf" ]]; then
        rm -f /etc/slurm/slurm.conf
    fi
    if [[ -f "$dir/munge-dir" ]]; then
        rm -rf "$(cat "$dir/munge-dir")" "$dir/munge-dir"
    fi
}

if [[ $action == stop ]]; then
    stop
    exit 0
fi
[[ $action == start ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
    || ! command -v munged >/dev/null; then
    bash "$here/install-system-deps.sh" munge slurmctld slurmd slurm-client
fi

mkdir -p "$dir/state" "$dir/spool"
# munged runs as the munge user, which cannot enter a private temporary folder: its files live apart.
munge_dir=$(mktemp -d /tmp/imagecoding-munge.XXXXXX)
echo "$munge_dir" > "$dir/munge-dir"
node=$(hostname -s)
cpus=$(nproc --all)  # not nproc: it obeys OMP_THREAD_LIMIT and OMP_NUM_THREADS of the caller
memory_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048 ))
(( memory_mb > 16000 )) && memory_mb=16000
cat > "$dir/slurm.conf" <<EOF
ClusterName=imagecoding-test
SlurmctldHost=$node(127.0.0.1)
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$munge_dir/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pidfile
SlurmdPidFile=$dir/slurmd.pidfile
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPort=${SLURMCTLD_PORT:-16817}
SlurmdPort=${SLURMD_PORT:-16818}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MailProg=/bin/true
ReturnToService=2
MinJobAge=3600
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$dir/slurm.conf
# Inside a job, Snakemake's jobstep plugin runs srun without SLURM_* variables, so srun finds the
# configuration only where every cluster keeps it. Borrow that place, never over a real one.
if [[ -e /etc/slurm/slurm.conf && ! -L /etc/slurm/slurm.conf ]]; then
    echo "/etc/slurm/slurm.conf exists: this machine has its own SLURM; run the test on a machine without one" >&2
    exit 1
fi
mkdir -p /etc/slurm
ln -sfn "$SLURM_CONF" /etc/slurm/slurm.conf

# munge: our own socket, so a munged already running elsewhere on the machine is left alone.
if [[ ! -f /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
fi
chown munge:munge "$munge_dir"
runuser -u munge -- /usr/sbin/munged --socket="$munge_dir/munge.socket" --pid-file="$munge_dir/munged.pid" \
    --log-file="$munge_dir/munged.log" --seed-file="$munge_dir/munged.seed" --force
for _ in $(seq 50); do [[ -s "$munge_dir/munged.pid" ]] && break; sleep 0.1; done
cp "$munge_dir/munged.pid" "$dir/munged.pid"

/usr/sbin/slurmctld -D -i -f "$SLURM_CONF" >"$dir/slurmctld.out" 2>&1 &
echo $! > "$dir/slurmctld.pid"
/usr/sbin/slurmd -D -N "$node" -f "$SLURM_CONF" >"$dir/slurmd.out" 2>&1 &
echo $! > "$dir/slurmd.pid"

for _ in $(seq 300); do
    if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 0.2
done
echo "SLURM did not come up within 60 s; see $dir/slurmctld.log and $dir/slurmd.log" >&2
tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
stop
exit 1

#!/usr/bin/env bash
# Start a one-node Slurm cluster on 127.0.0.1 for fsnn's Slurm tests.
#
#   ci/slurm/start.sh [--install]     # prints the state directory; then:
#   . "${FSNN_SLURM_STATE:-/tmp/fsnn-slurm}/env"   # sets SLURM_CONF for sbatch/squeue
#   cargo test --release --test slurm
#   ci/slurm/stop.sh                  # stops exactly what start.sh started
#
# --install: apt-get install Debian's slurmctld, slurmd, slurm-client and
# munge (--no-install-recommends) when they are missing. Needs root (slurmd
# runs jobs as any user, munged runs as user munge).
#
# Every daemon runs in the foreground under nohup; its PID is recorded in
# $FSNN_SLURM_STATE/pids (one "name pid" per line) and stop.sh kills only
# those. A munged that is already running (the system's) is reused and left
# alone. Config, spool, state and logs all live in $FSNN_SLURM_STATE; the
# config is not installed in /etc, so clients need SLURM_CONF (see env).
set -euo pipefail

STATE=${FSNN_SLURM_STATE:-/tmp/fsnn-slurm}
here=$(cd "$(dirname "$0")" && pwd)

if [ "${1:-}" = "--install" ]; then
  if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
     || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    { apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
           slurmctld slurmd slurm-client munge >/dev/null; } \
      || { echo "start.sh: could not install Slurm and munge" >&2; exit 3; }
  fi
fi
# Exit status 3: Slurm is not installed (callers may skip); 1: it failed to start.
for b in slurmctld slurmd sbatch squeue sinfo scancel munged setpriv; do
  command -v "$b" >/dev/null || { echo "start.sh: $b not found (run with --install)" >&2; exit 3; }
done

if [ -f "$STATE/pids" ]; then
  echo "start.sh: $STATE/pids exists: a cluster from an earlier start.sh may be running; run ci/slurm/stop.sh first" >&2
  exit 1
fi
# A fresh cluster every time: no jobs recovered from an earlier one.
rm -rf "$STATE/ctld" "$STATE/spool"
mkdir -p "$STATE/ctld" "$STATE/spool"
: > "$STATE/pids"
record() { echo "$1 $2" >> "$STATE/pids"; }

host=$(hostname -s)
cpus=$(nproc)
cat > "$STATE/slurm.conf" <<CONF
# One-node test cluster written by ci/slurm/start.sh.
ClusterName=fsnn-test
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pidfile
SlurmdPidFile=$STATE/slurmd.pidfile
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# Start array tasks at once (the default batch_sched_delay makes them wait ~3 s).
SchedulerParameters=batch_sched_delay=0
MailProg=/bin/true
ReturnToService=2
# No slurmdbd: no accounting (sacct answers nothing; fsnn falls back to squeue).
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
# Finished jobs stay visible to squeue for this long (fsnn reads their final state).
MinJobAge=300
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
echo "export SLURM_CONF=$STATE/slurm.conf" > "$STATE/env"
export SLURM_CONF=$STATE/slurm.conf

# munge: reuse a running one, else start ours as user munge.
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  echo "start.sh: munged already running; reusing it" >&2
else
  install -d -o munge -g munge -m 0755 /run/munge
  nohup setpriv --reuid=munge --regid=munge --init-groups \
    munged --foreground --force > "$STATE/munged.out" 2>&1 &
  record munged $!
  for _ in $(seq 100); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.05
  done
  munge -n | unmunge >/dev/null || { echo "start.sh: munged did not start (see $STATE/munged.out)" >&2; exit 1; }
fi

nohup slurmctld -D -f "$STATE/slurm.conf" > "$STATE/slurmctld.out" 2>&1 &
record slurmctld $!
nohup slurmd -D -N "$host" -f "$STATE/slurm.conf" > "$STATE/slurmd.out" 2>&1 &
record slurmd $!

# Wait for the node to be idle.
for _ in $(seq 300); do
  st=$(sinfo -h -N -o %T 2>/dev/null | head -1 || true)
  [ "$st" = "idle" ] && break
  sleep 0.1
done
if [ "$st" != "idle" ]; then
  echo "start.sh: node not idle after 30 s (state: '${st:-no answer}'); logs in $STATE" >&2
  "$here/stop.sh" >&2 || true
  exit 1
fi
echo "$STATE"

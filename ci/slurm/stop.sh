#!/usr/bin/env bash
# Stop the cluster of ci/slurm/start.sh: cancel its jobs, then stop exactly
# the daemons it recorded in $FSNN_SLURM_STATE/pids (slurmd, slurmctld,
# munged), waiting until each is gone (SIGKILL after 10 s). Safe to call twice.
set -uo pipefail

STATE=${FSNN_SLURM_STATE:-/tmp/fsnn-slurm}
[ -f "$STATE/pids" ] || exit 0
export SLURM_CONF=$STATE/slurm.conf

pid_of() { awk -v n="$1" '$1 == n { print $2 }' "$STATE/pids"; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# Cancel every job while slurmctld and slurmd are still up, and wait for
# the job steps to end.
if alive "$(pid_of slurmctld)"; then
  scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
  for _ in $(seq 100); do
    [ -z "$(squeue -h -t PD,R,CG,S,CF 2>/dev/null)" ] && break
    sleep 0.1
  done
fi

# Jobs are gone, so the daemons can stop together (each takes 1-2 s).
pids=()
for name in slurmd slurmctld munged; do
  pid=$(pid_of "$name")
  alive "$pid" || continue
  kill -TERM "$pid"
  pids+=("$name:$pid")
done
for _ in $(seq 100); do
  left=0
  for np in "${pids[@]}"; do alive "${np#*:}" && left=1; done
  [ "$left" = 0 ] && break
  sleep 0.1
done
status=0
for np in "${pids[@]}"; do
  name=${np%%:*} pid=${np#*:}
  alive "$pid" || continue
  echo "stop.sh: $name ($pid) did not stop on SIGTERM in 10 s; SIGKILL" >&2
  kill -KILL "$pid"
  sleep 0.2
  alive "$pid" && { echo "stop.sh: $name ($pid) still alive" >&2; status=1; }
done
[ "$status" = 0 ] && rm -f "$STATE/pids"
exit $status

#!/usr/bin/env bash
# Stop the cluster of ci/slurm/start.sh: cancel its jobs, then stop exactly
# the daemons it recorded in $FSNN_SLURM_STATE/pids (slurmd, slurmctld,
# munged, in that order), waiting until each is gone. Safe to call twice.
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

status=0
for name in slurmd slurmctld munged; do
  pid=$(pid_of "$name")
  alive "$pid" || continue
  kill -TERM "$pid"
  for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid"; then
    echo "stop.sh: $name ($pid) did not stop on SIGTERM; SIGKILL" >&2
    kill -KILL "$pid"
    sleep 0.2
    alive "$pid" && { echo "stop.sh: $name ($pid) still alive" >&2; status=1; }
  fi
done
[ "$status" = 0 ] && rm -f "$STATE/pids"
exit $status

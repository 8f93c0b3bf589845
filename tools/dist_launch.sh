#!/usr/bin/env bash
# Run a Python script on <gpus> processes per node with torch.distributed.run (the one torchrun line of the
# launchers: dist_train.sh, dist_test.sh and tools/benchmarks/*/dist_{train,test}.sh call it).
#   bash tools/dist_launch.sh <gpus> <script.py> [script arguments]
# NNODES / NODE_RANK / MASTER_ADDR / PORT select multi-node runs, as in mmpretrain. Without a visible GPU the
# scripts run as gloo CPU processes (mmmst.runtime.cpu_dist).
#
# Signals (docs/preemption.md): SIGTERM, SIGUSR1, SIGINT or SIGHUP sent to this script's process, to torchrun or to
# the whole process group reach every training process once (through torchrun, which sends it on to each process
# and waits TORCH_ELASTIC_SHUTDOWN_TIMEOUT seconds, default 30, before SIGKILL). tools/train.py then saves and
# stops; this script exits with 75 once the checkpoint is complete, else with torchrun's code.
set -e
GPUS=$1
SCRIPT=$2
shift 2 || { echo "usage: $0 <gpus> <script.py> [arguments]" >&2; exit 2; }
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
PREEMPTED=75  # tools/train.py's exit code once its stop is saved

# torchrun sends on these signals to the processes it started (its --signals-to-handle; SIGUSR1: slurm's warning
# before the time limit)
export PET_SIGNALS_TO_HANDLE=${PET_SIGNALS_TO_HANDLE:-SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1}
# each process writes 75 here once its stop is saved: torchrun's own exit code is 1 whenever a process fails
MMMST_EXIT_CODE_FILE=$(mktemp "${TMPDIR:-/tmp}/mmmst-exit.XXXXXX")
export MMMST_EXIT_CODE_FILE
trap 'rm -f "$MMMST_EXIT_CODE_FILE"' EXIT

# torchrun in a process group of its own (job control), so that a signal to this script's group reaches it once:
# from this script, which passes on the first signal and waits
set -m
PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$SCRIPT" "$@" &
torchrun=$!
set +m
forwarded=""
forward() {
    if [ -z "$forwarded" ]; then  # a second signal would make torchrun leave before its processes have saved
        forwarded=$1
        kill -s "$1" "$torchrun" 2>/dev/null || true
    fi
}
for sig in TERM USR1 INT HUP; do
    # shellcheck disable=SC2064
    trap "forward $sig" "$sig"
done

set +e
while true; do
    wait "$torchrun"
    status=$?
    kill -0 "$torchrun" 2>/dev/null || break  # (wait returned early for a trapped signal: wait again)
done
# a process writes 75 only after every process has waited for the checkpoint to be complete
if [ "$status" != 0 ] && grep -qx "$PREEMPTED" "$MMMST_EXIT_CODE_FILE"; then
    echo "dist_launch.sh: the run saved and stopped on a signal; exit $PREEMPTED (continue with --resume)" >&2
    exit $PREEMPTED
fi
exit "$status"

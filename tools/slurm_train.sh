#!/usr/bin/env bash
# bash tools/slurm_train.sh <partition> <job-name> <config> [train.py options]
# GPUS (total, default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS as in mmpretrain: runs the job with srun.
#
# Requeue mode, for jobs longer than the time limit or on preemptible partitions (docs/preemption.md):
#   REQUEUE=1 bash tools/slurm_train.sh <partition> <job-name> <config> --work-dir <dir> [train.py options]
# submits this script with sbatch --requeue --signal=USR1@${SIGNAL_SECONDS:-120}. Slurm sends SIGUSR1 that many
# seconds before the time limit (SIGTERM on a preemption); tools/train.py finishes its iteration, saves
# <dir>/iter_<i>.pth and exits with 75; the job then requeues itself, and the restarted job resumes from <dir>'s
# last checkpoint by itself. SBATCH_ARGS passes more sbatch options (--time=..., --account=...).
set -x
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
shift 3 || { echo "usage: $0 <partition> <job-name> <config> [options]" >&2; exit 2; }
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
# (a batch job runs a copy of this script in slurm's spool directory: the submitting run passes the tools' path)
TOOLS=${MMMST_TOOLS:-$(cd "$(dirname "$0")" && pwd)}
PREEMPTED=75  # tools/train.py's exit code after saving on SIGTERM / SIGUSR1

# the job's resources, for srun (run now) or sbatch (requeue mode)
RESOURCES=(--partition="${PARTITION}" --job-name="${JOB_NAME}" --gres=gpu:"${GPUS_PER_NODE}" --ntasks="${GPUS}"
           --ntasks-per-node="${GPUS_PER_NODE}" --cpus-per-task="${CPUS_PER_TASK}")

WORK_DIR=""
previous=""
for arg in "$@"; do
    [ "$previous" = --work-dir ] && WORK_DIR=$arg
    case $arg in --work-dir=*) WORK_DIR=${arg#--work-dir=} ;; esac
    previous=$arg
done

# srun, with the exit code 75 kept: with --kill-on-bad-exit, srun reports 128 + 9 for a task it killed after the
# first one left, so each process also writes 75 into a file (shared by the nodes: in the work dir, or here) once
# the checkpoint is complete
run_training() {
    # SIGTERM / SIGUSR1 to this shell (a preemption signals it with the job step; `kill <pid>` reaches it alone):
    # passed on to srun, which passes it to every task, and this shell waits for train.py's save instead of dying
    # first (a task signalled twice saves once)
    trap 'echo "slurm_train.sh: SIGTERM received; passed on to the job step, waiting for train.py to save"
          kill -TERM "$srun_pid" 2>/dev/null' TERM
    trap 'echo "slurm_train.sh: SIGUSR1 received; passed on to the job step, waiting for train.py to save"
          kill -USR1 "$srun_pid" 2>/dev/null' USR1
    mkdir -p "${WORK_DIR:-.}"
    MMMST_EXIT_CODE_FILE=$(mktemp "$(cd "${WORK_DIR:-.}" && pwd)/.mmmst-exit.XXXXXX")
    export MMMST_EXIT_CODE_FILE
    PYTHONPATH="$TOOLS/..":${PYTHONPATH:-} \
    srun "$@" --kill-on-bad-exit=1 ${SRUN_ARGS} \
        "$PYTHON" -u "$TOOLS/train.py" "${CONFIG}" --launcher="slurm" "${TRAIN_ARGS[@]}" &
    srun_pid=$!
    wait "$srun_pid"
    status=$?
    while kill -0 "$srun_pid" 2>/dev/null; do  # a trapped signal ends `wait` early: wait for srun itself
        wait "$srun_pid"
        status=$?
    done
    if [ "$status" != 0 ] && grep -qx "$PREEMPTED" "$MMMST_EXIT_CODE_FILE"; then
        status=$PREEMPTED
    fi
    rm -f "$MMMST_EXIT_CODE_FILE"
}

if [ "${REQUEUE:-0}" != 1 ]; then
    TRAIN_ARGS=("$@")
    run_training "${RESOURCES[@]}"
    exit "$status"
fi

# requeue mode: the work dir is where the restarted job finds its checkpoint
if [ -z "$WORK_DIR" ]; then
    echo "error: REQUEUE=1 needs --work-dir <dir>: the requeued job resumes from the checkpoint there" >&2
    exit 2
fi

if [ -z "${MMMST_IN_BATCH_JOB:-}" ]; then
    # on the login node: submit this script as the batch job (it runs the branch below, in the job; sbatch
    # passes the environment on)
    mkdir -p "$WORK_DIR"
    export MMMST_TOOLS="$TOOLS" MMMST_IN_BATCH_JOB=1
    exec sbatch "${RESOURCES[@]}" \
        --requeue \
        --signal=USR1@"${SIGNAL_SECONDS:-120}" \
        --open-mode=append \
        --output="${WORK_DIR}/slurm-%j.out" \
        ${SBATCH_ARGS:-} \
        "$TOOLS/slurm_train.sh" "$PARTITION" "$JOB_NAME" "$CONFIG" "$@"
fi

# in the job (first start or requeued): resume when an earlier start left a checkpoint. --start-over applies to the
# first start only: slurm counts the restarts (SLURM_RESTART_COUNT), and a restarted job resumes what its first start
# began instead of deleting it
ARGS=()
START_OVER=0
for arg in "$@"; do
    if [ "$arg" = "--start-over" ]; then START_OVER=1; else ARGS+=("$arg"); fi
done
RESUME=()
if [ -f "$WORK_DIR/last_checkpoint" ] && { [ "$START_OVER" = 0 ] || [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; }; then
    RESUME=(--resume)
elif [ "$START_OVER" = 1 ]; then
    RESUME=(--start-over)
fi
if [ -z "${SLURM_JOB_ID:-}" ]; then
    echo "error: REQUEUE=1: SLURM_JOB_ID is not set; this branch runs inside the batch job that sbatch starts" >&2
    exit 2
fi
TRAIN_ARGS=("${ARGS[@]}" "${RESUME[@]}")
run_training
if [ "$status" = "$PREEMPTED" ]; then
    echo "slurm_train.sh: train.py saved and stopped on a signal; requeueing job ${SLURM_JOB_ID}"
    scontrol requeue "${SLURM_JOB_ID}"
fi
exit "$status"

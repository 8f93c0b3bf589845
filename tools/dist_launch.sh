#!/usr/bin/env bash
# Run a Python script on <gpus> processes per node with torch.distributed.run (the one torchrun line of the
# launchers: dist_train.sh, dist_test.sh and tools/benchmarks/*/dist_{train,test}.sh call it).
#   bash tools/dist_launch.sh <gpus> <script.py> [script arguments]
# NNODES / NODE_RANK / MASTER_ADDR / PORT select multi-node runs, as in mmpretrain. Without a visible GPU the
# scripts run as gloo CPU processes (mmmst.engine.cpu_dist).
set -e
GPUS=$1
SCRIPT=$2
shift 2 || { echo "usage: $0 <gpus> <script.py> [arguments]" >&2; exit 2; }
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$SCRIPT" "$@"

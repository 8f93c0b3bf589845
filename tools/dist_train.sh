#!/usr/bin/env bash
# bash tools/dist_train.sh <config> <gpus> [train.py options]
# NNODES / NODE_RANK / MASTER_ADDR / PORT select multi-node runs, as in mmpretrain.
set -e
CONFIG=$1
GPUS=$2
shift 2 || { echo "usage: $0 <config> <gpus> [options]" >&2; exit 2; }
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "$@"

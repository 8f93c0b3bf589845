#!/usr/bin/env bash
# Run mmdet's or mmseg's own train.py / test.py on <gpus> processes: NCCL on GPUs; gloo CPU processes where
# no GPU is visible (same arguments). Called by mmdetection/ and mmsegmentation/{dist_train,dist_test}.sh:
#   CODEBASE=mmdet TOOL=train bash tools/benchmarks/dist_launch.sh <config> <gpus> [tool options]
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
HERE=$(dirname "$0")

PYTHONPATH="$HERE/../..":${PYTHONPATH:-} \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$HERE/codebase_tool.py" "${CODEBASE:?set CODEBASE=mmdet or mmseg}" "${TOOL:?set TOOL=train or test}" \
    "$CONFIG" "$@" --launcher pytorch

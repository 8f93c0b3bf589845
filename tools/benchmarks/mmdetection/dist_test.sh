#!/usr/bin/env bash
# Evaluate a fine-tuned mmdet model on <gpus> GPUs
# (gloo CPU processes where no GPU is visible; tools/dist_launch.sh); prints the
# metrics (coco/bbox_mAP, coco/segm_mAP). Needs only the evaluation data.
#   bash tools/benchmarks/mmdetection/dist_test.sh <config> <fine-tuned checkpoint> <gpus> [test.py options]
set -e
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3 || { echo "usage: $0 <config> <checkpoint> <gpus> [options]" >&2; exit 2; }
HERE=$(dirname "$0")
ARGS=("$CONFIG" "$CHECKPOINT" "$@")
# one process checks the stack and the data first: one line instead of a traceback from every rank
"${PYTHON:-python}" "$HERE/../codebase_tool.py" mmdet test --check "${ARGS[@]}"
exec bash "$HERE/../../dist_launch.sh" "$GPUS" "$HERE/../codebase_tool.py" mmdet test "${ARGS[@]}" --launcher pytorch

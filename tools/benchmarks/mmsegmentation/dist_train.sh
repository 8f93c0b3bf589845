#!/usr/bin/env bash
# Fine-tune an MST checkpoint in mmseg on <gpus> GPUs
# (gloo CPU processes where no GPU is visible; tools/dist_launch.sh):
#   bash tools/benchmarks/mmsegmentation/dist_train.sh <config> <mst checkpoint> <gpus> [train.py options]
# The configs read the teacher backbone (prefix teacher.module.backbone.); a converted checkpoint
# (tools/model_converters/mst_to_backbone.py) needs --cfg-options model.backbone.init_cfg.prefix=backbone.
set -e
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3 || { echo "usage: $0 <config> <mst checkpoint> <gpus> [options]" >&2; exit 2; }
HERE=$(dirname "$0")
ARGS=("$CONFIG" --cfg-options model.backbone.init_cfg.checkpoint="$CHECKPOINT" "$@")
# one process checks the stack and the data first: one line instead of a traceback from every rank
"${PYTHON:-python}" "$HERE/../codebase_tool.py" mmseg train --check "${ARGS[@]}"
exec bash "$HERE/../../dist_launch.sh" "$GPUS" "$HERE/../codebase_tool.py" mmseg train "${ARGS[@]}" --launcher pytorch

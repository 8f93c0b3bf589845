#!/usr/bin/env bash
# Fine-tune an MST checkpoint with a downstream codebase's own tools/train.py (shipped in its wheel under
# .mim/tools); CODEBASE=mmdet or mmseg. Called by mmdetection/dist_train.sh and mmsegmentation/dist_train.sh.
#   CODEBASE=mmdet bash tools/benchmarks/dist_finetune.sh <config> <mst checkpoint> <gpus> [train.py options]
# The checkpoint may be a raw MST pretraining checkpoint (configs read `teacher.module.backbone.*`);
# for a converted one (tools/model_converters/mst_to_backbone.py) add
#   --cfg-options model.backbone.init_cfg.prefix=backbone.
set -e
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3 || { echo "usage: $0 <config> <checkpoint> <gpus> [options]" >&2; exit 2; }
PORT=${PORT:-29500}
PYTHON=${PYTHON:-python}
CODEBASE=${CODEBASE:-mmdet}
TRAIN=$("$PYTHON" -c "import os, $CODEBASE; print(os.path.join(os.path.dirname($CODEBASE.__file__), '.mim', 'tools', 'train.py'))")

PYTHONPATH="$(dirname "$0")/../..":${PYTHONPATH:-} \
"$PYTHON" -m torch.distributed.run --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$TRAIN" "$CONFIG" --launcher pytorch \
    --cfg-options model.backbone.init_cfg.checkpoint="$CHECKPOINT" "$@"

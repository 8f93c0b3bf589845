#!/usr/bin/env bash
# Fine-tune an MST checkpoint in mmdet:
#   bash tools/benchmarks/mmdetection/dist_train.sh <config> <mst checkpoint> <gpus> [train.py options]
# A converted checkpoint (tools/model_converters/mst_to_backbone.py) needs
#   --cfg-options model.backbone.init_cfg.prefix=backbone.
CODEBASE=mmdet exec bash "$(dirname "$0")/../dist_finetune.sh" "$@"

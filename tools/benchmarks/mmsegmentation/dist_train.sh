#!/usr/bin/env bash
# Fine-tune an MST checkpoint in mmseg:
#   bash tools/benchmarks/mmsegmentation/dist_train.sh <config> <mst checkpoint> <gpus> [train.py options]
# A converted checkpoint (tools/model_converters/mst_to_backbone.py) needs
#   --cfg-options model.backbone.init_cfg.prefix=backbone.
CODEBASE=mmseg exec bash "$(dirname "$0")/../dist_finetune.sh" "$@"

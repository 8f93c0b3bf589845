#!/usr/bin/env bash
# bash tools/dist_train.sh <config> <gpus> [train.py options]   (multi-node knobs: see dist_launch.sh)
set -e
CONFIG=$1
GPUS=$2
shift 2 || { echo "usage: $0 <config> <gpus> [options]" >&2; exit 2; }
exec bash "$(dirname "$0")/dist_launch.sh" "$GPUS" "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "$@"

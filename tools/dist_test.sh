#!/usr/bin/env bash
# bash tools/dist_test.sh <config> <checkpoint> <gpus> [test.py options]   (multi-node knobs: see dist_launch.sh)
set -e
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3 || { echo "usage: $0 <config> <checkpoint> <gpus> [options]" >&2; exit 2; }
exec bash "$(dirname "$0")/dist_launch.sh" "$GPUS" "$(dirname "$0")/test.py" "$CONFIG" "$CHECKPOINT" \
    --launcher pytorch "$@"

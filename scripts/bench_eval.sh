#!/usr/bin/env bash
# COCO evaluation benchmark against pycocotools (see scripts/bench_eval.py). Usage:
#   scripts/bench_eval.sh [--images N]
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
help_first "$MRCNN_ROOT/scripts/bench_eval.py" "$@"
setup
build
exec "$MRCNN_VENV/bin/python" "$MRCNN_ROOT/scripts/bench_eval.py" "$@"

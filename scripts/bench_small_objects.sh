#!/usr/bin/env bash
# Small-object figures (issue #19): default vs fitted anchors, whole-image vs tiled inference, and
# Penn-Fudan plain vs tiled (see scripts/bench_small_objects.py). Usage:
#   scripts/bench_small_objects.sh [--steps N] [--scenes N] [--tile S] [--pennfudan-minutes M] [--workdir DIR]
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
help_first "$MRCNN_ROOT/scripts/bench_small_objects.py" "$@"
setup
build
exec "$MRCNN_VENV/bin/python" "$MRCNN_ROOT/scripts/bench_small_objects.py" "$@"

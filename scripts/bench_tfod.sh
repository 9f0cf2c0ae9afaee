#!/usr/bin/env bash
# CPU inference of the TF OD API's Mask R-CNN Inception-ResNet-v2 against mrcnn-infer on the same
# checkpoint (issue #22; the reference venv in .tfod/, see scripts/bench_tfod.py). Usage:
#   scripts/bench_tfod.sh [--size 640] [--runs N] [--photos N] [--threads T] [--ckpt PREFIX]
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
help_first "$MRCNN_ROOT/scripts/bench_tfod.py" "$@"
setup
build
exec "$MRCNN_VENV/bin/python" "$MRCNN_ROOT/scripts/bench_tfod.py" "$@"

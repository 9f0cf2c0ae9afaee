#!/usr/bin/env bash
# Negatives figure (issue #20): the shapes set trained with and without images that hold only
# distractors; false positives per held-out empty image and val AP (see scripts/bench_negatives.py).
# Usage: scripts/bench_negatives.sh [--steps N] [--train-images N] [--test-negatives N] [--workdir DIR]
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
help_first "$MRCNN_ROOT/scripts/bench_negatives.py" "$@"
setup
build
exec "$MRCNN_VENV/bin/python" "$MRCNN_ROOT/scripts/bench_negatives.py" "$@"

#!/usr/bin/env bash
# CPU training benchmark against a torchvision training loop (see scripts/bench_train.py). Usage:
#   scripts/bench_train.sh [--steps N] [--batch B] [--threads T] [--preset NAME]
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
help_first "$MRCNN_ROOT/scripts/bench_train.py" "$@"
setup
build
exec "$MRCNN_VENV/bin/python" "$MRCNN_ROOT/scripts/bench_train.py" "$@"

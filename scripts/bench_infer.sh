#!/usr/bin/env bash
# CPU inference benchmark against torchvision (see scripts/bench_infer.py). Usage:
#   scripts/bench_infer.sh [--runs N] [--threads T]
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
help_first "$MRCNN_ROOT/scripts/bench_infer.py" "$@"
setup
build
exec "$MRCNN_VENV/bin/python" "$MRCNN_ROOT/scripts/bench_infer.py" "$@"

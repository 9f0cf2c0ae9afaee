#!/usr/bin/env bash
# The model's 3x3 convolutions as oneDNN, NNPACK and our Winograd F(4x4, 3x3) (the model's path):
# best-of-5 milliseconds and errors against float64 (tests/tools/conv3x3_bench.cpp). Usage:
#   scripts/bench_conv3x3.sh [threads]      e.g. scripts/bench_conv3x3.sh 2
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
case "${1:-}" in -h|--help) sed -n 2,4p "${BASH_SOURCE[0]}"; exit 0 ;; esac
setup
build
exec "$MRCNN_BUILD_DIR/tests/conv3x3_bench" "${1:-2}"

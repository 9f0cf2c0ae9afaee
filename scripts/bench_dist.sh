#!/usr/bin/env bash
# Data-parallel scaling of mrcnn-train from 1 to N processes (Gloo on CPU, NCCL with --device
# cuda), with the communication time per step (see scripts/bench_dist.py). Usage:
#   scripts/bench_dist.sh [--processes N] [--steps S] [--batch B] [--threads T] [--device cpu|cuda]
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
help_first "$MRCNN_ROOT/scripts/bench_dist.py" "$@"
setup
build
exec "$MRCNN_VENV/bin/python" "$MRCNN_ROOT/scripts/bench_dist.py" "$@"

#!/usr/bin/env bash
# The GPU benchmarks against torchvision on this machine's GPU (issue #8's figures): inference at
# 800x1333 at batch 1 and 8 in fp32 and bf16 (scripts/bench_infer.py), then training at batch 8
# with bf16 AMP and in float32, each side's default layout, NCHW and NHWC
# (scripts/bench_gpu_train.py); each prints its table with the ratio. Sets up and builds like the
# other scripts (a CUDA build when nvcc is present). Usage:
#   scripts/bench_gpu.sh [--runs N] [--train-steps S] [--profile DIR]
# --profile DIR: then a short training run of each side under the PyTorch profiler, Chrome traces in
# DIR and their summary (scripts/trace_summary.py).
# On a lent machine without apt or OpenCV use scripts/gpu-check.sh, which runs the same benchmarks.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
runs=10 train_steps=30 profile_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --train-steps) train_steps="$2"; shift 2 ;;
    --profile) profile_dir="$2"; shift 2 ;;
    *) die "bench_gpu: unknown option '$1' (expected --runs N, --train-steps S, --profile DIR)" ;;
  esac
done
command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 || die "bench_gpu: no CUDA GPU visible here"
setup
build
for batch in 1 8; do
  for precision in fp32 bf16; do
    say "inference, batch $batch, $precision"
    "$MRCNN_VENV/bin/python" "$MRCNN_ROOT/scripts/bench_infer.py" --device cuda --batch "$batch" --runs "$runs" \
      --precision "$precision"
  done
done
for amp in bf16 off; do
  for layout in auto off on; do
    say "training, batch 8, amp $amp, channels-last $layout"
    "$MRCNN_VENV/bin/python" "$MRCNN_ROOT/scripts/bench_gpu_train.py" --batch 8 --amp "$amp" --steps "$train_steps" \
      --channels-last "$layout"
  done
done
if [ -n "$profile_dir" ]; then
  say "training under the PyTorch profiler, both sides: traces in $profile_dir"
  "$MRCNN_VENV/bin/python" "$MRCNN_ROOT/scripts/bench_gpu_train.py" --batch 8 --amp bf16 --steps 12 --warmup 6 \
    --trace "$profile_dir"
fi

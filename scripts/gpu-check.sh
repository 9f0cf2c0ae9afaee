#!/usr/bin/env bash
# The GPU checks in one call, for a bare GPU machine (the `device` tool's, or any workstation):
# build with CUDA against that machine's torch and the portable kit, run the GPU tests (every op
# and the whole model on CUDA against the CPU path), then the GPU benchmarks; a report goes to
# $OUT (default gpu-check-out/). It needs no apt, no internet and no OpenCV on the machine:
#
#   scripts/portable-kit.sh                  # here, once: kit/ (static OpenCV + headers, ~30 MB)
#   device run: bash scripts/gpu-check.sh    # there, carrying kit/ (see docs/SETUP.md)
#
# Options: --part build|test|bench|all (default all; parts run in that order and need the earlier
# ones' build folder), --torch-python PATH (default: /opt/torch/.venv/bin/python if present, else
# .venv/bin/python). Exit 0 when every check passed, 3 when no GPU is visible, else 1.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/gpu-check-out}"
PART=all
PY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --part) PART="$2"; shift 2 ;;
    --torch-python) PY="$2"; shift 2 ;;
    *) echo "gpu-check: error: unknown option '$1' (expected --part build|test|bench|all, --torch-python PATH)" >&2; exit 2 ;;
  esac
done
case "$PART" in build|test|bench|all) ;; *) echo "gpu-check: error: --part '$PART': expected build, test, bench or all" >&2; exit 2 ;; esac
if [ -z "$PY" ]; then
  if [ -x /opt/torch/.venv/bin/python ]; then PY=/opt/torch/.venv/bin/python; else PY="$ROOT/.venv/bin/python"; fi
fi
BUILD="$ROOT/build-gpu"
mkdir -p "$OUT"
REPORT="$OUT/report.md"
say() { printf '==> %s\n' "$*" | tee -a "$REPORT" >&2; }
failed=0

{
  echo "# gpu-check $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
} >"$REPORT"

# 1. Is there a GPU at all?
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  say "no CUDA GPU visible (nvidia-smi missing or lists none): nothing to check on this machine"
  exit 3
fi
nvidia-smi -L | tee -a "$REPORT" >&2
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'devices', torch.cuda.device_count())" \
  2>&1 | tee -a "$REPORT" >&2 || { say "$PY cannot import torch"; exit 1; }

# 2. Build: CUDA on, the machine's torch, the kit when the system has no OpenCV.
if [ "$PART" = build ] || [ "$PART" = all ]; then
  kit_flag=()
  if [ -f "$ROOT/kit/lib/libopencv_core.a" ]; then
    kit_flag=(-DMRCNN_KIT="$ROOT/kit")
  elif ! ls /usr/include/opencv4/opencv2/core.hpp >/dev/null 2>&1; then
    say "no OpenCV here and no kit/: make it with scripts/portable-kit.sh and carry kit/"
    exit 1
  fi
  say "build: cmake (MRCNN_CUDA=ON, ${kit_flag[*]:-system libraries}) + ninja"
  start=$SECONDS
  if cmake -S "$ROOT" -B "$BUILD" -G Ninja -DMRCNN_CUDA=ON -DMRCNN_PYTHON="$PY" "${kit_flag[@]}" \
       >"$OUT/configure.log" 2>&1 &&
     ninja -C "$BUILD" >"$OUT/build.log" 2>&1; then
    say "build: ok in $((SECONDS - start)) s"
  else
    say "build: FAILED after $((SECONDS - start)) s (tails below; full logs in \$OUT)"
    tail -n 30 "$OUT/configure.log" "$OUT/build.log" | tee -a "$REPORT" >&2
    exit 1
  fi
fi

# 3. GPU tests: ops and the whole model on CUDA against the CPU path.
if [ "$PART" = test ] || [ "$PART" = all ]; then
  say "tests: build-gpu/tests/mrcnn_gpu_tests"
  if (cd "$ROOT" && "$BUILD/tests/mrcnn_gpu_tests" --durations yes) >"$OUT/gpu-tests.log" 2>&1; then
    say "tests: passed ($(grep -E 'All tests passed|test cases' "$OUT/gpu-tests.log" | tail -n 1))"
  else
    failed=1
    say "tests: FAILED"
    tail -n 40 "$OUT/gpu-tests.log" | tee -a "$REPORT" >&2
  fi
fi

# 4. Benchmarks on this GPU.
if [ "$PART" = bench ] || [ "$PART" = all ]; then
  for batch in 1 8; do
    say "bench: inference against torchvision, 800x1333, batch $batch (scripts/bench_infer.py --device cuda)"
    if MRCNN_BIN_DIR="$BUILD/tools" "$PY" "$ROOT/scripts/bench_infer.py" --device cuda --batch "$batch" --runs 10 \
         >"$OUT/bench-infer-$batch.log" 2>&1; then
      tail -n 4 "$OUT/bench-infer-$batch.log" | tee -a "$REPORT" >&2
    else
      failed=1
      say "bench_infer batch $batch: FAILED"
      tail -n 30 "$OUT/bench-infer-$batch.log" | tee -a "$REPORT" >&2
    fi
  done
  say "bench: data-parallel training with NCCL on one GPU (scripts/bench_dist.py --device cuda --processes 1)"
  if MRCNN_BIN_DIR="$BUILD/tools" "$PY" "$ROOT/scripts/bench_dist.py" --device cuda --processes 1 --steps 40 \
       --image-size 256 >"$OUT/bench-dist.log" 2>&1; then
    grep -E '^#|^\|' "$OUT/bench-dist.log" | tee -a "$REPORT" >&2
  else
    failed=1
    say "bench_dist: FAILED"
    tail -n 30 "$OUT/bench-dist.log" | tee -a "$REPORT" >&2
  fi
fi

say "report: $REPORT"
exit $failed

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
# .venv/bin/python), --prebuilt DIR: skip the build and use a bundle made elsewhere against the same
# torch version (scripts/bundle.sh BUILD DIR --with-tests; saves the GPU machine's build minutes).
# --bench LIST: which benchmarks (default dist,infer,train: NCCL data-parallel, inference at batch 1
# and 8 in fp32 and bf16, training at batch 8 with bf16 AMP and in float32, NCHW and NHWC; also profile:
# PyTorch profiler traces of a few training steps of each side, summarised by scripts/trace_summary.py),
# --quick: fewer runs and steps.
# Exit 0 when every check passed, 3 when no GPU is visible, else 1.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/gpu-check-out}"
PART=all
PY=""
PREBUILT=""
BENCHES=dist,infer,train
INFER_BATCHES="${INFER_BATCHES:-1 8}" INFER_RUNS="${INFER_RUNS:-10}" DIST_STEPS="${DIST_STEPS:-40}" TRAIN_STEPS="${TRAIN_STEPS:-30}"
while [ $# -gt 0 ]; do
  case "$1" in
    --part) PART="$2"; shift 2 ;;
    --torch-python) PY="$2"; shift 2 ;;
    --prebuilt) PREBUILT="$(cd "$2" && pwd)" || exit 2; shift 2 ;;
    --bench) BENCHES="$2"; shift 2 ;;
    --quick) INFER_BATCHES=1 INFER_RUNS=5 DIST_STEPS=20 TRAIN_STEPS=15; shift ;;
    *) echo "gpu-check: error: unknown option '$1' (expected --part build|test|bench|all, --torch-python PATH, --prebuilt DIR, --bench dist,infer,train, --quick)" >&2; exit 2 ;;
  esac
done
case "$PART" in build|test|bench|all) ;; *) echo "gpu-check: error: --part '$PART': expected build, test, bench or all" >&2; exit 2 ;; esac
if [ -z "$PY" ]; then
  if [ -x /opt/torch/.venv/bin/python ]; then PY=/opt/torch/.venv/bin/python; else PY="$ROOT/.venv/bin/python"; fi
fi
BUILD="$ROOT/build-gpu"
BIN="$BUILD/tools"
GPU_TESTS="$BUILD/tests/mrcnn_gpu_tests"
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

# 2. Build: CUDA on, the machine's torch, the kit when the system has no OpenCV; or a bundle.
if [ -n "$PREBUILT" ]; then
  [ -x "$PREBUILT/tests/mrcnn_gpu_tests" ] || { say "$PREBUILT: no tests/mrcnn_gpu_tests (make it with scripts/bundle.sh BUILD DIR --with-tests)"; exit 1; }
  # shellcheck source=/dev/null
  source "$PREBUILT/env.sh" "$PY" || exit 1
  BIN="$PREBUILT/bin"
  GPU_TESTS="$PREBUILT/tests/mrcnn_gpu_tests"
  say "build: prebuilt bundle $PREBUILT ($(head -n 1 "$PREBUILT/BUNDLE.txt"))"
  missing="$(ldd "$GPU_TESTS" "$BIN/mrcnn-train" | grep 'not found' | sort -u)"
  if [ -n "$missing" ]; then
    say "build: the bundle misses libraries here: $missing"
    exit 1
  fi
elif [ "$PART" = build ] || [ "$PART" = all ]; then
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

# 3. GPU tests: ops and the whole model on CUDA against the CPU path (Catch2), then mrcnn-infer on
# CUDA against torchvision on the same GPU, float32 and bf16 (pytest; pycocotools from .whl/ when
# the machine lacks it: see docs/SETUP.md).
if [ "$PART" = test ] || [ "$PART" = all ]; then
  say "tests: $GPU_TESTS"
  if (cd "$ROOT" && "$GPU_TESTS" --durations yes) >"$OUT/gpu-tests.log" 2>&1; then
    say "tests: passed ($(grep -E 'All tests passed|test cases' "$OUT/gpu-tests.log" | tail -n 1))"
  else
    failed=1
    say "tests: FAILED"
    grep -v '^  frame\|^  [a-z/-]*)$' "$OUT/gpu-tests.log" | tail -n 60 | tee -a "$REPORT" >&2
  fi
  if ! "$PY" -c "import pycocotools" 2>/dev/null && ls "$ROOT"/.whl/pycocotools-*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/mrcnn-site \
      "$ROOT"/.whl/*.whl && export PYTHONPATH="/tmp/mrcnn-site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  say "tests: tests/reference/test_gpu_parity.py (mrcnn-infer on CUDA against torchvision, fp32 and bf16)"
  if (cd "$ROOT" && MRCNN_BIN_DIR="$BIN" MRCNN_SOURCE_DIR="$ROOT" timeout 400 "$PY" -m pytest -q -rs -s \
        -p no:cacheprovider -c tests/pytest.ini tests/reference/test_gpu_parity.py) >"$OUT/gpu-parity.log" 2>&1; then
    say "tests: parity passed ($(grep -E 'passed|bf16:|float32:' "$OUT/gpu-parity.log" | tr '\n' ' '))"
  else
    failed=1
    say "tests: parity FAILED"
    grep -v 'Warning\|warnings\|^  ' "$OUT/gpu-parity.log" | tail -n 40 | tee -a "$REPORT" >&2
  fi
fi

# 4. Benchmarks on this GPU, each under its own time limit so that one hang cannot eat the call.
# bench NAME SECONDS COMMAND...: runs it with the bundle's or build's tools, keeps its log in
# $OUT/bench-NAME.log and its table (or its failure's tail) in the report.
bench() {
  local name="$1" limit="$2"
  shift 2
  say "bench $name: $*"
  local start=$SECONDS
  local rc=0
  MRCNN_BIN_DIR="$BIN" PYTHONUNBUFFERED=1 timeout "$limit" "$@" >"$OUT/bench-$name.log" 2>&1 || rc=$?
  if [ "$rc" = 0 ]; then
    grep -E '^#|^\||speed-up|torchvision:|mrcnn:|mrcnn stages|device:|wait for data|^profile|heaviest|^ +[0-9.]+ +[0-9.]+  ' "$OUT/bench-$name.log" | tee -a "$REPORT" >&2
    say "bench $name: $((SECONDS - start)) s"
  else
    failed=1
    say "bench $name: FAILED (exit $rc$([ "$rc" = 124 ] && echo ": over its ${limit} s limit"), $((SECONDS - start)) s)"
    tail -n 30 "$OUT/bench-$name.log" | tee -a "$REPORT" >&2
  fi
}
wants() { [[ ",$BENCHES," == *",$1,"* ]]; }
if [ "$PART" = bench ] || [ "$PART" = all ]; then
  # The training goal first (issue #23): bf16 AMP and float32, each in NCHW and NHWC against
  # torchvision in the same layout; then where the step's time goes (PyTorch profiler traces of
  # both sides), then inference, then NCCL.
  if wants train; then
    for amp in bf16 off; do
      for layout in auto off on; do
        bench "train-$amp-$layout" 300 "$PY" "$ROOT/scripts/bench_gpu_train.py" \
          --batch 8 --amp "$amp" --steps "$TRAIN_STEPS" --channels-last "$layout"
      done
    done
  fi
  if wants profile; then
    bench profile 300 "$PY" "$ROOT/scripts/bench_gpu_train.py" --batch 8 --amp bf16 --steps 12 --warmup 6 \
      --trace "$OUT/profile"
  fi
  precisions=fp32
  "$BIN/mrcnn-infer" --help 2>/dev/null | grep -q -- --precision && precisions="fp32 bf16"
  for batch in $INFER_BATCHES; do
    for precision in $precisions; do
      wants infer && bench "infer-b$batch-$precision" 240 "$PY" "$ROOT/scripts/bench_infer.py" --device cuda \
        --batch "$batch" --runs "$INFER_RUNS" $([ "$precision" = fp32 ] || echo --precision "$precision")
    done
  done
  if wants dist; then
    bench dist 150 "$PY" "$ROOT/scripts/bench_dist.py" --device cuda --processes 1 --steps "$DIST_STEPS" --image-size 256
  fi
fi

say "report: $REPORT"
exit $failed

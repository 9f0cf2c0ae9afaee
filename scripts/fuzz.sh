#!/usr/bin/env bash
# Coverage-guided fuzzing of every reader of untrusted input (tests/fuzz/, libFuzzer with
# AddressSanitizer + UBSan): builds the fuzz targets in build-fuzz/ with clang, then runs each
# target for a fixed time and reports executions, coverage and findings. Exits 1 on any finding.
#   scripts/fuzz.sh [--seconds N] [--keep-going] [TARGET...]    (default: 20 s, every target)
#   scripts/fuzz.sh --seconds 3600 fuzz_coco_gt                 (a longer run of one target)
# A finding (crash, sanitizer report, an exception other than mrcnn::Error, timeout over 10 s,
# RSS over 2 GB) is left in build-fuzz/findings/<target>/; --keep-going runs on after one
# (libFuzzer's fork mode, one child process) to collect more. Each target's corpus grows in
# build-fuzz/corpus/<target>/ from run to run; reproduce with build-fuzz/<target> <file>.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

FUZZ_DIR="$MRCNN_ROOT/tests/fuzz"
FUZZ_BUILD_DIR="${MRCNN_FUZZ_BUILD_DIR:-$MRCNN_ROOT/build-fuzz}"
mapfile -t ALL_TARGETS < <(cd "$FUZZ_DIR" && ls fuzz_*.cpp | sed 's/\.cpp$//')  # one per fuzz_<name>.cpp

seconds=20
keep_going=()
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --keep-going) keep_going=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1); shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    fuzz_*) targets+=("$1"); shift ;;
    *) die "unknown argument '$1' (targets: ${ALL_TARGETS[*]})" ;;
  esac
done
[ "${#targets[@]}" -gt 0 ] || targets=("${ALL_TARGETS[@]}")

# clang 19 (Debian 12 has it; clang 14 cannot compile lambdas that capture structured bindings) and
# its runtime libraries (libFuzzer, the sanitizers): only the fuzz build needs them.
MRCNN_APT_PACKAGES=(clang-19 libclang-rt-19-dev llvm-19)  # llvm-19: llvm-symbolizer, for readable stacks
install_apt_packages
[ -x "$MRCNN_VENV/bin/python" ] || die "$MRCNN_VENV is missing: run scripts/setup.sh first (libtorch, seed tools)"

if [ ! -f "$FUZZ_BUILD_DIR/CMakeCache.txt" ]; then
  say "configure: $FUZZ_BUILD_DIR (clang, ASan + UBSan + libFuzzer)"
  cmake -S "$FUZZ_DIR" -B "$FUZZ_BUILD_DIR" -G Ninja -DCMAKE_CXX_COMPILER=clang++-19 -DMRCNN_PYTHON="$MRCNN_VENV/bin/python" >/dev/null
fi
say "build: ${targets[*]} ($MRCNN_JOBS jobs)"
# MRCNN_FUZZ_BUILD_LOCK=/tmp/mrcnn-build.lock: compile only while holding that lock (a shared machine).
${MRCNN_FUZZ_BUILD_LOCK:+flock "$MRCNN_FUZZ_BUILD_LOCK"} cmake --build "$FUZZ_BUILD_DIR" -j "$MRCNN_JOBS" --target "${targets[@]}"

# Generated seeds (binary formats, cases from the test suite), remade when the script changes.
seeds="$FUZZ_BUILD_DIR/seeds"
if [ ! -f "$seeds/.stamp" ] || ! cmp -s "$FUZZ_DIR/make_seeds.py" "$seeds/.stamp"; then
  rm -rf "$seeds"
  "$MRCNN_VENV/bin/python" "$FUZZ_DIR/make_seeds.py" "$seeds"
  cp "$FUZZ_DIR/make_seeds.py" "$seeds/.stamp"
fi

# Seed folders of a target: the committed corpus, the generated seeds, and the repo's own files.
seed_dirs() {
  local dirs=("$FUZZ_DIR/corpus/$1" "$seeds/$1")
  case "$1" in
    fuzz_config_json) dirs+=("$MRCNN_ROOT/configs") ;;
    fuzz_label_map) dirs+=("$MRCNN_ROOT/configs/label_maps") ;;
  esac
  for d in "${dirs[@]}"; do [ -d "$d" ] && echo "$d"; done
}

# One target for $seconds: prints "target executions coverage features corpus findings".
run_target() {
  local target="$1" corpus="$FUZZ_BUILD_DIR/corpus/$1" findings="$FUZZ_BUILD_DIR/findings/$1"
  local log="$FUZZ_BUILD_DIR/logs/$1.log"
  mkdir -p "$corpus" "$findings" "$(dirname "$log")"
  local before
  before=$(ls "$findings" | wc -l)
  local rc=0
  mapfile -t dirs < <(seed_dirs "$target")
  local symbolizer=/usr/lib/llvm-19/bin/llvm-symbolizer
  ASAN_SYMBOLIZER_PATH="$symbolizer" LSAN_OPTIONS="suppressions=$FUZZ_DIR/lsan.supp:print_suppressions=0" \
    UBSAN_OPTIONS="print_stacktrace=1:external_symbolizer_path=$symbolizer" \
    nice -n 10 "$FUZZ_BUILD_DIR/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$findings/" "${keep_going[@]}" "$corpus" "${dirs[@]}" >"$log" 2>&1 || rc=$?
  local found=$(($(ls "$findings" | wc -l) - before))
  # libFuzzer's last status line: "#N ... cov: C ft: F corp: K/..."
  local status
  status=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  local execs cov ft corp
  execs=$(grep -oP 'stat::number_of_executed_units: \K[0-9]+' "$log" | tail -n 1 || true)
  [ -n "$execs" ] || execs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$status")
  cov=$(grep -oP 'cov: \K[0-9]+' <<<"$status" || echo "?")
  ft=$(grep -oP 'ft: \K[0-9]+' <<<"$status" || echo "?")
  corp=$(grep -oP 'corp: \K[0-9]+' <<<"$status" || echo "?")
  if [ "$rc" -ne 0 ] && [ "$found" -eq 0 ]; then found=1; fi  # a failure that left no input (startup)
  printf '%-22s %12s %8s %8s %8s %9s\n' "$target" "${execs:-0}" "$cov" "$ft" "$corp" "$found"
  if [ "$found" -ne 0 ]; then
    { echo "--- $target: finding (log $log, inputs in $findings/):"
      grep -E 'ERROR: |FINDING|runtime error|SUMMARY|^    #[0-9] ' "$log" | sed -E 's/==[0-9]+==//' | awk '!seen[$0]++' |
        head -n 25; } >&2
    return 1
  fi
}

say "fuzz: ${#targets[@]} targets, $seconds s each"
printf '%-22s %12s %8s %8s %8s %9s\n' target executions coverage features corpus findings
failed=()
for target in "${targets[@]}"; do
  run_target "$target" || failed+=("$target")
done
if [ "${#failed[@]}" -gt 0 ]; then
  die "fuzz findings in: ${failed[*]} (inputs under $FUZZ_BUILD_DIR/findings/; reproduce: $FUZZ_BUILD_DIR/<target> <input>)"
fi
say "fuzz: no findings"

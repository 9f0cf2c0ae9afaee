#!/usr/bin/env bash
# A relocatable bundle of the executables for machines without OpenCV (cluster nodes, the lent GPU
# machine): the tools of a build made against the portable kit (scripts/portable-kit.sh, cmake
# -DMRCNN_KIT=kit), stripped, plus env.sh, which points the dynamic loader at the libtorch of a
# Python's torch on the target machine (the same torch version as the build's). A bundle needs no
# compiler or CMake where it runs:
#
#   scripts/bundle.sh build-kit mrcnn-bundle              # here
#   source mrcnn-bundle/env.sh /opt/torch/.venv/bin/python  # there (default: python3)
#   mrcnn-bundle/bin/mrcnn-infer --help
#
# Options: --with-tests also copies the GPU test binary (tests/mrcnn_gpu_tests) for scripts/gpu-check.sh.
set -euo pipefail

usage="usage: scripts/bundle.sh BUILD_DIR DEST [--with-tests]"
[ $# -ge 2 ] || { echo "bundle: error: $usage" >&2; exit 2; }
BUILD="$1" DEST="$2" WITH_TESTS=0
shift 2
for arg in "$@"; do
  case "$arg" in
    --with-tests) WITH_TESTS=1 ;;
    *) echo "bundle: error: unknown option '$arg' ($usage)" >&2; exit 2 ;;
  esac
done
[ -x "$BUILD/tools/mrcnn-infer" ] || { echo "bundle: error: $BUILD/tools/mrcnn-infer not found: build first" >&2; exit 2; }
if ldd "$BUILD/tools/mrcnn-infer" | grep -q libopencv; then
  echo "bundle: error: $BUILD links OpenCV dynamically; build with -DMRCNN_KIT=kit (scripts/portable-kit.sh)" >&2
  exit 2
fi

# The bundle runs on any of the GPUs cmake/Cuda.cmake names; a CI build (CI=true) compiles one.
archs="$(sed -n 's/^MRCNN_CUDA_ARCHITECTURES:[A-Z]*=//p' "$BUILD/CMakeCache.txt")"
for arch in 80 90 100; do
  if [ -n "$archs" ] && [[ ";$archs;" != *";$arch;"* ]]; then
    echo "bundle: error: $BUILD's CUDA kernels are built for '$archs', a bundle needs 80;90;100" \
         "(configure without CI=true, or with -DMRCNN_CUDA_ARCHITECTURES='80;90;100')" >&2
    exit 2
  fi
done

stage="$(mktemp -d "${DEST%/}.tmp.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin"
for tool in mrcnn-config mrcnn-train mrcnn-infer mrcnn-eval mrcnn-visualize; do
  strip -o "$stage/bin/$tool" "$BUILD/tools/$tool"
done
if [ "$WITH_TESTS" = 1 ]; then
  mkdir -p "$stage/tests"
  strip -o "$stage/tests/mrcnn_gpu_tests" "$BUILD/tests/mrcnn_gpu_tests"
fi
cat >"$stage/env.sh" <<'EOF'
# Source this: `source env.sh [PYTHON]` puts the bundle's bin/ on PATH and the libtorch of
# PYTHON's torch (default python3) on LD_LIBRARY_PATH, with the CUDA runtime wheels beside it.
_mrcnn_bundle="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
_mrcnn_torch_lib="$("${1:-python3}" -c 'import glob, os, torch
d = os.path.dirname(torch.__file__)
print(":".join([os.path.join(d, "lib")] + sorted(glob.glob(os.path.join(d, "..", "nvidia", "*", "lib")))))')" ||
  { echo "env.sh: ${1:-python3} cannot import torch" >&2; return 2; }
export PATH="$_mrcnn_bundle/bin:$PATH"
export LD_LIBRARY_PATH="$_mrcnn_torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
unset _mrcnn_bundle _mrcnn_torch_lib
EOF
{
  echo "mrcnn bundle of $(git -C "$(dirname "$0")/.." rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "built against: $(ldd "$BUILD/tools/mrcnn-infer" | grep -o 'libtorch[a-z_]*\.so' | sort -u | tr '\n' ' ')"
  grep -E '^(CMAKE_BUILD_TYPE|MRCNN_CUDA|Torch_DIR):' "$BUILD/CMakeCache.txt" || true
} >"$stage/BUNDLE.txt"
rm -rf "$DEST"
mv "$stage" "$DEST"
trap - EXIT
echo "bundle: $DEST ($(du -sh "$DEST" | cut -f1)); use it with: source $DEST/env.sh [PYTHON-WITH-TORCH]"

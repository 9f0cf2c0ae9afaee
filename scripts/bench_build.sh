#!/usr/bin/env bash
# Build-time benchmark: a clean configure + build with ccache off, then incremental rebuilds after
# touching one plain source and one libtorch source. Prints one line per figure.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
setup
dir="$(mktemp -d)/build"
export CCACHE_DISABLE=1
seconds() { python3 -c "import time; print(time.time())"; }
t0=$(seconds)
cmake -S "$MRCNN_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$dir" -j "$MRCNN_JOBS" >/dev/null
t1=$(seconds)
echo "clean configure+build (${MRCNN_JOBS} jobs): $(python3 -c "print(round($t1-$t0,1))") s"
for src in lib/config/config.cpp lib/model/roi_heads.cpp; do
  touch "$MRCNN_ROOT/$src"
  t0=$(seconds)
  cmake --build "$dir" -j "$MRCNN_JOBS" >/dev/null
  t1=$(seconds)
  echo "incremental after touching $src: $(python3 -c "print(round($t1-$t0,1))") s"
done
rm -rf "$(dirname "$dir")"

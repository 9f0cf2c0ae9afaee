#!/usr/bin/env bash
# Set-up (only what is missing), then configure and build into build/ (MRCNN_BUILD_DIR).
# Extra CMake arguments: MRCNN_CMAKE_ARGS="-DMRCNN_CUDA=OFF" scripts/build.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
setup
build

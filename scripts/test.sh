#!/usr/bin/env bash
# The test command: set-up (only what is missing), build, then every test (Catch2 units, CLI
# tests of the real executables, reference tests against torchvision and pycocotools).
# Arguments go to ctest, e.g. scripts/test.sh -L cli
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
setup
build
say "test"
cd "$MRCNN_BUILD_DIR"
ctest --output-on-failure -j "$MRCNN_JOBS" "$@"

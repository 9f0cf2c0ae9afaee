#!/usr/bin/env bash
# Installs what the build and the tests need and is missing: Debian packages, then the pinned
# Python environment (.venv: torch for libtorch, torchvision and pycocotools for the tests).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
setup

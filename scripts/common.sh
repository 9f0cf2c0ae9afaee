# Shared by the scripts: paths, logging and the idempotent set-up steps. Source it, don't run it.
set -euo pipefail

MRCNN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MRCNN_VENV="${MRCNN_VENV:-$MRCNN_ROOT/.venv}"
MRCNN_BUILD_DIR="${MRCNN_BUILD_DIR:-$MRCNN_ROOT/build}"
MRCNN_JOBS="${MRCNN_JOBS:-$(nproc)}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Debian packages the build needs; only the missing ones are installed.
MRCNN_APT_PACKAGES=(
  g++ cmake ninja-build pkg-config python3 python3-venv
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  libcli11-dev nlohmann-json3-dev libspdlog-dev catch2 libgloo-dev
)

install_apt_packages() {
  local missing=()
  for pkg in "${MRCNN_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  # python3/python3-venv may come from elsewhere (pyenv): what matters is a python3 that can make a venv.
  if command -v python3 >/dev/null && python3 -c "import venv, ensurepip" 2>/dev/null; then
    local kept=()
    for pkg in "${missing[@]}"; do [[ "$pkg" == python3 || "$pkg" == python3-venv ]] || kept+=("$pkg"); done
    missing=("${kept[@]}")
  fi
  if [ "${#missing[@]}" -eq 0 ]; then
    say "apt packages: all present"
    return
  fi
  say "apt packages: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Stops with one line when the file system holding $1 has less than $2 GiB free.
require_free_space() {
  local free_kb
  free_kb=$(df -Pk "$1" | awk 'NR==2 {print $4}')
  if [ "${free_kb:-0}" -lt $(( $2 * 1024 * 1024 )) ]; then
    echo "error: $1: $(( free_kb / 1024 )) MiB free, $3 needs at least $2 GiB" >&2
    exit 2
  fi
}

install_python_env() {
  local req="$MRCNN_ROOT/scripts/requirements.txt"
  local stamp="$MRCNN_VENV/.mrcnn-requirements"
  if [ -x "$MRCNN_VENV/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
    say "python env: $MRCNN_VENV is current"
    return
  fi
  [ -x "$MRCNN_VENV/bin/python" ] || { say "python env: creating $MRCNN_VENV"; python3 -m venv "$MRCNN_VENV"; }
  require_free_space "$MRCNN_VENV" 7 "the Python environment (torch with CUDA is about 5 GB installed)"
  say "python env: installing scripts/requirements.txt (the torch wheel is large; this runs once)"
  # No wheel cache: it would hold a second copy of the ~3 GB of CUDA wheels for no later use.
  "$MRCNN_VENV/bin/python" -m pip install -q --no-cache-dir --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
}

setup() {
  install_apt_packages
  install_python_env
}

build() {
  if [ ! -f "$MRCNN_BUILD_DIR/CMakeCache.txt" ]; then
    say "configure: $MRCNN_BUILD_DIR"
    # CI (CI=true) checks that the CUDA kernels compile: one architecture (Hopper, the lent GPU
    # machines') does, at a third of the three's compile time. A build for GPUs (scripts/bundle.sh)
    # keeps cmake/Cuda.cmake's three.
    local ci_args=()
    [ "${CI:-}" != true ] || ci_args=(-DMRCNN_CUDA_ARCHITECTURES=90 -DTORCH_CUDA_ARCH_LIST=9.0)
    cmake -S "$MRCNN_ROOT" -B "$MRCNN_BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "${ci_args[@]}" ${MRCNN_CMAKE_ARGS:-}
  fi
  say "build: $MRCNN_JOBS jobs"
  cmake --build "$MRCNN_BUILD_DIR" -j "$MRCNN_JOBS"
}

# A wrapper's -h/--help answers at once, before any set-up or build: help_first SCRIPT.py "$@".
help_first() {
  local script="$1" arg
  shift
  for arg in "$@"; do
    case "$arg" in -h|--help) exec python3 "$script" --help ;; esac
  done
}

#!/usr/bin/env bash
# The portable kit: everything mrcnn needs besides libtorch, as static libraries and headers in one
# folder (default kit/), so that the tree builds on a machine with a compiler, CMake and torch but
# no OpenCV, CLI11, spdlog, json, Catch2 or gloo installed — the lent GPU machines, cluster nodes.
#
#   scripts/portable-kit.sh [KIT_DIR]            # build it here (needs the apt packages of setup)
#   cmake -S . -B build -DMRCNN_KIT=kit ...      # build mrcnn against it, anywhere
#
# What goes in: OpenCV core/imgproc/imgcodecs (PNG and JPEG only) built as static libraries from
# Debian's OpenCV source (opencv_4.6.0+dfsg.orig.tar.xz from deb.debian.org, the version Debian 12
# installs), Debian's static libpng/libjpeg/zlib, and the headers of CLI11, nlohmann_json,
# spdlog + fmt (used header-only), Catch2 and gloo. About 30 MB; nothing in it is compiled against
# libtorch, so one kit serves every torch version.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KIT="$(realpath -m "${1:-$MRCNN_ROOT/kit}")"
OPENCV_VERSION=4.6.0
OPENCV_TARBALL="opencv_${OPENCV_VERSION}+dfsg.orig.tar.xz"
OPENCV_URL="${MRCNN_OPENCV_URL:-http://deb.debian.org/debian/pool/main/o/opencv/$OPENCV_TARBALL}"
MULTIARCH="$(gcc -print-multiarch)"

install_apt_packages
mkdir -p "$KIT/cache" "$KIT/lib" "$KIT/include"

# 1. OpenCV, static, three modules, no optional dependency but PNG/JPEG/zlib.
if [ ! -f "$KIT/lib/libopencv_core.a" ]; then
  if [ ! -f "$KIT/cache/$OPENCV_TARBALL" ]; then
    say "kit: downloading $OPENCV_URL"
    curl -fsSL -o "$KIT/cache/$OPENCV_TARBALL.tmp" "$OPENCV_URL" || die "cannot download $OPENCV_URL (set MRCNN_OPENCV_URL to a copy)"
    mv "$KIT/cache/$OPENCV_TARBALL.tmp" "$KIT/cache/$OPENCV_TARBALL"
  fi
  src="$KIT/cache/opencv-$OPENCV_VERSION"
  rm -rf "$src" "$KIT/cache/opencv-build"
  mkdir -p "$src"
  tar -xJf "$KIT/cache/$OPENCV_TARBALL" -C "$src" --strip-components=1
  say "kit: building OpenCV $OPENCV_VERSION core/imgproc/imgcodecs (static; about 15 minutes on 2 cores)"
  cmake -S "$src" -B "$KIT/cache/opencv-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$KIT/cache/opencv-install" -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DBUILD_SHARED_LIBS=OFF -DBUILD_LIST=core,imgproc,imgcodecs \
    -DCPU_BASELINE=SSE3 -DCPU_DISPATCH="SSE4_1;AVX2" \
    -DWITH_PNG=ON -DBUILD_PNG=OFF -DPNG_LIBRARY="/usr/lib/$MULTIARCH/libpng16.a" -DPNG_PNG_INCLUDE_DIR=/usr/include \
    -DWITH_JPEG=ON -DBUILD_JPEG=OFF -DJPEG_LIBRARY="/usr/lib/$MULTIARCH/libjpeg.a" -DJPEG_INCLUDE_DIR=/usr/include \
    -DBUILD_ZLIB=OFF -DZLIB_LIBRARY="/usr/lib/$MULTIARCH/libz.a" -DZLIB_INCLUDE_DIR=/usr/include \
    -DWITH_TIFF=OFF -DWITH_WEBP=OFF -DWITH_OPENJPEG=OFF -DWITH_JASPER=OFF -DWITH_OPENEXR=OFF -DWITH_IMGCODEC_HDR=OFF \
    -DWITH_IMGCODEC_SUNRASTER=OFF -DWITH_IMGCODEC_PXM=OFF -DWITH_IMGCODEC_PFM=OFF -DWITH_GDAL=OFF -DWITH_GDCM=OFF \
    -DWITH_IPP=OFF -DWITH_ITT=OFF -DWITH_TBB=OFF -DWITH_OPENMP=OFF -DWITH_PTHREADS_PF=ON -DWITH_LAPACK=OFF \
    -DWITH_EIGEN=OFF -DWITH_OPENCL=OFF -DWITH_VA=OFF -DWITH_VA_INTEL=OFF -DWITH_CUDA=OFF -DWITH_PROTOBUF=OFF \
    -DWITH_QUIRC=OFF -DWITH_ADE=OFF -DWITH_FFMPEG=OFF -DWITH_GSTREAMER=OFF -DWITH_V4L=OFF -DWITH_GTK=OFF \
    -DWITH_1394=OFF -DWITH_OPENVX=OFF -DWITH_VTK=OFF -DWITH_CAROTENE=OFF -DWITH_KLEIDICV=OFF \
    -DBUILD_TESTS=OFF -DBUILD_PERF_TESTS=OFF -DBUILD_EXAMPLES=OFF -DBUILD_opencv_apps=OFF -DBUILD_DOCS=OFF \
    -DBUILD_JAVA=OFF -DBUILD_opencv_python2=OFF -DBUILD_opencv_python3=OFF -DOPENCV_GENERATE_PKGCONFIG=OFF \
    -DOPENCV_SKIP_PYTHON_LOADER=ON -DINSTALL_C_EXAMPLES=OFF >"$KIT/cache/opencv-configure.log" 2>&1 \
    || die "OpenCV configure failed: see $KIT/cache/opencv-configure.log"
  ninja -C "$KIT/cache/opencv-build" -j "$MRCNN_JOBS" install >"$KIT/cache/opencv-build.log" 2>&1 \
    || die "OpenCV build failed: see $KIT/cache/opencv-build.log"
  rm -rf "$KIT/include/opencv4"
  cp -r "$KIT/cache/opencv-install/include/opencv4" "$KIT/include/"
  for m in core imgproc imgcodecs; do cp "$KIT/cache/opencv-install/lib/libopencv_$m.a" "$KIT/lib/"; done
  rm -rf "$src" "$KIT/cache/opencv-build" "$KIT/cache/opencv-install"
fi

# 2. The image codecs' static libraries, and the header-only libraries, each in its own folder
# (a folder holding fmt must never be on the include path of code that sees libtorch's fmt).
for a in libpng16.a libjpeg.a libz.a; do cp -u "/usr/lib/$MULTIARCH/$a" "$KIT/lib/"; done
copy_headers() {  # copy_headers <kit folder> <dirs under /usr/include>...
  local into="$KIT/include/$1"; shift
  rm -rf "$into"
  mkdir -p "$into"
  for d in "$@"; do
    [ -d "/usr/include/$d" ] || die "/usr/include/$d missing: install the apt packages (scripts/setup.sh)"
    cp -r "/usr/include/$d" "$into/"
  done
}
copy_headers cli11 CLI
copy_headers json nlohmann
copy_headers spdlog spdlog fmt  # used header-only, with fmt header-only too
copy_headers catch2 catch2
copy_headers gloo gloo          # declarations for libtorch's ProcessGroupGloo (Debian's gloo config.h)
rm -rf "$KIT/cache"
echo "$OPENCV_VERSION" >"$KIT/OPENCV_VERSION"
say "kit: $KIT ($(du -sh "$KIT" | cut -f1)); build with: cmake -S . -B build -DMRCNN_KIT=$KIT"

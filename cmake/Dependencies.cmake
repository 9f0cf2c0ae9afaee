# Finds the fixed dependencies: libtorch (the project's .venv unless the user gives their own),
# OpenCV core/imgproc/imgcodecs, CLI11, nlohmann_json, spdlog (Catch2 is found by tests/).

# libtorch: an explicit Torch_DIR / CMAKE_PREFIX_PATH wins; otherwise ask the project's
# virtualenv (scripts/setup.sh installs the pinned torch wheel there).
set(MRCNN_PYTHON "${PROJECT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
    "Python whose torch package provides libtorch when Torch_DIR is not set")
# libtorch's CMake adds -gencode flags to every CUDA compile for TORCH_CUDA_ARCH_LIST, by default
# each generation it knows, some of which CUDA 13's nvcc refuses: name the ones we build for.
if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0;10.0")
endif()
find_package(Torch QUIET)
if(NOT Torch_FOUND)
  if(NOT EXISTS "${MRCNN_PYTHON}")
    message(FATAL_ERROR "libtorch not found: run scripts/setup.sh (installs the pinned torch into .venv), "
                        "or pass -DTorch_DIR=<libtorch>/share/cmake/Torch")
  endif()
  execute_process(
    COMMAND "${MRCNN_PYTHON}" -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
    OUTPUT_VARIABLE _torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _torch_rc ERROR_VARIABLE _torch_err)
  if(NOT _torch_rc EQUAL 0)
    message(FATAL_ERROR "${MRCNN_PYTHON} cannot import torch: ${_torch_err}")
  endif()
  list(APPEND CMAKE_PREFIX_PATH "${_torch_prefix}")
  find_package(Torch REQUIRED)
endif()

# A portable kit (scripts/portable-kit.sh) replaces every system library but libtorch: static
# OpenCV with its PNG/JPEG/zlib, header-only CLI11, nlohmann_json, spdlog (+ fmt), Catch2, gloo.
set(MRCNN_KIT "" CACHE PATH "Portable kit folder from scripts/portable-kit.sh, used instead of the system's libraries")
if(MRCNN_KIT)
  get_filename_component(MRCNN_KIT "${MRCNN_KIT}" ABSOLUTE BASE_DIR "${PROJECT_SOURCE_DIR}")
  if(NOT EXISTS "${MRCNN_KIT}/lib/libopencv_core.a")
    message(FATAL_ERROR "MRCNN_KIT=${MRCNN_KIT}: no lib/libopencv_core.a there; make the kit with scripts/portable-kit.sh")
  endif()
  find_package(Threads REQUIRED)
  file(READ "${MRCNN_KIT}/OPENCV_VERSION" MRCNN_OPENCV_VERSION)
  string(STRIP "${MRCNN_OPENCV_VERSION}" MRCNN_OPENCV_VERSION)
  add_library(mrcnn_opencv INTERFACE)
  target_include_directories(mrcnn_opencv SYSTEM INTERFACE "${MRCNN_KIT}/include/opencv4")
  target_link_libraries(mrcnn_opencv INTERFACE
    "${MRCNN_KIT}/lib/libopencv_imgcodecs.a" "${MRCNN_KIT}/lib/libopencv_imgproc.a" "${MRCNN_KIT}/lib/libopencv_core.a"
    "${MRCNN_KIT}/lib/libpng16.a" "${MRCNN_KIT}/lib/libjpeg.a" "${MRCNN_KIT}/lib/libz.a" Threads::Threads ${CMAKE_DL_LIBS})
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  target_include_directories(CLI11::CLI11 SYSTEM INTERFACE "${MRCNN_KIT}/include/cli11")
  add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
  target_include_directories(nlohmann_json::nlohmann_json SYSTEM INTERFACE "${MRCNN_KIT}/include/json")
  add_library(spdlog::spdlog INTERFACE IMPORTED)
  target_include_directories(spdlog::spdlog SYSTEM INTERFACE "${MRCNN_KIT}/include/spdlog")
  target_compile_definitions(spdlog::spdlog INTERFACE SPDLOG_HEADER_ONLY FMT_HEADER_ONLY)
  set(MRCNN_CATCH2_FROM_KIT ON)
  return()
endif()

# OpenCV: Debian's per-module -dev packages ship no OpenCVConfig.cmake, so fall back to
# finding the three modules we use by hand.
find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs)
if(OpenCV_FOUND)
  set(MRCNN_OPENCV_VERSION "${OpenCV_VERSION}")
  add_library(mrcnn_opencv INTERFACE)
  target_include_directories(mrcnn_opencv SYSTEM INTERFACE ${OpenCV_INCLUDE_DIRS})
  target_link_libraries(mrcnn_opencv INTERFACE ${OpenCV_LIBS})
else()
  find_path(MRCNN_OPENCV_INCLUDE_DIR opencv2/core.hpp PATH_SUFFIXES opencv4)
  set(_cv_libs)
  foreach(_m core imgproc imgcodecs)
    find_library(MRCNN_OPENCV_${_m}_LIBRARY opencv_${_m})
    if(NOT MRCNN_OPENCV_${_m}_LIBRARY)
      message(FATAL_ERROR "OpenCV module ${_m} not found: run scripts/setup.sh (apt: libopencv-${_m}-dev)")
    endif()
    list(APPEND _cv_libs "${MRCNN_OPENCV_${_m}_LIBRARY}")
  endforeach()
  if(NOT MRCNN_OPENCV_INCLUDE_DIR)
    message(FATAL_ERROR "OpenCV headers not found: run scripts/setup.sh")
  endif()
  file(STRINGS "${MRCNN_OPENCV_INCLUDE_DIR}/opencv2/core/version.hpp" _cv_ver REGEX "#define CV_VERSION_(MAJOR|MINOR|REVISION) ")
  string(REGEX REPLACE ".*MAJOR +([0-9]+).*MINOR +([0-9]+).*REVISION +([0-9]+).*" "\\1.\\2.\\3" MRCNN_OPENCV_VERSION "${_cv_ver}")
  add_library(mrcnn_opencv INTERFACE)
  target_include_directories(mrcnn_opencv SYSTEM INTERFACE "${MRCNN_OPENCV_INCLUDE_DIR}")
  target_link_libraries(mrcnn_opencv INTERFACE ${_cv_libs})
endif()

find_package(CLI11 REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(spdlog REQUIRED)

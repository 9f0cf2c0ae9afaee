# Finds the fixed dependencies: libtorch (the project's .venv unless the user gives their own),
# OpenCV core/imgproc/imgcodecs, CLI11, nlohmann_json, spdlog (Catch2 is found by tests/).

# libtorch: an explicit Torch_DIR / CMAKE_PREFIX_PATH wins; otherwise ask the project's
# virtualenv (scripts/setup.sh installs the pinned torch wheel there).
set(MRCNN_PYTHON "${PROJECT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
    "Python whose torch package provides libtorch when Torch_DIR is not set")
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

// Version strings of mrcnn and the libraries it was built against, for --version.
#pragma once

#include <string>

namespace mrcnn {

// "0.1.0"
const char* version();

// One line for --version: "mrcnn-config 0.1.0 (libtorch 2.11.0, OpenCV 4.6.0, CUDA kernels: on)".
std::string version_line(const std::string& tool_name);

}  // namespace mrcnn

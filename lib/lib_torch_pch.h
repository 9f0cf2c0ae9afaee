// Precompiled header of the library's libtorch sources (see lib/CMakeLists.txt).
#pragma once

#include <torch/torch.h>

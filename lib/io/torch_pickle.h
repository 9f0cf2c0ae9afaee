// Reading torch.save files without Python: a small unpickler for the subset of the pickle
// protocol that torch.save writes, over both of its containers (the zip format of torch >= 1.6,
// and the legacy sequential format of older files such as torchvision's published weights).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace mrcnn {

// Every tensor reachable from the saved object, keyed by its dict path ("model.conv1.weight"
// for {"model": {"conv1.weight": t}}), in file order.
std::vector<std::pair<std::string, at::Tensor>> read_torch_save_tensors(const std::string& path);

}  // namespace mrcnn

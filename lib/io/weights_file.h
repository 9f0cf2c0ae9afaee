// Named tensors in weight files: safetensors (own reader and writer, header checked against the
// file before any tensor is read) and torch.save'd state dicts (.pth/.pt, zip format).
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mrcnn {

// In file order.
using StateDict = std::vector<std::pair<std::string, at::Tensor>>;

StateDict read_safetensors(const std::string& path);
// The string metadata of a safetensors file ("__metadata__"), without reading the tensors.
std::map<std::string, std::string> read_safetensors_metadata(const std::string& path);

// Writes contiguous CPU copies of the tensors, with optional string metadata, atomically.
void write_safetensors(const std::string& path, const StateDict& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// A state dict saved by torch.save (a dict of name → tensor, possibly under "model" or "state_dict").
StateDict read_torch_state_dict(const std::string& path);

// Either format, recognised by content. Throws Error naming the file and the problem.
StateDict read_weights_file(const std::string& path);

}  // namespace mrcnn

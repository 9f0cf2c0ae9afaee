#include "core/device.h"

#include <torch/cuda.h>

#include <cctype>

#include "core/error.h"

namespace mrcnn {

std::string DeviceSpec::str() const {
  switch (kind) {
    case Kind::Auto: return "auto";
    case Kind::Cpu: return "cpu";
    case Kind::Cuda: return "cuda:" + std::to_string(index);
  }
  return "?";
}

DeviceSpec parse_device_spec(const std::string& text) {
  const auto bad = [&] {
    return Error("device '" + text + "': expected auto, cpu, cuda or cuda:N (N a GPU ordinal)");
  };
  DeviceSpec spec;
  if (text == "auto") return spec;
  if (text == "cpu") {
    spec.kind = DeviceSpec::Kind::Cpu;
    return spec;
  }
  if (text.rfind("cuda", 0) != 0) throw bad();
  spec.kind = DeviceSpec::Kind::Cuda;
  if (text.size() == 4) return spec;
  if (text[4] != ':' || text.size() == 5 || text.size() > 8) throw bad();
  int index = 0;
  for (size_t i = 5; i < text.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) throw bad();
    index = index * 10 + (text[i] - '0');
  }
  spec.index = index;
  return spec;
}

int cuda_device_count() { return static_cast<int>(torch::cuda::device_count()); }

DeviceSpec resolve_device(const DeviceSpec& spec) {
  const int gpus = cuda_device_count();
  DeviceSpec resolved = spec;
  if (spec.kind == DeviceSpec::Kind::Auto) {
    resolved.kind = gpus > 0 ? DeviceSpec::Kind::Cuda : DeviceSpec::Kind::Cpu;
    resolved.index = 0;
  } else if (spec.kind == DeviceSpec::Kind::Cuda) {
    if (gpus == 0) throw Error("device '" + spec.str() + "': no CUDA GPU is available here (use --device cpu or auto)");
    if (spec.index >= gpus)
      throw Error("device '" + spec.str() + "': only " + std::to_string(gpus) + " CUDA GPU(s) present (ordinals 0.." +
                  std::to_string(gpus - 1) + ")");
  }
  return resolved;
}

}  // namespace mrcnn

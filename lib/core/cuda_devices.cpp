// The parts of device selection that ask libtorch what this machine has (see core/device.h).
#include <torch/cuda.h>

#include "core/device.h"
#include "core/error.h"

namespace mrcnn {

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

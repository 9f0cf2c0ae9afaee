// The parts of device selection that ask libtorch what this machine has (see core/device.h).
#include <torch/cuda.h>
#if MRCNN_WITH_CUDA_KERNELS  // a CUDA build of libtorch: its caching allocator's statistics
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

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

double peak_gpu_memory_mb_of(int device_index) {
#if MRCNN_WITH_CUDA_KERNELS
  if (cuda_device_count() == 0) return 0.0;
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device_index));
  return static_cast<double>(
             stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak) /
         (1024.0 * 1024.0);
#else
  (void)device_index;
  return 0.0;
#endif
}

void reset_peak_gpu_memory(int device_index) {
#if MRCNN_WITH_CUDA_KERNELS
  if (cuda_device_count() > 0)
    c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device_index));
#else
  (void)device_index;
#endif
}

bool cuda_has_native_bf16(int device_index) {
#if MRCNN_WITH_CUDA_KERNELS
  if (device_index < 0 || device_index >= cuda_device_count()) return false;
  return at::cuda::getDeviceProperties(static_cast<c10::DeviceIndex>(device_index))->major >= 8;
#else
  (void)device_index;
  return false;
#endif
}

}  // namespace mrcnn

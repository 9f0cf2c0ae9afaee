// Device selection for every tool: "auto", "cpu", "cuda" or "cuda:N" parsed and checked once.
#pragma once

#include <string>

namespace mrcnn {

struct DeviceSpec {
  enum class Kind { Auto, Cpu, Cuda };
  Kind kind = Kind::Auto;
  int index = 0;  // CUDA device ordinal; meaningful for Kind::Cuda only

  std::string str() const;  // "auto", "cpu", "cuda:0"
};

// Parses "auto" | "cpu" | "cuda" | "cuda:N"; throws Error naming the value otherwise.
DeviceSpec parse_device_spec(const std::string& text);

// Number of CUDA devices libtorch can use here (0 without a GPU or without a CUDA build).
int cuda_device_count();

// Resolves Auto to Cuda when a GPU is present, else Cpu; throws Error when CUDA is asked
// for but absent, or the ordinal is out of range.
DeviceSpec resolve_device(const DeviceSpec& spec);

// Peak memory that libtorch's CUDA caching allocator has handed out on a GPU since the last
// reset, in MiB (what torch.cuda.max_memory_allocated reports); 0 without CUDA.
double peak_gpu_memory_mb_of(int device_index);
void reset_peak_gpu_memory(int device_index);

// Whether a GPU multiplies bf16 natively (compute capability 8.0 or more); false without CUDA.
bool cuda_has_native_bf16(int device_index);

}  // namespace mrcnn

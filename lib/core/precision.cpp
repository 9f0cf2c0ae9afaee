#include "core/precision.h"

#include <algorithm>
#include <cstdlib>

#include "core/device.h"

namespace mrcnn {
namespace {

// ONEDNN_MAX_CPU_ISA values under which oneDNN still has bf16 instructions (its ISA names:
// avx512_core_bf16, avx512_core_fp16, avx10_1_512*, avx512_core_amx*, or no cap at all).
bool onednn_cap_allows_bf16(std::string cap) {
  std::transform(cap.begin(), cap.end(), cap.begin(), [](unsigned char c) { return std::tolower(c); });
  if (cap.empty() || cap == "default" || cap == "all") return true;
  for (const char* isa : {"bf16", "fp16", "amx", "avx10"})
    if (cap.find(isa) != std::string::npos) return true;
  return false;
}

}  // namespace

bool cpu_has_native_bf16(std::string* why) {
  __builtin_cpu_init();
  const bool avx512_bf16 = __builtin_cpu_supports("avx512bf16") != 0;
  const bool amx_bf16 = __builtin_cpu_supports("amx-bf16") != 0;
  const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (!avx512_bf16 && !amx_bf16) {
    *why = "the CPU has neither AVX-512 BF16 nor AMX";
    return false;
  }
  if (cap != nullptr && !onednn_cap_allows_bf16(cap)) {
    *why = std::string("ONEDNN_MAX_CPU_ISA=") + cap + " rules out oneDNN's bf16 kernels";
    return false;
  }
  *why = std::string("the CPU has ") + (amx_bf16 ? "AMX" : "AVX-512 BF16");
  return true;
}

PrecisionChoice resolve_precision(const std::string& precision, int cuda_index) {
  if (precision != "auto") return {precision, ""};
  std::string why;
  if (cuda_index >= 0) {
    const bool native = cuda_has_native_bf16(cuda_index);
    return {native ? "bf16" : "fp32", native ? "a GPU of compute capability 8 or more multiplies bf16 natively"
                                             : "the GPU has no native bf16 (compute capability below 8)"};
  }
  if (!cpu_has_native_bf16(&why)) return {"fp32", why};
  // Measured (docs/BENCHMARKS.md): with AMX, or AVX-512 BF16 on AMD, bf16 is faster than our fp32
  // path; an Intel CPU with AVX-512 BF16 but no AMX ran it 1.6x slower (fp32 has Winograd, bf16 not).
  __builtin_cpu_init();
  const bool amx = __builtin_cpu_supports("amx-bf16") != 0;
  if (!amx && !__builtin_cpu_is("amd"))
    return {"fp32", "the CPU has AVX-512 BF16 but no AMX, where bf16 runs slower than fp32"};
  return {"bf16", amx ? why : "an AMD CPU with AVX-512 BF16"};
}

}  // namespace mrcnn

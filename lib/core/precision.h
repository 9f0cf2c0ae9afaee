// The precision of a forward pass when the configuration says "auto": bf16 autocast where the
// hardware multiplies in bf16 natively and that is faster (a CUDA GPU of compute capability 8 or
// more; a CPU with AMX, or an AMD CPU with AVX-512 BF16, that oneDNN may use), float32 elsewhere.
#pragma once

#include <string>

namespace mrcnn {

struct PrecisionChoice {
  std::string precision;  // fp32, bf16 or fp16
  std::string reason;     // for "auto": why, for the log line; empty otherwise
};

// precision as configured (fp32, bf16, fp16 or auto); auto resolved for a CUDA device (cuda_index
// >= 0) or the CPU (cuda_index < 0).
PrecisionChoice resolve_precision(const std::string& precision, int cuda_index);

// Whether oneDNN may run bf16 natively on this CPU: AVX-512 BF16 or AMX present and not ruled out
// by ONEDNN_MAX_CPU_ISA; why names what decided.
bool cpu_has_native_bf16(std::string* why);

}  // namespace mrcnn

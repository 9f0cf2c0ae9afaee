// infer.precision "auto": bf16 only where this CPU has bf16 units that oneDNN may use, checked
// against /proc/cpuinfo (an independent reading of the CPU's flags); an ONEDNN_MAX_CPU_ISA cap below
// them (AVX2: how a CPU without bf16 units is emulated) makes it fp32; other values pass through.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "core/precision.h"

namespace {

// The flags line of /proc/cpuinfo holds this flag.
// Whether /proc/cpuinfo's vendor_id is AMD's.
bool cpu_vendor_is_amd() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("vendor_id", 0) == 0) return line.find("AuthenticAMD") != std::string::npos;
  return false;
}

bool cpuinfo_has(const std::string& flag) {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string word; words >> word;)
      if (word == flag) return true;
    return false;
  }
  return false;
}

bool cpu_has_bf16_units() { return cpuinfo_has("avx512_bf16") || cpuinfo_has("amx_bf16"); }

// ONEDNN_MAX_CPU_ISA set to value (or unset) while alive; the previous value restored after.
class IsaCap {
 public:
  explicit IsaCap(const char* value) {
    if (const char* old = std::getenv("ONEDNN_MAX_CPU_ISA")) previous_ = old;
    if (value) setenv("ONEDNN_MAX_CPU_ISA", value, 1);
    else unsetenv("ONEDNN_MAX_CPU_ISA");
  }
  ~IsaCap() {
    if (previous_) setenv("ONEDNN_MAX_CPU_ISA", previous_->c_str(), 1);
    else unsetenv("ONEDNN_MAX_CPU_ISA");
  }

 private:
  std::optional<std::string> previous_;
};

}  // namespace

TEST_CASE("precision: explicit values pass through without a reason", "[core][precision]") {
  for (const char* precision : {"fp32", "bf16", "fp16"}) {
    const mrcnn::PrecisionChoice choice = mrcnn::resolve_precision(precision, -1);
    CHECK(choice.precision == precision);
    CHECK(choice.reason.empty());
  }
}

TEST_CASE("precision: auto under ONEDNN_MAX_CPU_ISA=AVX2 is fp32 on every CPU", "[core][precision]") {
  const IsaCap cap("AVX2");
  std::string why;
  CHECK_FALSE(mrcnn::cpu_has_native_bf16(&why));
  const mrcnn::PrecisionChoice choice = mrcnn::resolve_precision("auto", -1);
  CHECK(choice.precision == "fp32");
  CHECK(choice.reason == why);
  if (cpu_has_bf16_units()) CHECK(why == "ONEDNN_MAX_CPU_ISA=AVX2 rules out oneDNN's bf16 kernels");
  else CHECK(why == "the CPU has neither AVX-512 BF16 nor AMX");
}

TEST_CASE("precision: auto without a cap follows the CPU's bf16 units", "[core][precision]") {
  const IsaCap cap(nullptr);
  const mrcnn::PrecisionChoice choice = mrcnn::resolve_precision("auto", -1);
  if (!cpu_has_bf16_units()) {
    CHECK(choice.precision == "fp32");
    WARN("this CPU has neither avx512_bf16 nor amx_bf16 (/proc/cpuinfo): auto's bf16 choice is not checked here");
    return;
  }
  if (cpuinfo_has("amx_bf16")) {
    CHECK(choice.precision == "bf16");
    CHECK(choice.reason == "the CPU has AMX");
  } else if (cpu_vendor_is_amd()) {
    CHECK(choice.precision == "bf16");
    CHECK(choice.reason == "an AMD CPU with AVX-512 BF16");
  } else {  // an Intel CPU with AVX-512 BF16 only: bf16 measured slower than fp32 there
    CHECK(choice.precision == "fp32");
    CHECK(choice.reason == "the CPU has AVX-512 BF16 but no AMX, where bf16 runs slower than fp32");
  }
}

TEST_CASE("precision: caps naming a bf16 ISA leave bf16 on, in any case", "[core][precision]") {
  for (const char* value : {"AVX512_CORE_BF16", "avx512_core_amx", "AVX10_1_512", "ALL", "DEFAULT"}) {
    const IsaCap cap(value);
    std::string why;
    CHECK(mrcnn::cpu_has_native_bf16(&why) == cpu_has_bf16_units());
  }
  for (const char* value : {"AVX512_CORE", "SSE41", "AVX512_CORE_VNNI"}) {
    const IsaCap cap(value);
    std::string why;
    CHECK_FALSE(mrcnn::cpu_has_native_bf16(&why));
  }
}

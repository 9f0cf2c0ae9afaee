#include "core/device.h"

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

}  // namespace mrcnn

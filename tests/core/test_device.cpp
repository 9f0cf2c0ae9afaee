// Device flags: the accepted spellings and the errors for the rest.
#include <catch2/catch.hpp>

#include "core/device.h"
#include "core/error.h"

using mrcnn::DeviceSpec;

TEST_CASE("device specs parse", "[core]") {
  CHECK(mrcnn::parse_device_spec("auto").kind == DeviceSpec::Kind::Auto);
  CHECK(mrcnn::parse_device_spec("cpu").kind == DeviceSpec::Kind::Cpu);
  CHECK(mrcnn::parse_device_spec("cuda").str() == "cuda:0");
  CHECK(mrcnn::parse_device_spec("cuda:3").index == 3);
  for (const char* bad : {"", "gpu", "cuda:", "cuda:x", "cuda1", "CPU", "cuda:-1", "cuda:12345"})
    CHECK_THROWS_AS(mrcnn::parse_device_spec(bad), mrcnn::Error);
}

TEST_CASE("auto resolves to what this machine has; cpu always works", "[core]") {
  const auto resolved = mrcnn::resolve_device(mrcnn::parse_device_spec("auto"));
  if (mrcnn::cuda_device_count() > 0)
    CHECK(resolved.kind == DeviceSpec::Kind::Cuda);
  else
    CHECK(resolved.kind == DeviceSpec::Kind::Cpu);
  CHECK(mrcnn::resolve_device(mrcnn::parse_device_spec("cpu")).kind == DeviceSpec::Kind::Cpu);
}

TEST_CASE("asking for a GPU that is not there is a clear error", "[core]") {
  const int gpus = mrcnn::cuda_device_count();
  CHECK_THROWS_WITH(mrcnn::resolve_device(mrcnn::parse_device_spec("cuda:" + std::to_string(gpus))),
                    Catch::Contains("cuda:" + std::to_string(gpus)));
}

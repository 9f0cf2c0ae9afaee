// Runner of the GPU tests: without a CUDA device it says so and exits 77, which ctest reports as
// skipped (never as passed).
#define CATCH_CONFIG_RUNNER
#include <torch/cuda.h>
#undef CHECK
#include <catch2/catch.hpp>

#include <iostream>

int main(int argc, char** argv) {
  if (!torch::cuda::is_available()) {
    std::cout << "SKIPPED: no CUDA device on this machine; these tests need a GPU machine\n";
    return 77;
  }
  return Catch::Session().run(argc, argv);
}

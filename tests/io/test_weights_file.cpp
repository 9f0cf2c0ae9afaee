// Telling weight-file formats apart by content: a safetensors header length may begin with any
// byte, including the 0x80 of a pickle and the 'P' of a zip, and must still read as safetensors.
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>

#include "core/error.h"
#include "io/weights_file.h"
#include "temp_dir.h"

namespace {

uint64_t header_length(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  uint64_t length = 0;
  in.read(reinterpret_cast<char*>(&length), 8);
  return length;
}

}  // namespace

TEST_CASE("a safetensors file reads whatever byte its header length starts with", "[io]") {
  const std::string path = (mrcnn::testing::fresh_temp_dir("weights_sniff") / "model.safetensors").string();
  const at::Tensor weight = torch::arange(6, torch::kFloat).reshape({2, 3});
  bool saw_pickle_byte = false, saw_zip_byte = false;
  for (int pad = 0; pad < 300; ++pad) {
    mrcnn::write_safetensors(path, {{"w", weight}}, {{"note", std::string(pad, 'x')}});
    const uint64_t low_byte = header_length(path) & 0xff;
    saw_pickle_byte |= low_byte == 0x80;
    saw_zip_byte |= low_byte == 'P';
    const mrcnn::StateDict read = mrcnn::read_weights_file(path);
    REQUIRE(read.size() == 1);
    REQUIRE(torch::equal(read[0].second, weight));
  }
  CHECK(saw_pickle_byte);
  CHECK(saw_zip_byte);
}

TEST_CASE("a file that is neither format is refused as safetensors, naming the file", "[io]") {
  const std::string path = (mrcnn::testing::fresh_temp_dir("weights_junk") / "junk.pth").string();
  std::ofstream(path, std::ios::binary) << '\x80' << '\x07' << "not a pickle protocol";
  REQUIRE_THROWS_WITH(mrcnn::read_weights_file(path), Catch::Contains("junk.pth") && Catch::Contains("safetensors"));
}

// Test helper: reads a TF checkpoint with mrcnn's own reader and writes every tensor, so that the
// CLI tests can compare the values with TensorFlow's bit for bit: OUT/manifest.json lists
// {key, dtype, shape, file} (the tensor's raw little-endian bytes in OUT/<file>) or, for string
// tensors, {key, dtype, shape, strings_hex}. Usage: tf_checkpoint_dump CHECKPOINT OUT
#include <filesystem>
#include <iostream>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "io/tf_checkpoint.h"

using namespace mrcnn;

namespace {

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : bytes) (out += digits[c >> 4]) += digits[c & 15];
  return out;
}

Json dump(const std::string& checkpoint_path, const std::filesystem::path& out) {
  const tf::Checkpoint checkpoint = tf::open_checkpoint(checkpoint_path);
  Json manifest = Json::array();
  for (size_t i = 0; i < checkpoint.entries.size(); ++i) {
    const tf::TensorEntry& entry = checkpoint.entries[i];
    const tf::Tensor tensor = tf::read_tensor(checkpoint, entry);
    Json row = {{"key", entry.key}, {"dtype", tf::dtype_name(entry.dtype)}, {"shape", entry.shape}};
    if (entry.dtype == tf::kString) {
      row["strings_hex"] = Json::array();
      for (const std::string& s : tensor.strings) row["strings_hex"].push_back(hex(s));
    } else {
      row["file"] = std::to_string(i) + ".bin";
      write_file_atomic((out / row["file"].get<std::string>()).string(), tensor.bytes);
    }
    manifest.push_back(std::move(row));
  }
  return manifest;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: tf_checkpoint_dump CHECKPOINT OUT\n";
    return 2;
  }
  try {
    std::filesystem::create_directories(argv[2]);
    write_json_file((std::filesystem::path(argv[2]) / "manifest.json").string(), dump(argv[1], argv[2]));
  } catch (const Error& e) {
    std::cerr << "tf_checkpoint_dump: error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}

// Fuzz target: a TF checkpoint (the .index SSTable of bundle entries, and one data shard), packed
// in one input as [uint32 little-endian index length][index][shard], read as mrcnn-config
// tf-variables reads it: the index, the object graph, every tensor with its CRC. Seeds are small
// checkpoints written by TensorFlow (corpus/fuzz_tf_checkpoint/, made by make_tf_checkpoint_seeds.py).
#include <cstring>
#include <string>

#include "fuzzing.h"
#include "io/tf_checkpoint.h"
#include "io/tf_object_graph.h"

namespace {

// Splits the input into the two files and returns the checkpoint prefix; empty when too short.
std::string write_checkpoint(const uint8_t* data, size_t size) {
  if (size < 4) return "";
  uint32_t index_size = 0;
  std::memcpy(&index_size, data, 4);
  index_size = static_cast<uint32_t>(std::min<size_t>(index_size, size - 4));
  const std::string index = mrcnn::fuzz::scratch_file(data + 4, index_size, ".index");
  mrcnn::fuzz::scratch_file(data + 4 + index_size, size - 4 - index_size, ".data-00000-of-00001");
  return index.substr(0, index.size() - 6);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string prefix = write_checkpoint(data, size);
  if (prefix.empty()) return 0;
  mrcnn::fuzz::expect_clean_errors([&] {
    const mrcnn::tf::Checkpoint checkpoint = mrcnn::tf::open_checkpoint(prefix);
    mrcnn::fuzz::expect_clean_errors([&] { mrcnn::tf::describe_checkpoint(checkpoint); });
    // Each tensor on its own: one bad entry should not hide the code paths of the others.
    for (const auto& entry : checkpoint.entries)
      mrcnn::fuzz::expect_clean_errors([&] { mrcnn::tf::read_tensor(checkpoint, entry); });
  });
  return 0;
}

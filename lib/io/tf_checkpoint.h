// TensorFlow checkpoints read without TensorFlow: the tensor-bundle format (a .index SSTable of
// key -> BundleEntryProto and .data-NNNNN-of-MMMMM shards), as tf.train.Checkpoint, tf.compat.v1
// Saver and SavedModel's variables/ write it. Plain values only (no libtorch): names, dtypes,
// shapes and raw little-endian bytes, every tensor's CRC-32C checked on reading.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mrcnn::tf {

// The DataType enum values of TF's types.proto that a checkpoint can hold.
enum DataType : int {
  kFloat = 1, kDouble = 2, kInt32 = 3, kUint8 = 4, kInt16 = 5, kInt8 = 6, kString = 7, kInt64 = 9, kBool = 10,
  kBfloat16 = 14, kUint16 = 17, kHalf = 19, kUint32 = 22, kUint64 = 23
};

// A slice of a partitioned variable: (start, length) per dimension, length -1 for the whole dimension.
using Slice = std::vector<std::pair<int64_t, int64_t>>;

// One tensor's record in the index (a BundleEntryProto), before its bytes are read.
struct TensorEntry {
  std::string key;
  int dtype = 0;
  std::vector<int64_t> shape;
  int64_t elements = 1;
  int shard = 0;
  uint64_t offset = 0, size = 0;
  uint32_t masked_crc = 0;
  bool partitioned = false;  // saved as slices (TF1 partitioned variables), each its own entry
  std::vector<Slice> slices;  // of a partitioned variable
};

struct Checkpoint {
  std::string prefix;  // PREFIX.index and PREFIX.data-* are its files
  int num_shards = 1;
  std::vector<TensorEntry> entries;  // in key order, the header entry excluded
  // The slices of partitioned variables by variable name, in key order: each is its own entry under
  // an encoded key (it starts with a NUL byte, which no variable name does); not listed, as in
  // tf.train.list_variables, and read through their variable's entry.
  std::map<std::string, std::vector<TensorEntry>> slices_of;
};

// A tensor's values: fixed-width dtypes in `bytes` (little-endian, row-major, as TF stores them),
// string tensors in `strings`.
struct Tensor {
  int dtype = 0;
  std::vector<int64_t> shape;
  std::string bytes;
  std::vector<std::string> strings;
};

// The checkpoint prefix a user's path names: PREFIX itself, PREFIX.index, a data shard, a SavedModel
// folder (its variables/variables), a variables/ folder, or a folder with TF's `checkpoint` file
// (its latest checkpoint). Throws Error when none of these has a .index file, and for a SavedModel
// whose weights are frozen into its graph (no variables/).
std::string resolve_checkpoint_prefix(const std::string& path);

// The files of the checkpoint `path` names (see resolve_checkpoint_prefix): its .index and its data
// shards (PREFIX.data-*); empty when `path` names no checkpoint. What an output must not overwrite.
std::vector<std::string> checkpoint_files(const std::string& path);

// Reads and checks the index of the checkpoint `path` names (see resolve_checkpoint_prefix): the
// header (shard count, little-endian, version) and every entry (known dtype, shape, shard, size
// consistent with the shape). Throws Error naming the file and key for anything malformed.
Checkpoint open_checkpoint(const std::string& path);

// Reads one tensor from its shard: offset and size checked against the shard's length before
// anything is allocated, the CRC-32C checked (TF's rules for string tensors); a partitioned
// variable is put together from its slices. Throws Error naming the shard file and the key.
Tensor read_tensor(const Checkpoint& checkpoint, const TensorEntry& entry);

// TF's name for a dtype ("float32", "bfloat16", "string", ...; "dtype N" when unknown).
std::string dtype_name(int dtype);

// Bytes per element of a fixed-width dtype; 0 for strings and dtypes this reader does not know.
int dtype_width(int dtype);

// The shard file TF names PREFIX.data-%05d-of-%05d.
std::string data_file_name(const std::string& prefix, int shard, int num_shards);

}  // namespace mrcnn::tf

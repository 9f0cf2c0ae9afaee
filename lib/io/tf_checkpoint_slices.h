// TF1 partitioned variables in a TF checkpoint: each slice is its own entry under an encoded key
// (OrderedCode: 0, the escaped variable name, the rank, the extents); these find the slices of a
// variable and put the whole tensor back together, as TF's BundleReader does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/tf_checkpoint.h"

namespace mrcnn::tf {

// The variable name a slice entry's key encodes; Error naming `where` when the key is malformed.
std::string sliced_variable_name(std::string_view key, const std::string& where);

// One TensorSliceProto (extent = 1 { start = 1, length = 2 }): (start, length) per dimension, length
// -1 for a whole dimension. Error naming `where` when malformed.
Slice parse_slice(std::string_view bytes, const std::string& where);

// The whole tensor of a partitioned entry, from its slice entries (each read and CRC-checked; their
// shapes, bounds and total size checked against the variable's). Fixed-width dtypes only.
Tensor assemble_slices(const Checkpoint& checkpoint, const TensorEntry& entry, const std::string& where);

}  // namespace mrcnn::tf

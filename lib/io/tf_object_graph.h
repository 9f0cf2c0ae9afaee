// TF2 object-based checkpoints: the _CHECKPOINTABLE_OBJECT_GRAPH tensor (a serialized
// TrackableObjectGraph) says which object owns each checkpoint key, so keys named by position
// (`model/layer_with_weights-3/kernel/.ATTRIBUTES/VARIABLE_VALUE`) can be shown by what they are.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>

#include "io/tf_checkpoint.h"

namespace mrcnn::tf {

// The key that holds the object graph in a TF2 checkpoint.
inline constexpr const char* kObjectGraphKey = "_CHECKPOINTABLE_OBJECT_GRAPH";

// What the object graph says about one checkpoint key.
struct TrackedValue {
  std::string object_path;  // local names from the root object, '/'-joined (unescaped), + attribute
  std::string full_name;    // the variable's own name (tf.Variable.name without ":0"); may be empty
};

// checkpoint_key -> what the graph says about it, for each of `keys` some node's attribute names (slot
// variables get their original variable's path plus the slot name). Paths follow TF's own choice:
// breadth-first from node 0, children in order, the first path that reaches a node. Throws Error
// naming `where` when the graph is malformed (node ids out of range, paths deeper than 4096 bytes).
std::map<std::string, TrackedValue> resolve_object_graph(std::string_view serialized, const std::set<std::string>& keys,
                                                         const std::string& where);

// What each entry of `checkpoint` is: through its object graph (read, CRC checked) when it has one
// (TF2), else nothing (TF1 keys are variable names already): key -> TrackedValue.
std::map<std::string, TrackedValue> describe_checkpoint(const Checkpoint& checkpoint);

}  // namespace mrcnn::tf

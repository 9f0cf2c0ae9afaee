#include "io/tf_object_graph.h"

#include <deque>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "io/protobuf_wire.h"

namespace mrcnn::tf {
namespace {

constexpr size_t kMaxPathBytes = 4096;
constexpr int kMaxDepth = 1024;  // empty local names would otherwise let a path grow without bytes

struct Attribute {
  std::string name, full_name, checkpoint_key;
};
struct Node {
  std::vector<std::pair<uint64_t, std::string>> children;  // ObjectReference: node_id 1, local_name 2
  std::vector<Attribute> attributes;                       // SerializedTensor: name 1, full_name 2, key 3
  std::vector<std::tuple<uint64_t, std::string, uint64_t>> slots;  // original 1, slot_name 2, slot node 3
};

// The string fields of a small message, by field number (1..3); other fields are skipped.
std::vector<std::string> string_fields(std::string_view bytes, uint64_t* ids, const std::string& where) {
  std::vector<std::string> strings(4);
  proto::Reader reader(bytes);
  while (reader.next()) {
    std::string_view text;
    const uint32_t f = reader.field();
    if (f <= 3 && reader.type() == proto::Varint) reader.read_varint(ids[f]);
    else if (f <= 3 && reader.read_bytes(text)) strings[f] = std::string(text);
    else if (reader.ok()) reader.skip();
  }
  if (!reader.ok()) throw Error(where + ": malformed object graph: " + reader.error());
  return strings;
}

// TrackableObject: children 1, attributes 2, slot_variables 3.
Node parse_node(std::string_view bytes, const std::string& where) {
  Node node;
  proto::Reader reader(bytes);
  while (reader.next()) {
    std::string_view sub;
    if (reader.field() > 3 || !reader.read_bytes(sub)) {
      if (reader.ok()) reader.skip();
      continue;
    }
    uint64_t ids[4] = {0, 0, 0, 0};
    auto s = string_fields(sub, ids, where);
    if (reader.field() == 1) node.children.emplace_back(ids[1], std::move(s[2]));
    else if (reader.field() == 2) node.attributes.push_back({std::move(s[1]), std::move(s[2]), std::move(s[3])});
    else node.slots.emplace_back(ids[1], std::move(s[2]), ids[3]);
  }
  if (!reader.ok()) throw Error(where + ": malformed object graph: " + reader.error());
  return node;
}

std::vector<Node> parse_graph(std::string_view serialized, const std::string& where) {
  std::vector<Node> nodes;
  proto::Reader reader(serialized);
  while (reader.next()) {
    std::string_view bytes;
    if (reader.field() == 1 && reader.read_bytes(bytes)) nodes.push_back(parse_node(bytes, where));
    else if (reader.ok()) reader.skip();
  }
  if (!reader.ok()) throw Error(where + ": malformed object graph: " + reader.error());
  return nodes;
}

// Breadth-first from the root, as TF names objects: each node's parent and the name it is reached by.
struct Tree {
  std::vector<int64_t> parent;
  std::vector<const std::string*> name;
};

Tree breadth_first(const std::vector<Node>& nodes, const std::string& where) {
  Tree tree{std::vector<int64_t>(nodes.size(), -1), std::vector<const std::string*>(nodes.size(), nullptr)};
  if (nodes.empty()) return tree;
  std::vector<bool> seen(nodes.size(), false);
  std::deque<size_t> queue{0};
  seen[0] = true;
  while (!queue.empty()) {
    const size_t at = queue.front();
    queue.pop_front();
    for (const auto& [child, local_name] : nodes[at].children) {
      if (child >= nodes.size()) throw Error(where + ": object graph child id " + std::to_string(child) + " out of range");
      if (seen[child]) continue;
      seen[child] = true;
      tree.parent[child] = static_cast<int64_t>(at);
      tree.name[child] = &local_name;
      queue.push_back(child);
    }
  }
  return tree;
}

std::string path_of(const Tree& tree, uint64_t node, const std::string& where) {
  std::vector<const std::string*> names;
  size_t bytes = 0;
  for (int64_t at = static_cast<int64_t>(node); at > 0 && tree.parent[at] >= 0; at = tree.parent[at]) {
    names.push_back(tree.name[at]);
    bytes += tree.name[at]->size() + 1;
    if (bytes > kMaxPathBytes || names.size() > kMaxDepth) throw Error(where + ": object graph path deeper than allowed");
  }
  if (node != 0 && names.empty()) return "(unreachable object " + std::to_string(node) + ")";
  std::string path;
  for (auto it = names.rbegin(); it != names.rend(); ++it) path += (path.empty() ? "" : "/") + **it;
  return path;
}

}  // namespace

std::map<std::string, TrackedValue> resolve_object_graph(std::string_view serialized, const std::set<std::string>& keys,
                                                         const std::string& where) {
  const std::vector<Node> nodes = parse_graph(serialized, where);
  const Tree tree = breadth_first(nodes, where);
  // Slot variables (an optimizer's m, v, momentum) hang off the optimizer, named after their variable.
  std::map<uint64_t, std::pair<uint64_t, const std::string*>> slots;
  for (const Node& node : nodes)
    for (const auto& [original, slot_name, slot_node] : node.slots) {
      if (original >= nodes.size() || slot_node >= nodes.size()) throw Error(where + ": object graph slot id out of range");
      slots.emplace(slot_node, std::make_pair(original, &slot_name));
    }
  // Only the checkpoint's own keys: paths are built per key, so their memory follows the index.
  std::map<std::string, TrackedValue> resolved;
  for (size_t id = 0; id < nodes.size(); ++id)
    for (const Attribute& a : nodes[id].attributes) {
      if (!keys.count(a.checkpoint_key) || resolved.count(a.checkpoint_key)) continue;
      const auto slot = slots.find(id);
      std::string path = slot == slots.end() ? path_of(tree, id, where)
                                             : path_of(tree, slot->second.first, where) + "/" + *slot->second.second;
      if (a.name != "VARIABLE_VALUE") path += "/" + a.name;
      resolved[a.checkpoint_key] = {std::move(path), a.full_name};
    }
  return resolved;
}

std::map<std::string, TrackedValue> describe_checkpoint(const Checkpoint& checkpoint) {
  std::set<std::string> keys;
  const TensorEntry* graph = nullptr;
  for (const TensorEntry& entry : checkpoint.entries) {
    keys.insert(entry.key);
    if (entry.key == kObjectGraphKey) graph = &entry;
  }
  if (!graph) return {};
  const Tensor tensor = read_tensor(checkpoint, *graph);
  if (tensor.strings.size() != 1) throw Error(checkpoint.prefix + ".index: " + kObjectGraphKey + " is not one string");
  return resolve_object_graph(tensor.strings[0], keys, checkpoint.prefix + ".index: " + kObjectGraphKey);
}

}  // namespace mrcnn::tf

// The TF checkpoint reader on hand-made bytes: SSTable blocks (prefix compression, restart points,
// trailers, footer), bundle entries and string tensors with TF's CRC rules, the TF2 object graph,
// and every way the index or a shard can be malformed. tests/cli/test_tf_checkpoint.py compares
// with checkpoints TensorFlow writes.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "io/protobuf_wire.h"
#include "io/sstable.h"
#include "io/tf_checkpoint.h"
#include "io/tf_object_graph.h"
#include "io/tfrecord.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using namespace mrcnn;
using Entries = std::vector<std::pair<std::string, std::string>>;

namespace {

std::string le32(uint32_t value) { return std::string(reinterpret_cast<const char*>(&value), 4); }

// A block as LevelDB writes it: keys prefix-compressed against the previous one, a restart point
// (full key) every `restart_every` entries, the restart array and its count at the end.
std::string block(const Entries& entries, size_t restart_every = 16) {
  std::string out, restarts, previous;
  uint32_t count = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& [key, value] = entries[i];
    size_t shared = 0;
    if (i % restart_every == 0) {
      restarts += le32(static_cast<uint32_t>(out.size()));
      ++count;
    } else {
      while (shared < key.size() && shared < previous.size() && key[shared] == previous[shared]) ++shared;
    }
    proto::put_varint(out, shared);
    proto::put_varint(out, key.size() - shared);
    proto::put_varint(out, value.size());
    out += key.substr(shared) + value;
    previous = key;
  }
  return out + restarts + le32(count);
}

std::string with_trailer(const std::string& contents, char type = 0) {
  return contents + type + le32(mask_crc32c(crc32c(contents + type)));
}

std::string handle(uint64_t offset, uint64_t size) {
  std::string out;
  proto::put_varint(out, offset);
  proto::put_varint(out, size);
  return out;
}

// A table of one data block (compression type `type`) and its index block.
std::string table(const Entries& entries, char type = 0) {
  const std::string contents = block(entries);
  const std::string data = with_trailer(contents, type);
  const std::string index = with_trailer(block({{entries.back().first, handle(0, contents.size())}}));
  std::string footer = handle(data.size() + index.size(), 0) + handle(data.size(), index.size() - 5);
  footer.resize(40, '\0');
  return data + index + footer + le32(0x8b80fb57u) + le32(0xdb477524u);
}

// A BundleEntryProto; `crc` defaults to the CRC-32C of the data (fixed-width dtypes).
std::string entry_proto(int dtype, const std::vector<int64_t>& shape, uint64_t offset, const std::string& data,
                        std::optional<uint32_t> crc = std::nullopt) {
  std::string dims, out;
  for (const int64_t d : shape) {
    std::string dim;
    proto::put_varint_field(dim, 1, static_cast<uint64_t>(d));
    proto::put_bytes_field(dims, 2, dim);
  }
  proto::put_varint_field(out, 1, dtype);
  proto::put_bytes_field(out, 2, dims);
  proto::put_varint_field(out, 4, offset);
  proto::put_varint_field(out, 5, data.size());
  proto::put_tag(out, 6, proto::Fixed32);
  return out + le32(mask_crc32c(crc.value_or(crc32c(data))));
}

// TF's string tensor bytes: varint lengths, the masked CRC of the lengths (as uint32), the bytes;
// `crc` gets the tensor's CRC, over the lengths as uint32, the raw length checksum and the bytes.
std::string string_tensor(const std::vector<std::string>& strings, uint32_t& crc) {
  std::string lengths, crc_input, body;
  for (const auto& s : strings) {
    proto::put_varint(lengths, s.size());
    crc_input += le32(static_cast<uint32_t>(s.size()));
    body += s;
  }
  const std::string length_checksum = le32(mask_crc32c(crc32c(crc_input)));
  crc = crc32c(crc_input + length_checksum + body);
  return lengths + length_checksum + body;
}

void write(const fs::path& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

std::string header(uint64_t shards) {
  std::string out;
  proto::put_varint_field(out, 1, shards);
  return out;
}

}  // namespace

TEST_CASE("sstable: prefix-compressed keys across restart points read back in order", "[io][tf_checkpoint]") {
  Entries entries;
  for (int i = 0; i < 40; ++i) {
    char key[64];
    std::snprintf(key, sizeof key, "model/layer_with_weights-%02d/kernel", i);
    entries.emplace_back(key, std::string(i % 5, 'v'));
  }
  const auto read = sstable::read_table(table(entries), "t.index");
  REQUIRE(read.size() == entries.size());
  for (size_t i = 0; i < entries.size(); ++i) CHECK(std::make_pair(read[i].key, read[i].value) == entries[i]);
}

TEST_CASE("sstable: corrupt, compressed, truncated and hostile tables are refused", "[io][tf_checkpoint]") {
  const Entries entries = {{"", "h"}, {"a", "1"}, {"b", "2"}};
  std::string flipped = table(entries);
  flipped[3] ^= 0x10;
  CHECK_THROWS_WITH(sstable::read_table(flipped, "t.index"), Catch::Contains("t.index") && Catch::Contains("CRC-32C mismatch"));
  CHECK_THROWS_WITH(sstable::read_table(table(entries, 1), "t.index"), Catch::Contains("Snappy-compressed"));
  CHECK_THROWS_WITH(sstable::read_table(table(entries, 7), "t.index"), Catch::Contains("compression type 7"));
  const std::string whole = table(entries);
  CHECK_THROWS_WITH(sstable::read_table(whole.substr(0, whole.size() - 1), "t.index"), Catch::Contains("table magic"));
  CHECK_THROWS_WITH(sstable::read_table(whole.substr(0, 20), "t.index"), Catch::Contains("shorter than a table footer"));
  CHECK_THROWS_WITH(sstable::read_table(table({{"b", ""}, {"a", ""}}), "t.index"), Catch::Contains("out of order"));
}

TEST_CASE("sstable: prefix compression cannot expand a small file into gigabytes", "[io][tf_checkpoint]") {
  // One 1000-byte key, then entries of 4 bytes each that repeat it: 1001 decoded bytes per entry.
  std::string contents;
  proto::put_varint(contents, 0);
  proto::put_varint(contents, 1000);
  proto::put_varint(contents, 0);
  contents += std::string(1000, 'k');
  for (int i = 0; i < 5000; ++i) contents += std::string("\xe8\x07\x01\x00", 4) + 'x';
  contents += le32(0) + le32(1);
  const std::string data = with_trailer(contents);
  const std::string index = with_trailer(block({{"z", handle(0, contents.size())}}));
  std::string footer = handle(0, 0) + handle(data.size(), index.size() - 5);
  footer.resize(40, '\0');
  const std::string file = data + index + footer + le32(0x8b80fb57u) + le32(0xdb477524u);
  CHECK_THROWS_WITH(sstable::read_table(file, "t.index"), Catch::Contains("expand past"));
}

TEST_CASE("tf checkpoint: entries, fixed-width and string tensors, CRCs", "[io][tf_checkpoint]") {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("tf_checkpoint");
  const std::string floats("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);  // 1.0f, 2.0f
  uint32_t strings_crc = 0;
  const std::string strings = string_tensor({"", "ab", std::string(300, 'x')}, strings_crc);
  write(dir / "ck.index", table({{"", header(1)},
                                 {"v/floats", entry_proto(tf::kFloat, {2}, 0, floats)},
                                 {"v/strings", entry_proto(tf::kString, {3}, floats.size(), strings, strings_crc)}}));
  write(dir / "ck.data-00000-of-00001", floats + strings);
  const tf::Checkpoint checkpoint = tf::open_checkpoint((dir / "ck").string());
  REQUIRE(checkpoint.entries.size() == 2);
  CHECK(tf::read_tensor(checkpoint, checkpoint.entries[0]).bytes == floats);
  CHECK(tf::read_tensor(checkpoint, checkpoint.entries[1]).strings == std::vector<std::string>{"", "ab", std::string(300, 'x')});

  write(dir / "ck.data-00000-of-00001", floats.substr(0, 7) + '\x41' + strings);
  CHECK_THROWS_WITH(tf::read_tensor(checkpoint, checkpoint.entries[0]),
                    Catch::Contains("ck.data-00000-of-00001: tensor 'v/floats'") && Catch::Contains("CRC-32C mismatch"));
  std::string bad_lengths = strings;
  bad_lengths[4] ^= 1;  // the length checksum, after varints 0, 2, 300 (two bytes)
  write(dir / "ck.data-00000-of-00001", floats + bad_lengths);
  CHECK_THROWS_WITH(tf::read_tensor(checkpoint, checkpoint.entries[1]), Catch::Contains("in the string lengths"));
  fs::remove(dir / "ck.data-00000-of-00001");
  CHECK_THROWS_WITH(tf::read_tensor(checkpoint, checkpoint.entries[0]), Catch::Contains("missing"));
}

TEST_CASE("tf checkpoint: malformed headers and entries name the index", "[io][tf_checkpoint]") {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("tf_checkpoint_bad");
  const std::string index = (dir / "ck.index").string();
  write(index, table({{"a", entry_proto(tf::kFloat, {1}, 0, "abcd")}}));
  CHECK_THROWS_WITH(tf::open_checkpoint(index), Catch::Contains("no checkpoint header entry"));
  write(index, table({{"", header(0)}}));
  CHECK_THROWS_WITH(tf::open_checkpoint(index), Catch::Contains("names 0 shards"));
  write(index, table({{"", header(1)}, {"w", entry_proto(tf::kFloat, {3}, 0, "abcd")}}));
  CHECK_THROWS_WITH(tf::open_checkpoint(index), Catch::Contains("tensor 'w'") && Catch::Contains("the shape needs 12"));
  write(index, table({{"", header(1)}, {"w", entry_proto(tf::kFloat, {-1}, 0, "")}}));
  CHECK_THROWS_WITH(tf::open_checkpoint(index), Catch::Contains("negative dimension"));
  write(index, table({{"", header(1)}, {"w", entry_proto(tf::kString, {1000}, 0, "abc")}}));
  CHECK_THROWS_WITH(tf::open_checkpoint(index), Catch::Contains("too small for 1000 strings"));
}

TEST_CASE("tf checkpoint: the prefix a path names", "[io][tf_checkpoint]") {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("tf_checkpoint_paths");
  fs::create_directories(dir / "saved" / "variables");
  write(dir / "saved" / "variables" / "variables.index", "");
  write(dir / "ckpt-3.index", "");
  write(dir / "checkpoint", "model_checkpoint_path: \"ckpt-3\"\nall_model_checkpoint_paths: \"ckpt-3\"\n");
  CHECK(tf::resolve_checkpoint_prefix((dir / "saved").string()) == (dir / "saved" / "variables" / "variables").string());
  CHECK(tf::resolve_checkpoint_prefix(dir.string()) == (dir / "ckpt-3").string());
  CHECK(tf::resolve_checkpoint_prefix((dir / "ckpt-3.index").string()) == (dir / "ckpt-3").string());
  CHECK(tf::resolve_checkpoint_prefix((dir / "ckpt-3.data-00000-of-00001").string()) == (dir / "ckpt-3").string());
  CHECK_THROWS_WITH(tf::resolve_checkpoint_prefix((dir / "ckpt-4").string()), Catch::Contains("no TF checkpoint here"));
}

namespace {

std::string reference(uint64_t node, const std::string& name) {
  std::string out;
  proto::put_varint_field(out, 1, node);
  proto::put_bytes_field(out, 2, name);
  return out;
}

std::string attribute(const std::string& full_name, const std::string& key) {
  std::string out;
  proto::put_bytes_field(out, 1, "VARIABLE_VALUE");
  proto::put_bytes_field(out, 2, full_name);
  proto::put_bytes_field(out, 3, key);
  return out;
}

}  // namespace

TEST_CASE("tf object graph: breadth-first paths, slot variables, unreachable and malformed nodes", "[io][tf_checkpoint]") {
  std::string root, model, optimizer, dense, slot, stray, graph, slot_ref;
  proto::put_bytes_field(root, 1, reference(1, "model"));
  proto::put_bytes_field(root, 1, reference(2, "optimizer"));
  proto::put_bytes_field(model, 1, reference(3, "dense"));
  proto::put_bytes_field(optimizer, 1, reference(3, "tracked_again"));  // later path: ignored, as in TF
  proto::put_varint_field(slot_ref, 1, 3);
  proto::put_bytes_field(slot_ref, 2, "m");
  proto::put_varint_field(slot_ref, 3, 4);
  proto::put_bytes_field(optimizer, 3, slot_ref);
  proto::put_bytes_field(dense, 2, attribute("dense/kernel", "K"));
  proto::put_bytes_field(slot, 2, attribute("Adam/m", "S"));
  proto::put_bytes_field(stray, 2, attribute("", "U"));
  for (const auto* node : {&root, &model, &optimizer, &dense, &slot, &stray}) proto::put_bytes_field(graph, 1, *node);
  const auto resolved = tf::resolve_object_graph(graph, {"K", "S", "U"}, "g");
  CHECK(resolved.at("K").object_path == "model/dense");
  CHECK(resolved.at("K").full_name == "dense/kernel");
  CHECK(resolved.at("S").object_path == "model/dense/m");
  CHECK(resolved.at("U").object_path == "(unreachable object 5)");
  CHECK(tf::resolve_object_graph(graph, {"K"}, "g").size() == 1);  // only the checkpoint's own keys

  std::string bad;
  std::string bad_root;
  proto::put_bytes_field(bad_root, 1, reference(9, "nowhere"));
  proto::put_bytes_field(bad, 1, bad_root);
  CHECK_THROWS_WITH(tf::resolve_object_graph(bad, {}, "g"), Catch::Contains("child id 9 out of range"));
  CHECK_THROWS_WITH(tf::resolve_object_graph("\x0a\x05\x0a", {}, "g"), Catch::Contains("malformed object graph"));
}

TEST_CASE("tf checkpoint: a hostile key stays on one line of the error", "[io][tf_checkpoint]") {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("tf_checkpoint_key");
  write(dir / "ck.index", table({{"", header(1)}, {"bad\nkey", entry_proto(tf::kFloat, {3}, 0, "abcd")}}));
  try {
    tf::open_checkpoint((dir / "ck").string());
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find('\n') == std::string::npos);
    CHECK_THAT(e.what(), Catch::Contains("bad\\nkey"));
  }
}

namespace {

// The index entry of a partitioned float variable of `shape` whose slices are `extents` (start,
// length) along dimension 0.
std::string partitioned_entry(const std::vector<int64_t>& shape, const std::vector<std::pair<int, int>>& extents) {
  std::string out = entry_proto(tf::kFloat, shape, 0, "");
  for (const auto& [start, length] : extents) {
    std::string extent, slice;
    proto::put_varint_field(extent, 1, start);
    proto::put_varint_field(extent, 2, length);
    proto::put_bytes_field(slice, 1, extent);
    proto::put_bytes_field(out, 7, slice);
  }
  return out;
}

}  // namespace

TEST_CASE("tf checkpoint: a partitioned variable is put together from its slices", "[io][tf_checkpoint]") {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("tf_checkpoint_slices");
  const std::string first("\x00\x00\x80\x3f", 4), rest("\x00\x00\x00\x40\x00\x00\x40\x40\x00\x00\x80\x40", 12);
  // Slice keys: 0, the name as an OrderedCode string (ends 0x00 0x01), then the extents (in order).
  const std::string key0("\x00v\x00\x01\x01", 5), key1("\x00v\x00\x01\x02", 5);
  write(dir / "ck.data-00000-of-00001", first + rest);
  const auto index = [&](const std::vector<std::pair<int, int>>& extents, bool both) {
    Entries entries = {{"", header(1)}, {key0, entry_proto(tf::kFloat, {1}, 0, first)}};
    if (both) entries.emplace_back(key1, entry_proto(tf::kFloat, {3}, 4, rest));
    entries.emplace_back("v", partitioned_entry({4}, extents));
    write(dir / "ck.index", table(entries));
    return tf::open_checkpoint((dir / "ck").string());
  };
  tf::Checkpoint checkpoint = index({{1, 3}, {0, 1}}, true);  // listed out of order, as TF may
  REQUIRE(checkpoint.entries.size() == 1);
  CHECK(tf::read_tensor(checkpoint, checkpoint.entries[0]).bytes == first + rest);
  checkpoint = index({{0, 1}, {2, 3}}, true);
  CHECK_THROWS_WITH(tf::read_tensor(checkpoint, checkpoint.entries[0]), Catch::Contains("outside the variable's shape"));
  checkpoint = index({{0, 1}, {1, 3}}, false);
  CHECK_THROWS_WITH(tf::read_tensor(checkpoint, checkpoint.entries[0]), Catch::Contains("2 slices listed, 1 stored"));
  std::string scalar = entry_proto(tf::kFloat, {}, 0, "");
  proto::put_bytes_field(scalar, 7, "");  // a slice of no extents
  write(dir / "ck.index", table({{"", header(1)}, {std::string("\x00v\x00\x01", 4), entry_proto(tf::kFloat, {}, 0, first)},
                                 {"v", scalar}}));
  checkpoint = tf::open_checkpoint((dir / "ck").string());
  CHECK_THROWS_WITH(tf::read_tensor(checkpoint, checkpoint.entries[0]), Catch::Contains("a partitioned scalar"));
  write(dir / "ck.index", table({{"", header(1)}, {std::string("\x00v\x00\x05", 4), entry_proto(tf::kFloat, {1}, 0, first)}}));
  CHECK_THROWS_WITH(tf::open_checkpoint((dir / "ck").string()), Catch::Contains("malformed slice key"));
}

// Binary readers against hostile sizes: protobuf lengths and varints past their buffer, TFRecord
// lengths past the file (refused before allocating), tf.Example sizes whose product overflows,
// and torch.save pickles nested deeper than the walk allows or containing themselves.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "data/tf_example.h"
#include "io/protobuf_wire.h"
#include "io/tfrecord.h"
#include "io/torch_pickle.h"
#include "temp_dir.h"

namespace fs = std::filesystem;

namespace {

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string le64(uint64_t value) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(value >> (8 * i));
  return out;
}

std::string le32(uint32_t value) { return le64(value).substr(0, 4); }

// A legacy torch.save file (magic, protocol, system info as Python's pickle writes them) with
// `object` as its object pickle and no storages.
std::string legacy_torch_save(const std::string& object) {
  const std::string magic("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);
  const std::string protocol("\x80\x02M\xe9\x03.", 6);
  const std::string info("\x80\x02}.", 4);
  const std::string no_keys("\x80\x02].", 4);
  return magic + protocol + info + object + no_keys;
}

}  // namespace

TEST_CASE("protobuf lengths and varints never reach past the buffer", "[io][binary]") {
  const std::string past_end_bytes("\x0a\xff\x01" "abc", 6);  // a 255-byte field in 3 bytes
  mrcnn::proto::Reader past_end(past_end_bytes);
  REQUIRE(past_end.next());
  std::string_view bytes;
  CHECK_FALSE(past_end.read_bytes(bytes));
  CHECK(past_end.error() == "length past the end of the message at byte 3");

  const std::string huge_length_bytes("\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);  // 2^64 - 1
  mrcnn::proto::Reader huge_length(huge_length_bytes);
  REQUIRE(huge_length.next());
  CHECK_FALSE(huge_length.read_bytes(bytes));
  CHECK(huge_length.error() == "length past the end of the message at byte 11");

  const std::string long_varint_bytes(11, '\xff');
  mrcnn::proto::Reader long_varint(long_varint_bytes);
  CHECK_FALSE(long_varint.next());
  CHECK(long_varint.error() == "varint longer than 10 bytes at byte 10");

  const std::string fixed_bytes("\x0d\x01\x02", 3);  // a fixed32 field with 2 of its 4 bytes
  mrcnn::proto::Reader fixed(fixed_bytes);
  REQUIRE(fixed.next());
  uint32_t value = 0;
  CHECK_FALSE(fixed.read_fixed32(value));
  CHECK(fixed.error() == "truncated fixed-width field at byte 1");
}

TEST_CASE("a TFRecord length beyond the file is refused before the record is allocated", "[io][binary]") {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("tfrecord_limits");
  const std::string length = le64(uint64_t(1) << 62);  // 4 EiB: allocating it would throw bad_alloc
  write_bytes(dir / "claims.record", length + le32(mrcnn::masked_crc32c(length)) + std::string(4, '\0'));
  mrcnn::TfRecordReader reader((dir / "claims.record").string());
  CHECK_THROWS_WITH(reader.next(), Catch::EndsWith("claims.record: record at byte 0 is truncated (its length header "
                                                   "claims 4611686018427387904 data bytes, 4 bytes are left in the "
                                                   "file)"));
  fs::remove_all(dir);
}

TEST_CASE("tf.Example sizes whose product overflows are refused", "[data][binary]") {
  mrcnn::data::TfExample example;
  example["image/height"].ints = {(int64_t(1) << 62) + 1};
  example["image/width"].ints = {4};
  example["image/object/mask"].kind = mrcnn::data::TfFeature::Kind::Float;
  example["image/object/mask"].floats = {1, 1, 1, 1};
  example["image/object/bbox/xmin"].floats = example["image/object/bbox/ymin"].floats = {0};
  example["image/object/bbox/xmax"].floats = example["image/object/bbox/ymax"].floats = {1};
  example["image/object/class/label"].ints = {1};
  CHECK_THROWS_WITH(mrcnn::data::sample_from_tf_example(example, "r"),
                    Catch::StartsWith("r: image/height x image/width (4611686018427387905 x 4) is more than"));
}

TEST_CASE("deep and self-containing pickles end in an Error, not a crash", "[io][binary]") {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("pickle_limits");
  const size_t depth = 200000;
  std::string deep_dicts = "\x80\x02}";
  for (size_t i = 0; i < depth; ++i) deep_dicts += std::string("X\x01\x00\x00\x00" "a}", 7);
  deep_dicts += std::string(depth, 's') + ".";
  write_bytes(dir / "dicts.pth", legacy_torch_save(deep_dicts));
  CHECK_THROWS_WITH(mrcnn::read_torch_save_tensors((dir / "dicts.pth").string()),
                    Catch::EndsWith("dicts.pth: dicts nested deeper than 1000 levels"));

  // Lists are not walked: a deep one is read, destroyed without recursion, and holds no tensors.
  const std::string deep_lists = "\x80\x02" + std::string(depth + 1, ']') + std::string(depth, 'a') + ".";
  write_bytes(dir / "lists.pth", legacy_torch_save(deep_lists));
  CHECK(mrcnn::read_torch_save_tensors((dir / "lists.pth").string()).empty());

  write_bytes(dir / "self.pth", legacy_torch_save(std::string("\x80\x02}q\x00X\x01\x00\x00\x00" "ah\x00s.", 15)));
  CHECK_THROWS_WITH(mrcnn::read_torch_save_tensors((dir / "self.pth").string()),
                    Catch::EndsWith("self.pth: dict 'a' contains itself"));
  fs::remove_all(dir);
}

// TF's shard shorthand (train.record@N): the names it stands for, and a cap on N checked before
// any name is built.
#include <catch2/catch.hpp>

#include "core/error.h"
#include "data/datasets.h"

using namespace mrcnn::data;

TEST_CASE("the shard shorthand names N files, at most kMaxRecordShards", "[data]") {
  const auto three = expand_record_paths("dir/train.record@3");
  REQUIRE(three.size() == 3);
  CHECK(three[0] == "dir/train.record-00000-of-00003");
  CHECK(three[2] == "dir/train.record-00002-of-00003");
  CHECK(expand_record_paths("x@0").empty());
  CHECK(expand_record_paths("x@" + std::to_string(kMaxRecordShards)).size() == kMaxRecordShards);
  CHECK_THROWS_WITH(expand_record_paths("x@300000000"),
                    Catch::Equals("x@300000000: too many shards; at most 100000 are supported"));
  CHECK_THROWS_WITH(expand_record_paths("x@" + std::string(5000, '9')),
                    Catch::StartsWith("x@99999999999999999999...: too many shards"));
}

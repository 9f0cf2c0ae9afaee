// Atomic writes: the target is replaced whole, or left as it was with a clear error.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>


#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "temp_dir.h"

namespace fs = std::filesystem;


TEST_CASE("write_file_atomic replaces the file and leaves no temporary behind", "[io]") {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("atomic");
  const std::string path = (dir / "a.json").string();
  mrcnn::write_file_atomic(path, "first");
  mrcnn::write_file_atomic(path, "second, longer");
  CHECK(mrcnn::read_text_file(path) == "second, longer");
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
  fs::remove_all(dir);
}

TEST_CASE("write_file_atomic fails clearly and keeps what exists", "[io]") {
  const fs::path dir = mrcnn::testing::fresh_temp_dir("atomic_fail");
  CHECK_THROWS_WITH(mrcnn::write_file_atomic((dir / "missing" / "a.json").string(), "x"),
                    Catch::Contains("does not exist"));
  CHECK_THROWS_WITH(mrcnn::write_file_atomic(dir.string(), "x"), Catch::Contains("it is a directory"));
  fs::remove_all(dir);
}

TEST_CASE("read_text_file names the missing file", "[io]") {
  CHECK_THROWS_WITH(mrcnn::read_text_file("/nonexistent/x.json"), "/nonexistent/x.json: cannot read: no such file");
}

TEST_CASE("malformed JSON is reported with line and column", "[io]") {
  CHECK_THROWS_WITH(mrcnn::parse_json("{\n  \"a\": 1,\n  \"b\": ]\n}", "c.json"),
                    Catch::StartsWith("c.json:3:8: malformed JSON:"));
  CHECK_THROWS_WITH(mrcnn::parse_json("", "empty.json"), Catch::StartsWith("empty.json:1:1: malformed JSON:"));
  CHECK(mrcnn::parse_json("{\"a\": [1, 2]}", "ok.json")["a"][1] == 2);
}

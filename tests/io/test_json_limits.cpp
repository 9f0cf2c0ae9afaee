// JSON input limits: nesting depth, numbers beyond a double, big objects, and bounded previews of
// values and keys for error messages.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>

#include "config/config.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "temp_dir.h"

using mrcnn::Json;

namespace {

std::string nested(size_t depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("JSON nested up to the limit parses; one level deeper is refused at its bracket", "[io][json]") {
  CHECK(mrcnn::parse_json(nested(mrcnn::kMaxJsonDepth), "ok.json").is_array());
  CHECK_THROWS_WITH(mrcnn::parse_json(nested(mrcnn::kMaxJsonDepth + 1), "deep.json"),
                    "deep.json:1:257: JSON nested deeper than 256 levels");
  std::string objects;
  for (int i = 0; i < 300; ++i) objects += "{\"a\":\n";
  CHECK_THROWS_WITH(mrcnn::parse_json(objects, "o.json"), "o.json:257:1: JSON nested deeper than 256 levels");
  // Brackets inside strings do not count.
  CHECK(mrcnn::parse_json("[\"" + std::string(1000, '[') + "\\\"[\"]", "s.json").size() == 1);
}

TEST_CASE("100,000-deep JSON is refused quickly by both readers", "[io][json]") {
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(mrcnn::parse_json(nested(100000), "c.json"), Catch::Contains("nested deeper than 256"));
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  const auto dir = mrcnn::testing::fresh_temp_dir("json_limits");
  const std::string path = (dir / "gt.json").string();
  mrcnn::write_file_atomic(path, objects);
  CHECK_THROWS_WITH(mrcnn::read_json_data_file(path), path + ":1:1281: JSON nested deeper than 256 levels");
  std::filesystem::remove_all(dir);
  CHECK(seconds_since(start) < 2);
}

TEST_CASE("numbers beyond a double are a parse error at the number", "[io][json]") {
  CHECK_THROWS_WITH(mrcnn::parse_json("{\n  \"lr\": 1e400\n}", "n.json"),
                    "n.json:2:9: number out of range: 1e400 (beyond a 64-bit float)");
  CHECK_THROWS_WITH(mrcnn::parse_json("[-1e999]", "n.json"), Catch::StartsWith("n.json:1:2: number out of range"));
  // Integers beyond 64 bits become doubles, as in every JSON reader.
  CHECK(mrcnn::parse_json("123456789012345678901234567890", "n.json").is_number_float());
}

TEST_CASE("malformed JSON keeps its line and column", "[io][json]") {
  CHECK_THROWS_WITH(mrcnn::parse_json("{\n  \"a\": 1,\n  \"b\": ]\n}", "c.json"),
                    Catch::StartsWith("c.json:3:8: malformed JSON:"));
  CHECK_THROWS_WITH(mrcnn::parse_json("[1] x", "t.json"), Catch::StartsWith("t.json:1:5: malformed JSON:"));
}

TEST_CASE("objects keep key order, and a repeated key replaces the value in place", "[io][json]") {
  const Json doc = mrcnn::parse_json(R"({"b": 1, "a": {"y": [1, {"z": null}], "x": 2}, "b": 3})", "k.json");
  CHECK(doc.dump() == R"({"b":3,"a":{"y":[1,{"z":null}],"x":2}})");
}

TEST_CASE("an object of 300,000 keys parses in linear time", "[io][json]") {
  std::string text = "{";
  for (int i = 0; i < 300000; ++i) text += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  text += "}";
  const auto start = std::chrono::steady_clock::now();
  const Json doc = mrcnn::parse_json(text, "big.json");
  CHECK(doc.size() == 300000);
  CHECK(doc["k299999"] == 299999);
  CHECK(seconds_since(start) < 5);
}

TEST_CASE("previews are short however large or deep the value", "[io][json]") {
  CHECK(mrcnn::json_preview(Json::parse(R"({"a": [1, 2], "b": "x"})")) == R"({"a":[1,2],"b":"x"})");
  const std::string long_preview = mrcnn::json_preview(Json(std::string(2'000'000, 'k')));
  CHECK(long_preview.size() == 60);
  CHECK(long_preview.substr(57) == "...");
  Json deep = Json::array();
  for (int i = 0; i < 200; ++i) deep = Json::array({deep});
  CHECK(mrcnn::json_preview(deep) == "[[[[[[[[[...]]]]]]]]]");
  Json wide = Json::array();
  for (int i = 0; i < 100000; ++i) wide.push_back(i);
  CHECK(mrcnn::json_preview(wide, 20) == "[0,1,2,3,4,5,6,7,...");
  CHECK(mrcnn::json_preview(nlohmann::json::parse("[\"\\u00e9\\u00e9\"]"), 6) == "[\"...");
  CHECK(mrcnn::text_preview("\xc3\xa9\xc3\xa9\xc3\xa9", 5) == "\xc3\xa9...");
  CHECK(mrcnn::text_preview("abcdef", 5) == "ab...");
  CHECK(mrcnn::text_preview("a\nb\x01", 60) == "a\\nb\\x01");
  CHECK(mrcnn::text_preview("\x01\x02\x03", 7) == "\\x01...");
}

TEST_CASE("a megabyte unknown config key is reported quickly and shortly", "[config]") {
  const std::string key(2'000'000, 'q');
  Json doc = Json::object();
  doc["model"][key] = 1;
  const auto start = std::chrono::steady_clock::now();
  const auto problems = mrcnn::config::validate(doc);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].str().size() < 150);
  CHECK(problems[0].str().find("unknown key") != std::string::npos);
  CHECK(seconds_since(start) < 1);
}

TEST_CASE("thousands of unknown config keys list the first twenty", "[config]") {
  Json doc = Json::object();
  for (int i = 0; i < 5000; ++i) doc["model"]["num_clases" + std::to_string(i)] = 1;
  const auto start = std::chrono::steady_clock::now();
  try {
    mrcnn::config::require_valid(doc, "c.json");
    FAIL("no error");
  } catch (const mrcnn::Error& e) {
    const std::string message = e.what();
    CHECK(std::count(message.begin(), message.end(), '\n') == 20);
    CHECK(message.find("c.json: ... and 4980 more problems") != std::string::npos);
  }
  CHECK(seconds_since(start) < 5);
}

TEST_CASE("integers beyond int64 are out of range for integer keys", "[config]") {
  const auto problems = mrcnn::config::validate(Json::parse(R"({"train": {"seed": 18446744073709551615}})"));
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].str() == "train.seed: expected an integer >= 0, found 18446744073709551615");
}

// The JSON tape against nlohmann's parser: the same values for what it takes, and nothing for
// what nlohmann refuses (so that nlohmann's error is the one users see).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "io/json_file.h"
#include "io/json_tape.h"

using mrcnn::JsonTape;
using mrcnn::JsonView;

namespace {

// The view rebuilt as nlohmann::json, walking it through the interface the readers use.
nlohmann::json rebuild(const JsonView& v) {
  if (v.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : v) out.push_back(rebuild(e));
    return out;
  }
  if (!v.is_object()) return v.scalar();
  // Object keys are not iterated by readers; compare through nlohmann's own parse of the members.
  return nullptr;
}

std::optional<JsonTape> tape_of(std::string text) { return JsonTape::parse(text); }

bool nlohmann_accepts(const std::string& text) {
  try {
    mrcnn::parse_json_data(text, "t.json");
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

TEST_CASE("JSON tape: scalars and arrays have nlohmann's values and types", "[io][json]") {
  for (const std::string text :
       {"[0, -0, 1, -1, 18446744073709551615, 18446744073709551616, -9223372036854775808, -9223372036854775809]",
        "[1.0, 1e5, -2.5E-3, 0.1, 123456789012345678901234567890, 4.9e-324, 1.7976931348623157e308]",
        R"(["", "a\"b\\c\/\b\f\n\r\t", "\u00e9\u20ac\ud83d\ude00", "é€😀", "\u0000x"])",
        "[true, false, null, [], [[1], [2, [3]]]]", " \t\r\n[ 1 , 2 ] \n"}) {
    INFO(text);
    const auto tape = tape_of(text);
    REQUIRE(tape);
    const nlohmann::json expected = mrcnn::parse_json_data(text, "t.json");
    CHECK(rebuild(tape->root()) == expected);
    size_t i = 0;
    for (const auto& e : tape->root()) {
      CHECK(e.is_number_integer() == expected[i].is_number_integer());
      CHECK(e.is_number_unsigned() == expected[i].is_number_unsigned());
      CHECK(e.is_number_float() == expected[i].is_number_float());
      ++i;
    }
    CHECK(i == expected.size());
  }
}

TEST_CASE("JSON tape: objects find members, the last of a repeated key, and iterate values", "[io][json]") {
  const auto tape = tape_of(R"({"a": 1, "b": {"c": [1, 2]}, "a": 3, "": "empty"})");
  REQUIRE(tape);
  const JsonView root = tape->root();
  CHECK(root.is_object());
  CHECK(root.size() == 4);
  CHECK(root.contains("a"));
  CHECK_FALSE(root.contains("c"));
  CHECK(root["a"].get<int64_t>() == 3);
  CHECK(root["b"]["c"][1].get<double>() == 2.0);
  CHECK(root[""].get<std::string>() == "empty");
  std::vector<std::string> kinds;
  for (const auto& v : root) kinds.push_back(v.scalar().type_name());
  CHECK(kinds == std::vector<std::string>{"number", "object", "number", "string"});
  CHECK_THROWS_AS(root["a"].get<std::string>(), nlohmann::json::type_error);
}

TEST_CASE("JSON tape: refuses what nlohmann refuses, and leaves rare valid forms to it", "[io][json]") {
  const std::vector<std::string> refused = {
      "", "[", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "[01]", "[1.]", "[.5]", "[1e]", "[+1]", "[-]", "[1e400]",
      "[\"a\nb\"]", "[\"\\x\"]", "[\"\\ud800\"]", "[\"\\udc00x\"]", "[\"\\u12g4\"]", "[\"\xff\"]",
      "[\"\xc0\xaf\"]", "[\"\xed\xa0\x80\"]", "[\"\xf4\x90\x80\x80\"]", "[tru]", "[nul]", "[1] 2", "{1: 2}",
      std::string(257, '[') + std::string(257, ']')};
  for (const auto& text : refused) {
    INFO(text);
    CHECK_FALSE(tape_of(text));
    CHECK_FALSE(nlohmann_accepts(text));
  }
  // Valid, but left to nlohmann: a byte order mark, a number that underflows.
  for (const std::string text : {"\xef\xbb\xbf[1]", "[1e-400]"}) {
    CHECK_FALSE(tape_of(text));
    CHECK(nlohmann_accepts(text));
  }
  CHECK(tape_of(std::string(256, '[') + std::string(256, ']')));
}

TEST_CASE("JSON tape: a refused text is given back unchanged", "[io][json]") {
  std::string text = "[1, 2";
  CHECK_FALSE(JsonTape::parse(text));
  CHECK(text == "[1, 2");
}

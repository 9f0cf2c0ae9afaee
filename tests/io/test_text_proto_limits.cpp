// The protobuf text-format reader on hostile input: the nesting limit, many fields, every string
// escape, text that is not UTF-8, and numbers beyond a double or 64 bits.
#include <catch2/catch.hpp>

#include <string>

#include "core/error.h"
#include "io/text_proto.h"

using mrcnn::Json;
using mrcnn::parse_text_proto;

namespace {

std::string nested(int levels) {
  std::string text;
  for (int i = 0; i < levels; ++i) text += "m {";
  text += "x: 1";
  for (int i = 0; i < levels; ++i) text += "}";
  return text;
}

}  // namespace

TEST_CASE("text proto: nesting up to the limit is read, one level more is refused", "[io][text_proto]") {
  const Json doc = parse_text_proto(nested(mrcnn::kMaxTextProtoDepth), "d");
  const Json* node = &doc;
  for (int i = 0; i < mrcnn::kMaxTextProtoDepth; ++i) node = &(*node)["m"][0];
  CHECK((*node)["x"][0] == 1);
  CHECK_THROWS_WITH(parse_text_proto(nested(mrcnn::kMaxTextProtoDepth + 1), "d"),
                    "d:1:771: m: messages nested deeper than 256 levels");
  CHECK_THROWS_WITH(parse_text_proto(std::string(100000, '<'), "d"), Catch::Contains("expected a field name"));
  std::string lists = "l: [";
  for (int i = 0; i < 100000; ++i) lists += "{ l: [";
  CHECK_THROWS_WITH(parse_text_proto(lists, "d"), Catch::Contains("messages nested deeper than 256 levels"));
}

TEST_CASE("text proto: many fields keep their order and repeats", "[io][text_proto]") {
  std::string text;
  for (int i = 0; i < 200000; ++i) text += "f" + std::to_string(i % 100000) + ": " + std::to_string(i) + "\n";
  const Json doc = parse_text_proto(text, "many");
  REQUIRE(doc.size() == 100000);
  CHECK(doc.begin().key() == "f0");
  auto last = doc.end();
  CHECK((--last).key() == "f99999");
  CHECK(doc["f7"] == Json::array({7, 100007}));
}

TEST_CASE("text proto: escapes are decoded or refused", "[io][text_proto]") {
  const Json doc = parse_text_proto(R"(s: "\a\b\f\v\?\101\x4a\X4B\u00e9\U0001F600\0")", "e");
  CHECK(doc["s"][0] == std::string("\a\b\f\v?AJK\xC3\xA9\xF0\x9F\x98\x80") + std::string(1, '\0'));
  CHECK_THROWS_WITH(parse_text_proto(R"(s: "\q")", "e"), "e:1:6: s: unknown escape \\q in a string");
  CHECK_THROWS_WITH(parse_text_proto(R"(s: "\x")", "e"), Catch::Contains("\\x needs 1 to 2 hex digits"));
  CHECK_THROWS_WITH(parse_text_proto(R"(s: "\u12")", "e"), Catch::Contains("\\u needs 4 hex digits"));
  CHECK_THROWS_WITH(parse_text_proto(R"(s: "\udc00")", "e"), Catch::Contains("is not a Unicode character"));
  CHECK_THROWS_WITH(parse_text_proto(R"(s: "\U00110000")", "e"), Catch::Contains("is not a Unicode character"));
  CHECK_THROWS_WITH(parse_text_proto(R"(s: "\377")", "e"),
                    Catch::Contains("s: the string is not UTF-8 text (byte 0xFF at offset 0 of its value)"));
}

TEST_CASE("text proto: the text must be UTF-8", "[io][text_proto]") {
  CHECK(parse_text_proto("s: \"caf\xC3\xA9\" # \xE2\x82\xAC", "u")["s"][0] == "caf\xC3\xA9");
  CHECK_THROWS_WITH(parse_text_proto("a: 1\nb: \"\xFF\"", "u"), "u:2:5: not UTF-8 text (byte 0xFF)");
  CHECK_THROWS_WITH(parse_text_proto("a: \"\xC0\xAF\"", "u"), Catch::Contains("not UTF-8 text"));  // overlong '/'
  CHECK_THROWS_WITH(parse_text_proto("a: \"\xED\xA0\x80\"", "u"), Catch::Contains("not UTF-8 text"));  // surrogate
  CHECK_THROWS_WITH(parse_text_proto("\x01", "u"), "u:1:1: expected a field name, found byte 0x01");
}

TEST_CASE("text proto: numbers beyond a double are refused, beyond 64 bits kept as doubles", "[io][text_proto]") {
  CHECK_THROWS_WITH(parse_text_proto("n: 1e400", "n"), "n:1:4: n: 1e400 is out of the range of a number (a double)");
  CHECK_THROWS_WITH(parse_text_proto("n: -1e400", "n"), Catch::Contains("-1e400 is out of the range"));
  const Json doc = parse_text_proto("a: 99999999999999999999 b: 18446744073709551615 c: -9223372036854775808 d: 1e-400",
                                    "n");
  CHECK(doc["a"][0].is_number_float());
  CHECK(doc["a"][0].get<double>() == Approx(1e20));
  CHECK(doc["b"][0].get<uint64_t>() == 18446744073709551615ULL);
  CHECK(doc["c"][0].get<int64_t>() == INT64_MIN);
  CHECK(doc["d"][0].get<double>() == 0.0);
}

TEST_CASE("text proto: invalid_utf8_offset", "[io][text_proto]") {
  CHECK(mrcnn::invalid_utf8_offset("plain \xC3\xA9 \xF0\x9F\x98\x80") == std::string::npos);
  CHECK(mrcnn::invalid_utf8_offset("ab\x80") == 2);
  CHECK(mrcnn::invalid_utf8_offset("a\xE2\x82") == 1);         // truncated
  CHECK(mrcnn::invalid_utf8_offset("\xF4\x90\x80\x80") == 0);  // above U+10FFFF
  CHECK(mrcnn::invalid_utf8_offset("\xE0\x80\xAF") == 0);      // overlong
}

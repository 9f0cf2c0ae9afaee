// The protobuf text-format reader: values, nesting, repetition, lists, escapes, comments, and
// line:column errors.
#include <catch2/catch.hpp>

#include "core/error.h"
#include "io/text_proto.h"

using mrcnn::Json;
using mrcnn::parse_text_proto;

TEST_CASE("text proto: scalars, nested messages, repeated fields and lists", "[io][text_proto]") {
  const Json doc = parse_text_proto(R"(
    # a comment
    name: "a" 'b'   # adjacent strings join
    count: 3 ratio: .25 big: 1e3 neg: -2 hex: 0x10 flag: true off: false kind: SOFTMAX
    inner { x: 1 }
    inner: < x: 2 >
    list: [1, 2.5, 3]
    messages: [{ a: 1 }, { a: 2 }]
    empty {}
    [ext.field]: 7;
  )", "t.config");
  CHECK(doc["name"] == Json::array({"ab"}));
  CHECK(doc["count"][0] == 3);
  CHECK(doc["ratio"][0].get<double>() == Approx(0.25));
  CHECK(doc["big"][0].get<double>() == Approx(1000));
  CHECK(doc["neg"][0] == -2);
  CHECK(doc["hex"][0] == 16);
  CHECK(doc["flag"][0] == true);
  CHECK(doc["off"][0] == false);
  CHECK(doc["kind"][0] == "SOFTMAX");
  REQUIRE(doc["inner"].size() == 2);
  CHECK(doc["inner"][1]["x"][0] == 2);
  CHECK(doc["list"].size() == 3);
  CHECK(doc["messages"][1]["a"][0] == 2);
  CHECK(doc["empty"][0].empty());
  CHECK(doc["[ext.field]"][0] == 7);
}

TEST_CASE("text proto: string escapes", "[io][text_proto]") {
  const Json doc = parse_text_proto(R"(s: "tab\there \"q\" back\\slash \x41\101 new\nline" t: 'it\'s')", "e");
  CHECK(doc["s"][0] == "tab\there \"q\" back\\slash AA new\nline");
  CHECK(doc["t"][0] == "it's");
}

TEST_CASE("text proto: malformed text names line and column", "[io][text_proto]") {
  CHECK_THROWS_WITH(parse_text_proto("a {\n  b: 1\n", "p.config"), "p.config:3:1: missing '}'");
  CHECK_THROWS_WITH(parse_text_proto("a {\n  b 1\n}", "p.config"), "p.config:2:5: expected ':' or '{' after b");
  CHECK_THROWS_WITH(parse_text_proto("s: \"open\n", "p.config"), Catch::Contains("p.config:1:") && Catch::Contains("unterminated string"));
  CHECK_THROWS_WITH(parse_text_proto("l: [1, 2", "p.config"), Catch::Contains("expected ',' or ']'"));
  CHECK_THROWS_AS(parse_text_proto("x: @", "p.config"), mrcnn::Error);
}

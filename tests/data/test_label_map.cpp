// Label maps: the TF OD API's rules for ids (int32, >= 0, 0 only for the background), a name per
// class, each id once, in the pbtxt and both JSON forms.
#include <catch2/catch.hpp>

#include <fstream>

#include "core/error.h"
#include "data/label_map.h"
#include "temp_dir.h"

using mrcnn::data::LabelMap;

namespace {

LabelMap read_text(const std::string& text, const std::string& name = "labels.pbtxt") {
  const auto path = mrcnn::testing::fresh_temp_dir("label_map") / name;
  std::ofstream(path) << text;
  return LabelMap::read(path.string());
}

}  // namespace

TEST_CASE("label map pbtxt: names, display names, escapes, the background and skipped fields", "[data][label_map]") {
  const LabelMap map = LabelMap::parse_pbtxt(
      "item { id: 0 name: 'background' }\n"
      "item: { id: 1 name: 'cat' display_name: 'Cat \\u00e9' keypoints { id: 0 label: 'nose' } ancestor_ids: [4, 5] }\n"
      "item { name: \"d\\x6fg\" id: 2; }  # a comment\n",
      "l.pbtxt");
  CHECK(map.names().size() == 2);
  CHECK(map.name(1) == "Cat \xC3\xA9");
  CHECK(map.name(2) == "dog");
  CHECK(map.name(0) == "class 0");
}

TEST_CASE("label map pbtxt: bad items name the line", "[data][label_map]") {
  const auto fails = [](const std::string& text) {
    try {
      LabelMap::parse_pbtxt(text, "l.pbtxt");
    } catch (const mrcnn::Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(fails("item { id: 1 name: 'a' }\nitem { id: 1 name: 'b' }") == "l.pbtxt:2: id 1 appears twice");
  CHECK(fails("item { id: -1 name: 'a' }") ==
        "l.pbtxt:1: id -1: out of range (label map ids are integers from 1 to 2147483647, 0 for the background)");
  CHECK(fails("item { id: 2147483648 name: 'a' }") ==
        "l.pbtxt:1: id 2147483648: out of range (label map ids are integers from 1 to 2147483647, 0 for the "
        "background)");
  CHECK(fails("item { id: 123456789012345678901234567890 name: 'a' }") ==
        "l.pbtxt:1: id 123456789012345678901234567890: out of range (label map ids are integers from 1 to 2147483647)");
  CHECK(fails("item { id: 0 name: 'cat' }") ==
        "l.pbtxt:1: id 0 is reserved for the background (name: 'background'); classes are numbered from 1");
  CHECK(fails("item {\n id: 3\n}") == "l.pbtxt:3: id 3: no name (expected name: '...' or display_name: '...')");
  CHECK(fails("item { id: 1.5 name: 'a' }") == "l.pbtxt:1: id: expected an integer, found '1.5'");
  CHECK(fails("item { id: \"1\" name: 'a' }") == "l.pbtxt:1: id: expected an integer, found '1'");
  CHECK(fails("item { id: [1] name: 'a' }") == "l.pbtxt:1: id: expected a single value, found '['");
  CHECK(fails("item { id: 1 name: '\\xff' }") ==
        "l.pbtxt:1: the string is not UTF-8 text (byte 0xFF at offset 0 of its value)");
  CHECK(fails("item { id: 1 name: 'a' }\n\xFF") == "l.pbtxt:2: not UTF-8 text (byte 0xFF)");
  CHECK(fails("item { id: 1 name: 'a' k { k { k {") == "l.pbtxt:1: missing '}'");
  CHECK(fails("item { id: 1 name: 'a' } <") == "l.pbtxt:1: unexpected character '<'");
  CHECK(fails("item { id: 0 name: 'background' }") == "l.pbtxt: no items");
}

TEST_CASE("label map pbtxt: deep nested fields are skipped without recursion", "[data][label_map]") {
  std::string text = "item { id: 1 name: 'a' k ";
  for (int i = 0; i < 100000; ++i) text += "{ k ";
  text += std::string(100000, '}') + "}";
  CHECK(LabelMap::parse_pbtxt(text, "deep").name(1) == "a");
}

TEST_CASE("label map JSON: both forms, with the same rules", "[data][label_map]") {
  CHECK(read_text(R"({"1": "cat", "2": "dog"})").name(2) == "dog");
  const LabelMap list = read_text(R"([{"id": 1, "name": "cat", "display_name": "Cat"}, {"id": 0, "name": "background"}])");
  CHECK(list.names().size() == 1);
  CHECK(list.name(1) == "Cat");
  CHECK_THROWS_WITH(read_text(R"({"1": "a", "01": "b"})"), Catch::EndsWith("labels.pbtxt: id 1 appears twice"));
  CHECK_THROWS_WITH(read_text(R"({"x": "a"})"), Catch::Contains("key 'x': expected a class id"));
  CHECK_THROWS_WITH(read_text(R"({"-1": "a"})"),
                    Catch::EndsWith("labels.pbtxt: id -1: out of range (label map ids are integers from 1 to "
                                    "2147483647, 0 for the background)"));
  CHECK_THROWS_WITH(read_text(R"({"1": 5})"), Catch::EndsWith("labels.pbtxt: class 1: expected a name (string)"));
  CHECK_THROWS_WITH(read_text(R"([{"id": 1, "name": "a"}, {"id": 1, "name": "b"}])"),
                    Catch::EndsWith("labels.pbtxt: item 1: id 1 appears twice"));
  CHECK_THROWS_WITH(read_text(R"([{"id": 18446744073709551615, "name": "a"}])"),
                    Catch::Contains("item 0: id 2147483648: out of range"));
  CHECK_THROWS_WITH(read_text(R"([{"id": 1, "name": "a", "display_name": []}])"),
                    Catch::Contains("item 0: expected {\"id\": integer, \"name\": string}"));
  CHECK_THROWS_WITH(read_text(R"([{"id": 1e400, "name": "a"}])"), Catch::Contains("labels.pbtxt:1:"));
  CHECK_THROWS_WITH(read_text("[]"), Catch::EndsWith("labels.pbtxt: no classes"));
}

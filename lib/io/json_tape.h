// Large read-only JSON data files (COCO ground truth and results) read into one flat array of
// values, a "tape", instead of nlohmann's tree: a fraction of its time and memory.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mrcnn {

class JsonTape;

// One value on a tape, read through the part of nlohmann::json's const interface that the data
// readers use (so that one template reads either), with the same values: integers without a
// fraction or exponent are number_integer / number_unsigned, a repeated key means its last value.
// Unlike nlohmann, an object keeps every key in document order: iteration and size() see repeated
// keys each time they occur (the readers look values up by key, where the last one wins).
class JsonView {
 public:
  class iterator;  // over an array's elements or an object's values (in document order)

  JsonView(const JsonTape* tape, uint32_t index) : tape_(tape), index_(index) {}

  bool is_null() const;
  bool is_boolean() const;
  bool is_number() const { return is_number_integer() || is_number_float(); }
  bool is_number_integer() const;
  bool is_number_unsigned() const;
  bool is_number_float() const;
  bool is_string() const;
  bool is_array() const;
  bool is_object() const;
  bool is_structured() const { return is_array() || is_object(); }

  size_t size() const;  // 0 for null, 1 for a scalar; an object's keys as written, repeats included
  bool empty() const { return size() == 0; }
  bool contains(std::string_view key) const;
  JsonView operator[](std::string_view key) const;  // the key must be there (check contains first)
  JsonView operator[](const char* key) const { return (*this)[std::string_view(key)]; }
  JsonView operator[](size_t index) const;          // walks the array: for the first few elements
  JsonView operator[](int index) const { return (*this)[static_cast<size_t>(index)]; }
  iterator begin() const;
  iterator end() const;

  // bool, int64_t, uint64_t, double (numbers convert as nlohmann converts them) or std::string;
  // another type throws nlohmann's type_error, as nlohmann would.
  template <typename T>
  T get() const;
  std::string_view string_view() const;  // a string's text
  nlohmann::json scalar() const;         // a scalar as nlohmann::json (for messages); null for containers

 private:
  const JsonTape* tape_;
  uint32_t index_;
};

class JsonView::iterator {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = JsonView;
  using difference_type = std::ptrdiff_t;
  using pointer = void;
  using reference = JsonView;

  iterator(const JsonTape* tape, uint32_t index, uint32_t stop, bool object)
      : tape_(tape), index_(index), stop_(stop), object_(object) {}
  JsonView operator*() const { return {tape_, index_}; }
  iterator& operator++();
  bool operator!=(const iterator& other) const { return index_ != other.index_; }
  bool operator==(const iterator& other) const { return index_ == other.index_; }

 private:
  const JsonTape* tape_;
  uint32_t index_, stop_;  // stop: the container's end
  bool object_;
};

// The document: the text (strings point into it) and its values in document order, each
// container followed by its members (objects: key, value, key, value...).
class JsonTape {
 public:
  // The tape of text, or nothing where text is not JSON that the scanner takes: malformed JSON,
  // nesting deeper than kMaxJsonDepth, numbers beyond a 64-bit float, and the rare valid forms it
  // leaves to nlohmann (a byte order mark, numbers that underflow). Callers then parse with
  // parse_json_data, which gives the error (or the document). Takes the text; gives it back
  // when it returns nothing.
  static std::optional<JsonTape> parse(std::string& text);

  JsonView root() const { return {this, 0}; }

  enum class Kind : uint8_t { Null, False, True, Integer, Unsigned, Float, String, Array, Object };
  struct Node {
    Kind kind;
    uint32_t length;  // strings: bytes; containers: elements (objects: members)
    union {
      int64_t integer;
      uint64_t unsigned_integer;
      double number;
      uint64_t offset;  // strings: into text_, or into decoded_ when escaped (the top bit set)
      uint32_t end;     // containers: the index just past their last member
    };
  };
  const Node& node(uint32_t index) const { return nodes_[index]; }
  uint32_t next(uint32_t index) const;  // the index of the value after this one (and its members)
  std::string_view text_of(const Node& string) const;

 private:
  friend class JsonScanner;
  std::string text_, decoded_;
  std::vector<Node> nodes_;
};

}  // namespace mrcnn

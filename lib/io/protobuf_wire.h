// The protobuf wire format, by hand: enough to write TensorBoard events and read TF Example
// records without a protobuf dependency (varints, fixed 32/64-bit, length-delimited fields).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace mrcnn::proto {

enum WireType : uint32_t { Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5 };

inline void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>(value | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

inline void put_tag(std::string& out, uint32_t field, WireType type) { put_varint(out, (field << 3) | type); }

inline void put_varint_field(std::string& out, uint32_t field, uint64_t value) {
  put_tag(out, field, Varint);
  put_varint(out, value);
}

inline void put_bytes_field(std::string& out, uint32_t field, std::string_view bytes) {
  put_tag(out, field, LengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes);
}

inline void put_float_field(std::string& out, uint32_t field, float value) {
  put_tag(out, field, Fixed32);
  char raw[4];
  std::memcpy(raw, &value, 4);  // little-endian hosts only (x86-64, aarch64)
  out.append(raw, 4);
}

inline void put_double_field(std::string& out, uint32_t field, double value) {
  put_tag(out, field, Fixed64);
  char raw[8];
  std::memcpy(raw, &value, 8);
  out.append(raw, 8);
}

}  // namespace mrcnn::proto

namespace mrcnn::proto {

// Walks the fields of one serialized message. Malformed input makes next() return false with
// error() set (never reads out of bounds).
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  // Advances to the next field; false at the end or on malformed input (see error()).
  bool next() {
    if (pos_ >= data_.size() || !error_.empty()) return false;
    uint64_t key = 0;
    if (!varint(key)) return false;
    field_ = static_cast<uint32_t>(key >> 3);
    type_ = static_cast<WireType>(key & 7);
    if (field_ == 0) return fail("field number 0");
    return true;
  }
  uint32_t field() const { return field_; }
  WireType type() const { return type_; }

  bool read_varint(uint64_t& value) { return type_ == Varint ? varint(value) : fail("expected a varint"); }
  bool read_bytes(std::string_view& value) {
    if (type_ != LengthDelimited) return fail("expected a length-delimited field");
    uint64_t length = 0;
    if (!varint(length)) return false;
    if (length > data_.size() - pos_) return fail("length past the end of the message");
    value = data_.substr(pos_, length);
    pos_ += length;
    return true;
  }
  bool read_fixed32(uint32_t& value) { return fixed(&value, 4, Fixed32); }
  bool read_fixed64(uint64_t& value) { return fixed(&value, 8, Fixed64); }
  bool skip() {
    uint64_t v;
    std::string_view b;
    switch (type_) {
      case Varint: return varint(v);
      case Fixed64: return read_fixed64(v);
      case LengthDelimited: return read_bytes(b);
      case Fixed32: {
        uint32_t u;
        return read_fixed32(u);
      }
      default: return fail("unsupported wire type " + std::to_string(type_));
    }
  }
  const std::string& error() const { return error_; }
  bool ok() const { return error_.empty(); }

  // A varint from the current position (for packed repeated fields).
  bool varint(uint64_t& value) {
    value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return fail("truncated varint");
      const auto byte = static_cast<uint8_t>(data_[pos_++]);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return true;
    }
    return fail("varint longer than 10 bytes");
  }
  bool at_end() const { return pos_ >= data_.size(); }
  // Bytes consumed so far (for formats that put raw bytes after varints, as SSTable entries do).
  size_t position() const { return pos_; }

 private:
  bool fixed(void* out, size_t n, WireType expected) {
    if (type_ != expected) return fail("unexpected wire type");
    if (data_.size() - pos_ < n) return fail("truncated fixed-width field");
    std::memcpy(out, data_.data() + pos_, n);  // little-endian hosts
    pos_ += n;
    return true;
  }
  bool fail(const std::string& what) {
    if (error_.empty()) error_ = what + " at byte " + std::to_string(pos_);
    return false;
  }

  std::string_view data_;
  size_t pos_ = 0;
  uint32_t field_ = 0;
  WireType type_ = Varint;
  std::string error_;
};

}  // namespace mrcnn::proto

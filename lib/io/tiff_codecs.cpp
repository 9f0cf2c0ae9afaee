#include "io/tiff_codecs.h"

#include <algorithm>
#include <array>
#include <cstdint>

#include "core/error.h"

namespace mrcnn {
namespace {

constexpr int kClearCode = 256, kEndCode = 257, kFirstFreeCode = 258, kTableSize = 4096;

// LZW codes of `width` bits, most significant bit first; -1 at the end of the data.
class CodeReader {
 public:
  explicit CodeReader(std::string_view data) : data_(data) {}
  int next(int width) {
    while (count_ < width) {
      if (pos_ >= data_.size()) return -1;
      buffer_ = (buffer_ << 8) | static_cast<uint8_t>(data_[pos_++]);
      count_ += 8;
    }
    count_ -= width;
    return static_cast<int>((buffer_ >> count_) & ((1u << width) - 1));
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
  uint32_t buffer_ = 0;
  int count_ = 0;
};

// The strings of the LZW table: each a shorter string (its prefix code) plus one byte.
struct LzwTable {
  std::array<uint16_t, kTableSize> prefix{}, length{};
  std::array<uint8_t, kTableSize> last{}, first{};
  LzwTable() {
    for (int code = 0; code < 256; ++code) {
      length[code] = 1;
      last[code] = first[code] = static_cast<uint8_t>(code);
    }
  }
  void add(int code, int previous, uint8_t byte) {
    prefix[code] = static_cast<uint16_t>(previous);
    length[code] = static_cast<uint16_t>(length[previous] + 1);
    last[code] = byte;
    first[code] = first[previous];
  }
  // Appends code's string, cut at max_output; false when it was cut.
  bool emit(int code, std::string& out, size_t max_output) const {
    const size_t start = out.size(), room = max_output - start;
    out.resize(start + std::min<size_t>(length[code], room));
    for (int c = code, k = length[code] - 1; k >= 0; c = prefix[c], --k)
      if (static_cast<size_t>(k) < room) out[start + k] = static_cast<char>(last[c]);
    return length[code] <= room;
  }
};

}  // namespace

std::string decode_tiff_lzw(std::string_view data, size_t max_output, const std::string& where) {
  if (data.size() >= 2 && data[0] == 0 && (data[1] & 1))  // libtiff's test for the old bit order
    throw Error(where + ": LZW data in the old-style (pre-TIFF 6.0) bit order is not read");
  LzwTable table;
  std::string out;
  // A 9-bit code yields at most 4096 bytes: a small block cannot claim the whole budget up front.
  out.reserve(std::min<size_t>(max_output, data.size() * 3641 + 4096));
  CodeReader codes(data);
  int next = kFirstFreeCode, width = 9, previous = -1;
  for (int code = codes.next(width); code >= 0 && code != kEndCode; code = codes.next(width)) {
    if (code == kClearCode) {
      next = kFirstFreeCode;
      width = 9;
      previous = -1;
      continue;
    }
    if (code > next || (previous < 0 && code > 255) || (code == next && next == kTableSize))
      throw Error(where + ": LZW data has code " + std::to_string(code) + " with " + std::to_string(next) +
                  " codes defined (corrupt?)");
    if (previous >= 0 && next < kTableSize) {
      table.add(next, previous, code == next ? table.first[previous] : table.first[code]);
      ++next;
    }
    if (!table.emit(code, out, max_output)) break;
    if (next >= (1 << width) - 1 && width < 12) ++width;  // TIFF's early change
    previous = code;
  }
  return out;
}

std::string decode_packbits(std::string_view data, size_t max_output, const std::string& where) {
  std::string out;
  out.reserve(std::min<size_t>(max_output, data.size() * 64));  // 2 bytes give at most 128
  for (size_t i = 0; i < data.size() && out.size() < max_output;) {
    const int header = static_cast<int8_t>(data[i++]);
    const size_t room = max_output - out.size();
    if (header >= 0) {
      const size_t count = static_cast<size_t>(header) + 1;
      if (count > data.size() - i) throw Error(where + ": PackBits data ends inside a literal run (truncated?)");
      out.append(data.substr(i, std::min(count, room)));
      i += count;
    } else if (header != -128) {  // -128: no operation
      if (i >= data.size()) throw Error(where + ": PackBits data ends inside a repeat run (truncated?)");
      out.append(std::min<size_t>(1 - header, room), data[i++]);
    }
  }
  return out;
}

}  // namespace mrcnn

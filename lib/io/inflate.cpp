#include "io/inflate.h"

#include <algorithm>
#include <array>
#include <cstdint>

#include "core/error.h"

// The decoder follows zlib's reference decoder "puff" (Mark Adler): canonical Huffman codes
// decoded a bit at a time, which is slower than zlib's tables but short enough to check by eye.
namespace mrcnn {
namespace {

constexpr int kMaxBits = 15;      // the longest Huffman code
constexpr int kMaxSymbols = 288;  // literal/length alphabet with its two unused codes

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw Error(where + ": Deflate data " + what);
}

// A Deflate stream's bits, least significant first; running out of input is an error.
class BitReader {
 public:
  BitReader(std::string_view in, const std::string& where) : in_(in), where_(where) {}
  uint32_t bits(int need) {
    uint32_t value = buffer_;
    while (count_ < need) {
      if (pos_ >= in_.size()) fail("ends early (truncated?)");
      value |= uint32_t{static_cast<uint8_t>(in_[pos_++])} << count_;
      count_ += 8;
    }
    buffer_ = value >> need;
    count_ -= need;
    return value & ((uint32_t{1} << need) - 1);
  }
  // Drops the rest of the current byte (fewer than 8 bits are ever buffered).
  void align() { buffer_ = count_ = 0; }
  std::string_view take(size_t n) {
    if (n > in_.size() - pos_) fail("ends early (truncated?)");
    pos_ += n;
    return in_.substr(pos_ - n, n);
  }
  size_t left() const { return in_.size() - pos_; }
  [[noreturn]] void fail(const std::string& what) const { mrcnn::fail(where_, what); }

 private:
  std::string_view in_;
  const std::string& where_;
  size_t pos_ = 0;
  uint32_t buffer_ = 0;
  int count_ = 0;
};

// A canonical Huffman code: how many codes each length has, and the symbols in code order.
struct Huffman {
  std::array<int16_t, kMaxBits + 1> count{};
  std::array<int16_t, kMaxSymbols> symbol{};
};

// Builds h from the code lengths of n symbols; returns 0 for a complete code, > 0 for an
// incomplete one, < 0 for an over-subscribed one (invalid).
int build(Huffman& h, const int16_t* length, int n) {
  h.count.fill(0);
  for (int s = 0; s < n; ++s) h.count[length[s]]++;
  if (h.count[0] == n) return 0;
  int left = 1;
  for (int len = 1; len <= kMaxBits; ++len) {
    left = 2 * left - h.count[len];
    if (left < 0) return left;
  }
  std::array<int16_t, kMaxBits + 1> offset{};
  for (int len = 1; len < kMaxBits; ++len) offset[len + 1] = offset[len] + h.count[len];
  for (int s = 0; s < n; ++s)
    if (length[s] != 0) h.symbol[offset[length[s]]++] = s;
  return left;
}

int decode(BitReader& in, const Huffman& h) {
  int code = 0, first = 0, index = 0;
  for (int len = 1; len <= kMaxBits; ++len) {
    code |= in.bits(1);
    const int count = h.count[len];
    if (code - count < first) return h.symbol[index + (code - first)];
    index += count;
    first = (first + count) << 1;
    code <<= 1;
  }
  in.fail("has an invalid Huffman code");
}

// The decompressed bytes, which may not grow past limit.
struct Output {
  std::string bytes;
  size_t limit;
  bool full() const { return bytes.size() >= limit; }
};

constexpr int16_t kLengthBase[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                     31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
constexpr int16_t kLengthExtra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
constexpr int16_t kDistanceBase[30] = {1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
                                       193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
constexpr int16_t kDistanceExtra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
                                        6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

// One block's literals and matches up to its end code; false when the output filled up first.
bool inflate_codes(BitReader& in, Output& out, const Huffman& lengths, const Huffman& distances) {
  for (;;) {
    int symbol = decode(in, lengths);
    if (symbol == 256) return true;
    if (out.full()) return false;
    if (symbol < 256) {
      out.bytes.push_back(static_cast<char>(symbol));
      continue;
    }
    symbol -= 257;
    if (symbol >= 29) in.fail("has an invalid length code");
    const size_t length = kLengthBase[symbol] + in.bits(kLengthExtra[symbol]);
    const int code = decode(in, distances);
    if (code >= 30) in.fail("has an invalid distance code");
    const size_t distance = kDistanceBase[code] + in.bits(kDistanceExtra[code]);
    if (distance > out.bytes.size()) in.fail("refers back past its start");
    const size_t room = out.limit - out.bytes.size();
    for (size_t i = 0; i < std::min(length, room); ++i) out.bytes.push_back(out.bytes[out.bytes.size() - distance]);
    if (length > room) return false;
  }
}

bool inflate_stored(BitReader& in, Output& out) {
  in.align();
  const uint32_t length = in.bits(16), check = in.bits(16);
  if (length != (~check & 0xffff)) in.fail("has a stored block whose length check fails");
  const std::string_view block = in.take(length);
  const size_t room = out.limit - out.bytes.size();
  out.bytes.append(block.substr(0, room));
  return block.size() <= room;
}

bool inflate_fixed(BitReader& in, Output& out) {
  static const std::array<Huffman, 2> fixed = [] {
    std::array<int16_t, kMaxSymbols> length{};
    for (int s = 0; s < kMaxSymbols; ++s) length[s] = s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8;
    std::array<Huffman, 2> codes;
    build(codes[0], length.data(), kMaxSymbols);
    length.fill(5);
    build(codes[1], length.data(), 30);
    return codes;
  }();
  return inflate_codes(in, out, fixed[0], fixed[1]);
}

// The code lengths of a dynamic block (themselves Huffman-coded), as literal/length and distance codes.
void read_dynamic_codes(BitReader& in, Huffman& lengths, Huffman& distances) {
  const int nlen = in.bits(5) + 257, ndist = in.bits(5) + 1, ncode = in.bits(4) + 4;
  if (nlen > 286 || ndist > 30) in.fail("has a dynamic block with too many codes");
  static constexpr int16_t kOrder[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
  std::array<int16_t, 320> length{};
  for (int i = 0; i < ncode; ++i) length[kOrder[i]] = in.bits(3);
  Huffman code_lengths;
  if (build(code_lengths, length.data(), 19) != 0) in.fail("has an incomplete code-length code");
  for (int index = 0; index < nlen + ndist;) {
    const int symbol = decode(in, code_lengths);
    if (symbol < 16) {
      length[index++] = symbol;
      continue;
    }
    if (symbol == 16 && index == 0) in.fail("repeats a length before the first");
    const int16_t repeated = symbol == 16 ? length[index - 1] : 0;
    const int times = symbol == 16 ? 3 + in.bits(2) : symbol == 17 ? 3 + in.bits(3) : 11 + in.bits(7);
    if (index + times > nlen + ndist) in.fail("has more code lengths than codes");
    for (int i = 0; i < times; ++i) length[index++] = repeated;
  }
  if (length[256] == 0) in.fail("has no end-of-block code");
  const int left_lengths = build(lengths, length.data(), nlen);
  if (left_lengths < 0 || (left_lengths > 0 && nlen - lengths.count[0] != 1)) in.fail("has an invalid literal code");
  const int left_distances = build(distances, length.data() + nlen, ndist);
  if (left_distances < 0 || (left_distances > 0 && ndist - distances.count[0] != 1))
    in.fail("has an invalid distance code");
}

bool inflate_dynamic(BitReader& in, Output& out) {
  Huffman lengths, distances;
  read_dynamic_codes(in, lengths, distances);
  return inflate_codes(in, out, lengths, distances);
}

uint32_t adler32(std::string_view bytes) {
  uint32_t a = 1, b = 0;
  for (size_t start = 0; start < bytes.size(); start += 5552) {  // 5552: the most bytes before b can overflow
    const size_t end = std::min(bytes.size(), start + 5552);
    for (size_t i = start; i < end; ++i) {
      a += static_cast<uint8_t>(bytes[i]);
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return (b << 16) | a;
}

}  // namespace

std::string inflate_zlib(std::string_view stream, size_t max_output, const std::string& where) {
  if (stream.size() < 2) fail(where, "ends early (truncated?)");
  const unsigned cmf = static_cast<uint8_t>(stream[0]), flags = static_cast<uint8_t>(stream[1]);
  if ((cmf & 0x0f) != 8 || (cmf >> 4) > 7 || (cmf * 256 + flags) % 31 != 0) fail(where, "has no zlib header");
  if (flags & 0x20) fail(where, "needs a preset dictionary");
  BitReader in(stream.substr(2), where);
  Output out{std::string(), max_output};
  // Deflate expands at most 1032:1; a small stream cannot claim the whole budget up front.
  out.bytes.reserve(std::min<size_t>(max_output, stream.size() * 1032));
  for (bool last = false; !last;) {
    last = in.bits(1) == 1;
    const uint32_t type = in.bits(2);
    if (type == 3) in.fail("has an invalid block type");
    const bool ended = type == 0 ? inflate_stored(in, out) : type == 1 ? inflate_fixed(in, out) : inflate_dynamic(in, out);
    if (!ended) return std::move(out.bytes);  // filled up: what follows is not needed
  }
  in.align();
  if (in.left() > 0 && in.left() < 4) in.fail("ends early (truncated?) in its Adler-32 checksum");
  if (in.left() >= 4) {  // writers that leave the checksum out are tolerated
    const std::string_view sum = in.take(4);
    uint32_t expected = 0;
    for (const char c : sum) expected = (expected << 8) | static_cast<uint8_t>(c);
    if (expected != adler32(out.bytes)) in.fail("fails its Adler-32 checksum (corrupt?)");
  }
  return std::move(out.bytes);
}

}  // namespace mrcnn

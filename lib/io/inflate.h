// Deflate decompression (RFC 1950/1951) of our own, for TIFF Deflate strips: the portable kit's
// build has no zlib headers, and a decoder that stops at the size the caller expects cannot be
// turned into a decompression bomb.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mrcnn {

// The bytes a zlib stream (2-byte header, Deflate blocks, Adler-32) decompresses to, at most
// max_output of them: decoding stops there, and the checksum is then not checked. Throws Error
// "<where>: Deflate data ..." for a bad header, a bad block, a checksum mismatch, or a stream
// that ends early.
std::string inflate_zlib(std::string_view stream, size_t max_output, const std::string& where);

}  // namespace mrcnn

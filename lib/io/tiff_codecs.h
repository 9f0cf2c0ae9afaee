// The compressions of TIFF strips and tiles besides Deflate (io/inflate.h): LZW and PackBits, each
// stopping at the size the image needs, so that no strip can decompress into a bomb.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mrcnn {

// TIFF 6.0 LZW (section 13: 9- to 12-bit codes, most significant bit first, the code width growing
// one code early). Decoding stops at max_output bytes or the end-of-information code. Throws
// Error "<where>: LZW data ..." for a code outside the table, or old-style (pre-6.0) LZW.
std::string decode_tiff_lzw(std::string_view data, size_t max_output, const std::string& where);

// PackBits (TIFF 6.0 section 9: runs of literal bytes and of one repeated byte), up to max_output
// bytes. Throws Error "<where>: PackBits data ..." for a run that goes past the data's end.
std::string decode_packbits(std::string_view data, size_t max_output, const std::string& where);

}  // namespace mrcnn

// The greedy pass of bitmask NMS, one definition for the CUDA kernel (one block of threads walks
// the suppression mask on the GPU, so that the mask never crosses to the host) and for the host,
// where a loop stands in for the block's threads (the kernel's fallback for very wide masks, and
// the unit test of the steps the kernel takes).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ops/host_device.h"

namespace mrcnn::ops::nms_greedy {

constexpr int kBoxesPerWord = 64;

// The mask: row i (boxes sorted by decreasing score) has `words` 64-bit words; bit k of word c is
// set when box i suppresses box 64c + k (only boxes after i count).

MRCNN_HOST_DEVICE inline int lowest_bit(uint64_t bits) {
#if defined(__CUDA_ARCH__)
  return __ffsll(static_cast<long long>(bits)) - 1;
#else
  return __builtin_ctzll(bits);
#endif
}

// Which of word w's `count` boxes survive, given the boxes earlier words removed (removed_word)
// and the mask's diagonal words (diagonal[j] = word w of box 64w + j's row). Sequential over the
// 64 boxes, on words already in fast memory.
MRCNN_HOST_DEVICE inline uint64_t survivors_of_word(uint64_t removed_word, const uint64_t* diagonal, int count) {
  uint64_t kept = 0;
  for (int j = 0; j < count; ++j) {
    if ((removed_word >> j) & 1ULL) continue;
    kept |= 1ULL << j;
    removed_word |= diagonal[j];
  }
  return kept;
}

// The survivors of word w remove what they suppress in the later words; the words are shared out
// among the threads (thread t takes w + 1 + t, w + 1 + t + threads, ...), so no two write the same.
MRCNN_HOST_DEVICE inline void remove_suppressed(uint64_t* removed, const uint64_t* mask, int64_t words, int64_t w,
                                                uint64_t kept, int thread, int threads) {
  for (int64_t b = w + 1 + thread; b < words; b += threads) {
    uint64_t bits = removed[b];
    for (uint64_t k = kept; k != 0; k &= k - 1)
      bits |= mask[(w * kBoxesPerWord + lowest_bit(k)) * words + b];
    removed[b] = bits;
  }
}

// The whole pass on the host, word by word as the kernel goes, `threads` standing in for the
// block's threads (any number gives the same rows). Returns the kept rows in order.
inline std::vector<int64_t> kept_rows(const uint64_t* mask, int64_t n, int64_t words, int threads = 1) {
  std::vector<uint64_t> removed(static_cast<size_t>(words), 0);
  std::vector<int64_t> rows;
  for (int64_t w = 0; w < words; ++w) {
    const int count = static_cast<int>(std::min<int64_t>(n - w * kBoxesPerWord, kBoxesPerWord));
    uint64_t diagonal[kBoxesPerWord];
    for (int t = 0; t < count; ++t) diagonal[t] = mask[(w * kBoxesPerWord + t) * words + w];
    const uint64_t survivors = survivors_of_word(removed[w], diagonal, count);
    for (int j = 0; j < count; ++j)
      if ((survivors >> j) & 1ULL) rows.push_back(w * kBoxesPerWord + j);
    for (int t = 0; t < threads; ++t) remove_suppressed(removed.data(), mask, words, w, survivors, t, threads);
  }
  return rows;
}

}  // namespace mrcnn::ops::nms_greedy

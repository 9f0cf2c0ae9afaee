// The caching CPU allocator: reuse, size classes, eviction, raw pointers, and no overlapping
// blocks when threads allocate and free at once.
#include <c10/core/Allocator.h>
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "core/cpu_allocator.h"

using namespace mrcnn::core;

namespace {
constexpr size_t kMiB = size_t(1) << 20;
}

TEST_CASE("a freed large block is handed out again; small requests are not cached", "[core][allocator]") {
  CachingCpuAllocator* cache = make_caching_cpu_allocator();
  c10::Allocator* allocator = as_c10_allocator(cache);
  void* first = nullptr;
  {
    c10::DataPtr block = allocator->allocate(3 * kMiB);
    first = block.get();
    CHECK(reinterpret_cast<uintptr_t>(first) % 64 == 0);
    std::memset(first, 0xab, 3 * kMiB);  // the whole request is writable
    CHECK(cache_stats(cache).misses == 1);
    CHECK(cache_stats(cache).cached_bytes == 0);
  }
  CHECK(cache_stats(cache).cached_bytes >= 3 * kMiB);
  {
    // A slightly different size in the same class reuses the block.
    c10::DataPtr again = allocator->allocate(3 * kMiB - 1000);
    CHECK(again.get() == first);
    CHECK(cache_stats(cache).hits == 1);
  }
  {
    c10::DataPtr small = allocator->allocate(1000);
    CHECK(reinterpret_cast<uintptr_t>(small.get()) % 64 == 0);
    std::memset(small.get(), 1, 1000);
  }
  const CpuCacheStats stats = cache_stats(cache);
  CHECK(stats.hits == 1);
  CHECK(stats.misses == 1);  // the small request went to malloc
  release_cached_blocks(cache);
  CHECK(cache_stats(cache).cached_bytes == 0);
  CHECK(cache_stats(cache).mapped_bytes == 0);
}

TEST_CASE("a cached block more than 1.5x the request is not handed out",
          "[core][allocator]") {
  CachingCpuAllocator* cache = make_caching_cpu_allocator();
  c10::Allocator* allocator = as_c10_allocator(cache);
  { c10::DataPtr big = allocator->allocate(8 * kMiB); }
  {
    c10::DataPtr quarter = allocator->allocate(2 * kMiB);
    CHECK(cache_stats(cache).hits == 0);
  }
  release_cached_blocks(cache);
}

TEST_CASE("a miss first returns unused cached blocks, so mapped memory stays at the high water mark",
          "[core][allocator]") {
  CachingCpuAllocator* cache = make_caching_cpu_allocator();
  c10::Allocator* allocator = as_c10_allocator(cache);
  { c10::DataPtr a = allocator->allocate(4 * kMiB); }
  const size_t peak = cache_stats(cache).peak_mapped_bytes;
  {
    c10::DataPtr b = allocator->allocate(1 * kMiB);  // too small for the 4 MiB block: a miss
    const CpuCacheStats stats = cache_stats(cache);
    CHECK(stats.misses == 2);
    CHECK(stats.evictions == 1);  // 4 + 1 MiB would pass the 4 MiB peak: the 4 MiB block went
    CHECK(stats.mapped_bytes < 2 * kMiB);
    CHECK(stats.peak_mapped_bytes == peak);
  }
  release_cached_blocks(cache);
}

TEST_CASE("the cache cap unmaps the least recently freed blocks", "[core][allocator]") {
  CpuCacheOptions options;
  options.max_cached_bytes = 5 * kMiB;
  CachingCpuAllocator* cache = make_caching_cpu_allocator(options);
  c10::Allocator* allocator = as_c10_allocator(cache);
  std::vector<c10::DataPtr> live;
  for (int i = 0; i < 4; ++i) live.push_back(allocator->allocate(2 * kMiB));
  live.clear();
  const CpuCacheStats stats = cache_stats(cache);
  CHECK(stats.cached_bytes <= options.max_cached_bytes);
  CHECK(stats.evictions == 2);
  CHECK(stats.mapped_bytes == stats.cached_bytes);
  release_cached_blocks(cache);
}

TEST_CASE("raw_allocate and raw_deallocate round-trip through the raw deleter", "[core][allocator]") {
  CachingCpuAllocator* cache = make_caching_cpu_allocator();
  c10::Allocator* allocator = as_c10_allocator(cache);
  REQUIRE(allocator->raw_deleter() != nullptr);
  for (const size_t bytes : {size_t(64), 2 * kMiB}) {
    void* p = allocator->raw_allocate(bytes);
    std::memset(p, 7, bytes);
    allocator->raw_deallocate(p);
  }
  CHECK(cache_stats(cache).cached_bytes > 0);
  release_cached_blocks(cache);
}

TEST_CASE("threads allocating and freeing at once never get overlapping blocks", "[core][allocator]") {
  CachingCpuAllocator* cache = make_caching_cpu_allocator();
  c10::Allocator* allocator = as_c10_allocator(cache);
  std::vector<std::thread> threads;
  std::vector<int> corrupted(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::uniform_int_distribution<size_t> size(100 * 1024, 3 * kMiB);
      std::vector<std::pair<c10::DataPtr, size_t>> held;
      for (int i = 0; i < 300; ++i) {
        const size_t bytes = size(rng);
        c10::DataPtr block = allocator->allocate(bytes);
        std::memset(block.get(), t * 16 + (i % 16), bytes);
        held.emplace_back(std::move(block), bytes);
        if (held.size() > 6) {
          // Check the oldest block still holds what this thread wrote, then free it.
          auto& [oldest, oldest_bytes] = held.front();
          const auto* bytes_of = static_cast<const unsigned char*>(oldest.get());
          const unsigned char expected = bytes_of[0];
          for (size_t k = 0; k < oldest_bytes; k += 4096)
            if (bytes_of[k] != expected || bytes_of[oldest_bytes - 1] != expected) ++corrupted[t];
          held.erase(held.begin());
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const int count : corrupted) CHECK(count == 0);
  const CpuCacheStats stats = cache_stats(cache);
  CHECK(stats.hits > 0);
  CHECK(stats.mapped_bytes == stats.cached_bytes);  // everything was freed
  release_cached_blocks(cache);
}

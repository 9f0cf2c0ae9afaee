// A caching CPU allocator for large tensors: training repeats the same allocations every step,
// so freed blocks are kept and handed out again instead of going back through malloc.
#pragma once

#include <cstddef>
#include <cstdint>

namespace c10 {
struct Allocator;
}

namespace mrcnn::core {

struct CpuCacheOptions {
  // Requests below this go to libtorch's default allocator (malloc's small-object bins handle
  // them well); at or above it they are page-mapped blocks that this allocator caches.
  size_t min_cached_bytes = 128 * 1024;
  // Free bytes the cache may hold. A miss that would push mapped memory past the previous high
  // water mark first unmaps least-recently-freed blocks, so peak memory tracks the live set.
  size_t max_cached_bytes = size_t(2) << 30;
};

struct CpuCacheStats {
  int64_t hits = 0;          // allocations served from a cached block
  int64_t misses = 0;        // allocations that mapped a new block
  int64_t evictions = 0;     // cached blocks unmapped to make room or to respect the cap
  size_t cached_bytes = 0;   // free blocks held now
  size_t mapped_bytes = 0;   // all blocks mapped now, in use or cached
  size_t peak_mapped_bytes = 0;
};

class CachingCpuAllocator;

// Creates an allocator (tests use one directly); never destroyed while tensors may point into it.
CachingCpuAllocator* make_caching_cpu_allocator(const CpuCacheOptions& options = {});
c10::Allocator* as_c10_allocator(CachingCpuAllocator* allocator);
CpuCacheStats cache_stats(const CachingCpuAllocator* allocator);
// Unmaps every cached (free) block.
void release_cached_blocks(CachingCpuAllocator* allocator);

// Makes a process-wide caching allocator libtorch's CPU allocator, once; later calls do nothing.
// Returns false (and installs nothing) when MRCNN_CPU_ALLOCATOR=system asks for the default.
bool install_caching_cpu_allocator();
// The installed allocator's counters; all zero when none is installed.
CpuCacheStats installed_cpu_cache_stats();

}  // namespace mrcnn::core

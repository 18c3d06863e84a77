// SymbolBuffer: aligned, recycled block storage (see symbol_buffer.h).
#include "fec/symbol_buffer.h"

#include <cstdlib>
#include <mutex>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace rqcast {
namespace fec {
namespace {

constexpr size_t kAlign = 64;                  // a cache line; any SIMD width
constexpr size_t kMinCached = size_t(64) << 10;  // smaller: plain malloc
constexpr size_t kHuge = size_t(2) << 20;      // x86-64 huge page
constexpr size_t kMaxEntries = 8;

struct Cache {
  std::mutex mu;
  struct Entry {
    uint8_t* p;
    size_t capacity;
  };
  std::vector<Entry> entries;  // oldest first
  size_t bytes = 0;
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: used from any thread
  return *c;
}

uint8_t* system_alloc(size_t capacity) {
  const size_t align = capacity >= kHuge ? kHuge : kAlign;
  void* p = nullptr;
  if (posix_memalign(&p, align, capacity) != 0) return nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // With transparent huge pages in "madvise" mode (a common default) a
  // large block faults in 2 MiB at a time instead of 4 KiB. Advisory.
  if (capacity >= kHuge) madvise(p, capacity, MADV_HUGEPAGE);
#endif
  return static_cast<uint8_t*>(p);
}

}  // namespace

SymbolBuffer::SymbolBuffer(size_t bytes) {
  if (bytes == 0) return;
  const size_t want = (bytes + kAlign - 1) & ~(kAlign - 1);
  if (want >= kMinCached) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    // Smallest cached buffer that fits without wasting more than half.
    size_t best = c.entries.size();
    for (size_t i = 0; i < c.entries.size(); ++i) {
      const size_t cap = c.entries[i].capacity;
      if (cap >= want && cap / 2 <= want &&
          (best == c.entries.size() || cap < c.entries[best].capacity)) {
        best = i;
      }
    }
    if (best != c.entries.size()) {
      data_ = c.entries[best].p;
      capacity_ = c.entries[best].capacity;
      size_ = bytes;
      c.bytes -= capacity_;
      c.entries.erase(c.entries.begin() + static_cast<ptrdiff_t>(best));
      return;
    }
  }
  data_ = system_alloc(want);
  if (data_) {
    size_ = bytes;
    capacity_ = want;
  }
}

SymbolBuffer SymbolBuffer::Fresh(size_t bytes) {
  SymbolBuffer b;
  if (bytes == 0) return b;
  const size_t want = (bytes + kAlign - 1) & ~(kAlign - 1);
  b.data_ = system_alloc(want);
  if (b.data_) {
    b.size_ = bytes;
    b.capacity_ = want;
  }
  return b;
}

void SymbolBuffer::reset() {
  if (!data_) return;
  uint8_t* p = std::exchange(data_, nullptr);
  const size_t cap = std::exchange(capacity_, 0);
  size_ = 0;
  if (cap < kMinCached || cap > kCacheBytes) {
    std::free(p);
    return;
  }
  std::vector<uint8_t*> drop;
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    while (!c.entries.empty() &&
           (c.bytes + cap > kCacheBytes || c.entries.size() >= kMaxEntries)) {
      drop.push_back(c.entries.front().p);
      c.bytes -= c.entries.front().capacity;
      c.entries.erase(c.entries.begin());
    }
    c.entries.push_back(Cache::Entry{p, cap});
    c.bytes += cap;
  }
  for (uint8_t* q : drop) std::free(q);
}

void SymbolBuffer::TrimCache() {
  std::vector<Cache::Entry> drop;
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    drop.swap(c.entries);
    c.bytes = 0;
  }
  for (const Cache::Entry& e : drop) std::free(e.p);
}

size_t SymbolBuffer::CachedBytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.bytes;
}

}  // namespace fec
}  // namespace rqcast

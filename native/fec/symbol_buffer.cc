// SymbolBuffer: aligned, recycled block storage (see symbol_buffer.h).
#include "fec/symbol_buffer.h"

#include <atomic>
#include <cstdlib>
#include <initializer_list>
#include <mutex>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace rqcast {
namespace fec {
namespace {

constexpr size_t kAlign = 64;                  // a cache line; any SIMD width
constexpr size_t kMinCached = size_t(64) << 10;  // smaller: plain malloc
constexpr size_t kHuge = size_t(2) << 20;      // x86-64 huge page
constexpr size_t kMaxEntries = 8;
#if defined(__linux__)
#ifdef MADV_POPULATE_WRITE
constexpr int kPopulateWrite = MADV_POPULATE_WRITE;
#else
constexpr int kPopulateWrite = 23;  // Linux 5.14's value; older headers
#endif
#endif

struct Cache {
  std::mutex mu;
  struct Entry {
    uint8_t* p;
    size_t capacity;
  };
  std::vector<Entry> entries;  // oldest first
  size_t bytes = 0;
};

struct AtomicCounters {
  std::atomic<uint64_t> fresh{0}, fresh_bytes{0};
  std::atomic<uint64_t> reused{0}, reused_bytes{0};
  std::atomic<uint64_t> freed{0}, freed_bytes{0};
};

AtomicCounters& counters() {
  static AtomicCounters* c = new AtomicCounters;  // never destroyed
  return *c;
}

void count(std::atomic<uint64_t>& n, std::atomic<uint64_t>& bytes,
           size_t capacity) {
  if (capacity < kMinCached) return;
  n.fetch_add(1, std::memory_order_relaxed);
  bytes.fetch_add(capacity, std::memory_order_relaxed);
}

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: used from any thread
  return *c;
}

#if defined(__linux__)
// The whole pages of [p, p + bytes) faulted in for writing, in one call.
void populate(uint8_t* p, size_t bytes) {
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(page - 1);
  if (end > begin) {
    madvise(reinterpret_cast<void*>(begin), end - begin, kPopulateWrite);
  }
}
#endif

uint8_t* system_alloc(size_t capacity) {
  const size_t align = capacity >= kHuge ? kHuge : kAlign;
  void* p = nullptr;
  if (posix_memalign(&p, align, capacity) != 0) return nullptr;
  count(counters().fresh, counters().fresh_bytes, capacity);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // With transparent huge pages in "madvise" mode (a common default) a
  // large block faults in 2 MiB at a time instead of 4 KiB. Advisory.
  if (capacity >= kHuge) madvise(p, capacity, MADV_HUGEPAGE);
#endif
#if defined(__linux__)
  // Every byte of a block buffer is written soon after it is taken (a
  // read, the plan's replay, a decode), so fault its pages in now, in one
  // call, instead of one trap per page at the first writes: on a VM each
  // trap is an exit to the host (measured on the project's machine: 17
  // buffers of 15.8 MiB, median CPU 109 ms populated against 155 ms
  // touched, with huge pages). Advisory: kernels before 5.14 refuse it
  // (EINVAL) and the pages fault in as before.
  if (capacity >= kMinCached) populate(static_cast<uint8_t*>(p), capacity);
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
      count(counters().reused, counters().reused_bytes, capacity_);
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
    count(counters().freed, counters().freed_bytes, cap);
    std::free(p);
    return;
  }
  std::vector<Cache::Entry> drop;
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    while (!c.entries.empty() &&
           (c.bytes + cap > kCacheBytes || c.entries.size() >= kMaxEntries)) {
      drop.push_back(c.entries.front());
      c.bytes -= c.entries.front().capacity;
      c.entries.erase(c.entries.begin());
    }
    c.entries.push_back(Cache::Entry{p, cap});
    c.bytes += cap;
  }
  for (const Cache::Entry& e : drop) {
    count(counters().freed, counters().freed_bytes, e.capacity);
    std::free(e.p);
  }
}

void SymbolBuffer::TrimCache() {
  std::vector<Cache::Entry> drop;
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    drop.swap(c.entries);
    c.bytes = 0;
  }
  for (const Cache::Entry& e : drop) {
    count(counters().freed, counters().freed_bytes, e.capacity);
    std::free(e.p);
  }
#if defined(__GLIBC__)
  // glibc serves a block buffer from an arena rather than its own mapping
  // once a freed one has raised the mmap threshold (up to 32 MiB), and
  // free() leaves arena memory mapped: without this, emptying the cache
  // gave back one of two 15 MiB source copies (RssAnon 307 -> 292 MiB).
  if (!drop.empty()) malloc_trim(0);
#endif
}

size_t SymbolBuffer::CachedBytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.bytes;
}

SymbolBuffer::Counters SymbolBuffer::Stats() {
  AtomicCounters& a = counters();
  Counters c;
  c.fresh = a.fresh.load(std::memory_order_relaxed);
  c.fresh_bytes = a.fresh_bytes.load(std::memory_order_relaxed);
  c.reused = a.reused.load(std::memory_order_relaxed);
  c.reused_bytes = a.reused_bytes.load(std::memory_order_relaxed);
  c.freed = a.freed.load(std::memory_order_relaxed);
  c.freed_bytes = a.freed_bytes.load(std::memory_order_relaxed);
  return c;
}

void SymbolBuffer::ResetCounters() {
  AtomicCounters& a = counters();
  for (std::atomic<uint64_t>* n : {&a.fresh, &a.fresh_bytes, &a.reused,
                                   &a.reused_bytes, &a.freed, &a.freed_bytes}) {
    n->store(0, std::memory_order_relaxed);
  }
}

}  // namespace fec
}  // namespace rqcast

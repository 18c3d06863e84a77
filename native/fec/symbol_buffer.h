// Storage for blocks of T-byte symbols (source blocks, the solver's work
// slots, repair symbols): 64-byte aligned, not zeroed, and recycled.
//
// Why recycle: a block's buffers are megabytes, which the C library maps
// fresh from the kernel and unmaps on free, so every block would pay a
// page fault (and the kernel zeroing a page) per 4 KiB touched: measured
// at ~600 faults, about a millisecond, per K = 1000 encode + decode, as
// much as the symbol arithmetic itself. Freed buffers are kept in a small
// process-wide cache instead (bounded: kCacheBytes in total) and handed to
// the next block of a similar size. Thread safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

namespace rqcast {
namespace fec {

class SymbolBuffer {
 public:
  SymbolBuffer() = default;
  // Null data() when out of memory (bytes == 0 gives an empty buffer).
  explicit SymbolBuffer(size_t bytes);
  ~SymbolBuffer() { reset(); }
  SymbolBuffer(SymbolBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        capacity_(std::exchange(o.capacity_, 0)) {}
  SymbolBuffer& operator=(SymbolBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      capacity_ = std::exchange(o.capacity_, 0);
    }
    return *this;
  }
  SymbolBuffer(const SymbolBuffer&) = delete;
  SymbolBuffer& operator=(const SymbolBuffer&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  explicit operator bool() const { return data_ != nullptr; }
  // Returns the memory to the cache (or to the system).
  void reset();
  // A buffer from the system, never from the cache (it joins the cache
  // when released): for memory handed to someone who returns it late,
  // so that the cache keeps what the codec's own blocks will ask for.
  static SymbolBuffer Fresh(size_t bytes);

  // Bytes the cache may hold while no one uses them.
  static constexpr size_t kCacheBytes = size_t(160) << 20;
  // Drops every cached buffer (tests; memory pressure).
  static void TrimCache();
  static size_t CachedBytes();

  // What the cache did since the process started (or ResetCounters), for
  // buffers of 64 KiB and more (smaller ones are plain malloc):
  // `fresh` came from the system (memory the kernel zeroes as it is first
  // touched), `reused` from the cache, `freed` went back to the system
  // (the cache was full, or TrimCache).
  struct Counters {
    uint64_t fresh = 0, fresh_bytes = 0;
    uint64_t reused = 0, reused_bytes = 0;
    uint64_t freed = 0, freed_bytes = 0;
  };
  static Counters Stats();
  static void ResetCounters();

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace fec
}  // namespace rqcast

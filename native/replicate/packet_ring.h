// rqcast — a channel's ring of ready packets.
//
// Single producer (the JS thread through pushPackets, or a native encoder
// through reserve/commit), single consumer (the sender thread). Fixed-size
// slots, so the sender points iovecs straight into the ring: no packet is
// ever copied per destination. The consumer releases a packet only after it
// went to every destination, so the producer can never overwrite bytes the
// kernel has not taken yet.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace rqcast {
namespace replicate {

class PacketRing {
 public:
  // capacity is rounded up to a power of two; slot_size is the largest
  // packet the channel carries.
  PacketRing(uint32_t capacity, uint32_t slot_size);

  uint32_t capacity() const { return mask_ + 1; }
  uint32_t slot_size() const { return slot_size_; }

  // ---- producer side
  uint32_t free_slots() const {
    return capacity() - static_cast<uint32_t>(
                            tail_.load(std::memory_order_relaxed) -
                            head_.load(std::memory_order_acquire));
  }
  // Copies up to `count` packets of `packet_size` bytes laid end to end;
  // returns how many fit. packet_size must be <= slot_size.
  uint32_t push(const uint8_t* packets, uint32_t packet_size, uint32_t count);
  // Zero-copy producing: write into slot(i) for i < free_slots(), set its
  // length, then commit(n) publishes n packets at once.
  uint8_t* producer_slot(uint32_t i) {
    return slot(tail_.load(std::memory_order_relaxed) + i);
  }
  void set_length(uint32_t i, uint32_t len) {
    lengths_[(tail_.load(std::memory_order_relaxed) + i) & mask_] = len;
  }
  void commit(uint32_t n) {
    tail_.store(tail_.load(std::memory_order_relaxed) + n,
                std::memory_order_release);
  }

  // ---- consumer side
  // Published index (acquire): packets [head, tail) are readable.
  uint64_t tail() const { return tail_.load(std::memory_order_acquire); }
  uint64_t head() const { return head_.load(std::memory_order_relaxed); }
  const uint8_t* packet(uint64_t index) const { return slot(index); }
  uint32_t length(uint64_t index) const { return lengths_[index & mask_]; }
  void release(uint32_t n) {
    head_.store(head_.load(std::memory_order_relaxed) + n,
                std::memory_order_release);
  }

  // Either side (approximate while the other runs).
  uint32_t queued() const {
    return static_cast<uint32_t>(tail_.load(std::memory_order_acquire) -
                                 head_.load(std::memory_order_acquire));
  }

 private:
  uint8_t* slot(uint64_t index) const {
    return storage_.get() + (index & mask_) * static_cast<size_t>(slot_size_);
  }

  uint32_t mask_;
  uint32_t slot_size_;
  std::unique_ptr<uint8_t[]> storage_;
  std::unique_ptr<uint32_t[]> lengths_;
  alignas(64) std::atomic<uint64_t> head_{0};
  alignas(64) std::atomic<uint64_t> tail_{0};
};

}  // namespace replicate
}  // namespace rqcast

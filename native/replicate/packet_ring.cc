#include "replicate/packet_ring.h"

#include <cstring>

namespace rqcast {
namespace replicate {

static uint32_t round_up_pow2(uint32_t v) {
  uint32_t p = 1;
  while (p < v && p < (1u << 30)) p <<= 1;
  return p;
}

PacketRing::PacketRing(uint32_t capacity, uint32_t slot_size)
    : mask_(round_up_pow2(capacity < 2 ? 2 : capacity) - 1),
      slot_size_(slot_size),
      storage_(new uint8_t[static_cast<size_t>(mask_ + 1) * slot_size]),
      lengths_(new uint32_t[mask_ + 1]()) {}

uint32_t PacketRing::push(const uint8_t* packets, uint32_t packet_size,
                          uint32_t count) {
  if (packet_size > slot_size_ || packet_size == 0) return 0;
  uint32_t n = free_slots();
  if (n > count) n = count;
  for (uint32_t i = 0; i < n; ++i) {
    std::memcpy(producer_slot(i), packets + static_cast<size_t>(i) * packet_size,
                packet_size);
    set_length(i, packet_size);
  }
  commit(n);
  return n;
}

}  // namespace replicate
}  // namespace rqcast

// rqcast — the destinations of one channel: a dense array (what the sender
// walks, in sendmmsg batches, with msg_name pointing straight into it) and an
// index from address to slot, so that add and remove are O(1): a removal
// moves the last destination into the freed slot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "udp/udp.h"

namespace rqcast {
namespace replicate {

// Hashable key: family, port and address bytes (scope id for IPv6).
struct DestinationKey {
  uint8_t bytes[24];
  bool operator==(const DestinationKey& o) const {
    return std::memcmp(bytes, o.bytes, sizeof bytes) == 0;
  }
};
struct DestinationKeyHash {
  size_t operator()(const DestinationKey& k) const;
};
DestinationKey key_of(const udp::Endpoint& e);

class DestinationSet {
 public:
  // false if already present.
  bool add(const udp::Endpoint& e);
  // false if absent.
  bool remove(const udp::Endpoint& e);
  bool contains(const udp::Endpoint& e) const;
  void clear();

  size_t size() const { return dense_.size(); }
  bool empty() const { return dense_.empty(); }
  const udp::Endpoint& operator[](size_t i) const { return dense_[i]; }
  const udp::Endpoint* data() const { return dense_.data(); }

  // Destinations whose route refused a GSO super-datagram (a path MTU below
  // the segment size) get plain datagrams until they are removed.
  bool plain_only(size_t i) const { return plain_only_[i] != 0; }
  void set_plain_only(size_t i) { plain_only_[i] = 1; }
  // The slot whose address `name` points at (a msg_name built from this
  // set), or size() if it points elsewhere.
  size_t index_of_name(const void* name) const;

 private:
  std::vector<udp::Endpoint> dense_;
  std::vector<uint8_t> plain_only_;  // plain_only_[i] belongs to dense_[i]
  std::vector<DestinationKey> keys_;  // keys_[i] is the key of dense_[i]
  std::unordered_map<DestinationKey, size_t, DestinationKeyHash> index_;
};

}  // namespace replicate
}  // namespace rqcast

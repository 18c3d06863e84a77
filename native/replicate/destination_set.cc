#include "replicate/destination_set.h"

#include <netinet/in.h>

#include <cstddef>

namespace rqcast {
namespace replicate {

DestinationKey key_of(const udp::Endpoint& e) {
  DestinationKey k{};
  k.bytes[0] = static_cast<uint8_t>(e.family());
  if (e.family() == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&e.addr);
    std::memcpy(k.bytes + 2, &a->sin_port, 2);
    std::memcpy(k.bytes + 4, &a->sin_addr, 4);
  } else if (e.family() == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&e.addr);
    std::memcpy(k.bytes + 2, &a->sin6_port, 2);
    std::memcpy(k.bytes + 4, &a->sin6_addr, 16);
    std::memcpy(k.bytes + 20, &a->sin6_scope_id, 4);
  }
  return k;
}

size_t DestinationKeyHash::operator()(const DestinationKey& k) const {
  // FNV-1a over 24 bytes: addresses of one deployment differ in few bytes.
  uint64_t h = 1469598103934665603ull;
  for (uint8_t b : k.bytes) {
    h ^= b;
    h *= 1099511628211ull;
  }
  return static_cast<size_t>(h ^ (h >> 29));
}

bool DestinationSet::add(const udp::Endpoint& e) {
  DestinationKey k = key_of(e);
  auto [it, inserted] = index_.emplace(k, dense_.size());
  if (!inserted) return false;
  dense_.push_back(e);
  keys_.push_back(k);
  plain_only_.push_back(0);
  return true;
}

bool DestinationSet::remove(const udp::Endpoint& e) {
  auto it = index_.find(key_of(e));
  if (it == index_.end()) return false;
  size_t slot = it->second;
  size_t last = dense_.size() - 1;
  if (slot != last) {
    dense_[slot] = dense_[last];
    keys_[slot] = keys_[last];
    plain_only_[slot] = plain_only_[last];
    index_[keys_[slot]] = slot;
  }
  dense_.pop_back();
  keys_.pop_back();
  plain_only_.pop_back();
  index_.erase(it);
  return true;
}

bool DestinationSet::contains(const udp::Endpoint& e) const {
  return index_.count(key_of(e)) != 0;
}

size_t DestinationSet::index_of_name(const void* name) const {
  const char* p = static_cast<const char*>(name);
  const char* base = reinterpret_cast<const char*>(dense_.data());
  if (dense_.empty() || p < base) return dense_.size();
  size_t off = static_cast<size_t>(p - base);
  size_t i = off / sizeof(udp::Endpoint);
  if (i >= dense_.size() ||
      off % sizeof(udp::Endpoint) != offsetof(udp::Endpoint, addr))
    return dense_.size();
  return i;
}

void DestinationSet::clear() {
  dense_.clear();
  keys_.clear();
  plain_only_.clear();
  index_.clear();
}

}  // namespace replicate
}  // namespace rqcast

// rqcast — a channel's UDP unicast destinations (both families) as one sink:
// each run goes to every destination, grouped into GSO super-datagrams and
// sendmmsg batches by the engine's DatagramSender.
//
// Sender thread only: the engine applies its add/remove commands here in
// queue order, between runs.
#pragma once

#include <cstddef>
#include <cstdint>

#include "replicate/datagram_sender.h"
#include "replicate/destination_set.h"
#include "replicate/sink.h"
#include "udp/udp.h"

namespace rqcast {
namespace replicate {

class UdpSink : public Sink {
 public:
  explicit UdpSink(DatagramSender& sender) : sender_(sender) {}

  // false if already present / absent. Family AF_INET or AF_INET6.
  bool add(const udp::Endpoint& to) { return set_for(to).add(to); }
  bool remove(const udp::Endpoint& to) { return set_for(to).remove(to); }
  void clear() {
    dests_[0].clear();
    dests_[1].clear();
  }
  const DestinationSet& destinations(int family) const {
    return dests_[family == AF_INET6 ? 1 : 0];
  }

  size_t destination_count() const override {
    return dests_[0].size() + dests_[1].size();
  }
  uint32_t packets_per_message() const override {
    return sender_.packets_per_message();
  }
  // Takes the whole run: what the kernel refuses is counted as dropped.
  uint32_t send(const Run& run, ChannelCounters& counters) override;

 private:
  DestinationSet& set_for(const udp::Endpoint& e) {
    return dests_[e.family() == AF_INET6 ? 1 : 0];
  }

  DatagramSender& sender_;
  DestinationSet dests_[2];  // [0] IPv4, [1] IPv6: one socket each
};

}  // namespace replicate
}  // namespace rqcast

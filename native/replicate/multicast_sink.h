// rqcast — one IP multicast group as a sink: each run of the channel goes
// out once, to the group, whatever the number of receivers (the network
// replicates it, RFC 1112 §2). The sink owns its socket, configured for the
// group (hop limit, loopback, outgoing interface, source address), and
// sends through a DatagramSender of its own: GSO super-datagrams where the
// kernel takes them for the group's route, plain datagrams otherwise.
//
// Built and opened on the caller's thread (every failure is reported before
// the engine holds the sink); from Engine::add_group on, the sender thread
// alone calls send().
#pragma once

#include <cstddef>
#include <cstdint>

#include "replicate/datagram_sender.h"
#include "replicate/destination_set.h"
#include "replicate/sink.h"
#include "udp/udp.h"

namespace rqcast {
namespace replicate {

struct MulticastConfig {
  // A multicast address (224.0.0.0/4, RFC 5771; ff00::/8, RFC 4291 §2.7)
  // and a port other than 0. Its family is the socket's.
  udp::Endpoint group;
  // IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS, 0..255. 1 (the default, as
  // RFC 1112 §6.1 has it) keeps the stream on the local link.
  int hops = 1;
  // Whether receivers on this host get the group's packets.
  bool loop = true;
  // The interface the packets leave by (udp::resolve_interface); index 0:
  // the kernel's choice by route.
  udp::Interface interface;
  // The address the packets carry as their source (family 0: the kernel's
  // choice). A source-specific group is named by (source, group), RFC 4607
  // §1: its receivers accept packets from this address alone, so the
  // socket binds to it. Same family as the group, unicast, of this host.
  udp::Endpoint source;
};

// The step of a group's setup that failed, for an error that names the
// culprit (the group, its interface, its source, or the socket itself).
enum class MulticastStage {
  kNone,
  kGroup,      // not a multicast address of a known family, or port 0
  kHops,       // outside 0..255
  kInterface,  // the interface does not exist or is not of the family
  kSource,     // not a unicast address of the group's family on this host
  kSocket,     // opening the socket or a socket option failed
};

// Checks a config without calling the kernel: 0 or EINVAL, *failed names
// the field.
int check_multicast_config(const MulticastConfig& config,
                           MulticastStage* failed);

class MulticastSink : public Sink {
 public:
  MulticastSink(const MulticastConfig& config, const DatagramOptions& options);

  // Checks the config, opens the group's socket and applies it. Returns 0
  // or an errno value with *failed (if not null) naming the step: EINVAL
  // (a bad config), EADDRNOTAVAIL (a source or interface address that is
  // not this host's), ENODEV (no such interface), EAFNOSUPPORT (no socket
  // of the family on this host), or what the kernel said.
  int open(MulticastStage* failed = nullptr);
  bool is_open() const { return socket_.is_open(); }

  const MulticastConfig& config() const { return config_; }
  // The bound address (the source, with the port the kernel picked).
  int local_endpoint(udp::Endpoint* out) const { return socket_.local_endpoint(out); }
  bool gso_active() const { return sender_.gso_active(); }
  uint64_t gso_fallbacks() const { return sender_.gso_fallbacks(); }

  // One destination, the group (0 before open(): nothing to send to).
  size_t destination_count() const override { return is_open() ? 1 : 0; }
  uint32_t packets_per_message() const override {
    return sender_.packets_per_message();
  }
  // Takes the whole run: what the kernel refuses is counted as dropped.
  uint32_t send(const Run& run, ChannelCounters& counters) override;

 private:
  MulticastConfig config_;
  DatagramOptions options_;
  udp::Socket socket_;
  DatagramSender sender_;
  DestinationSet group_;  // the one destination, where DatagramSender wants a set
};

}  // namespace replicate
}  // namespace rqcast

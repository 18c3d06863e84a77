// rqcast — where a channel's stream goes: the seam between the engine core
// (ring, pacing, commands) and the ways packets leave the host.
//
// Each channel holds a list of sinks: today one UdpSink (its unicast
// destinations, both families); a multicast group (one destination on a
// multicast socket) and each user-space TCP connection (a send buffer with
// its own window) are sinks of their own. The engine hands every sink the
// same runs of ring packets, in stream order, on the sender thread; a sink
// never sees the ring's producer side, the token bucket or the commands.
#pragma once

#include <cstddef>
#include <cstdint>

#include "replicate/channel_counters.h"
#include "replicate/packet_ring.h"

namespace rqcast {
namespace replicate {

// The most packets one run holds: sinks may size per-run scratch by it.
constexpr uint32_t kMaxRunPackets = 1024;

// A run: packets [first, first + count) of a channel's ring, in stream
// order. They are readable during Sink::send(); a sink that keeps one for
// later copies it (once every sink has taken a packet, the producer may
// overwrite its slot).
struct Run {
  const PacketRing* ring = nullptr;
  uint64_t first = 0;  // stream index of packet 0 (counts every packet pushed)
  uint32_t count = 0;
  // The engine's clock for this loop (the injected one under test): a sink
  // that keeps time (a TCP connection's timers) takes it from here and
  // never reads a clock of its own.
  uint64_t now_ns = 0;
  // No other sink of the channel has a destination: the sink may hold
  // packets back (take fewer) without slowing anyone, and a TCP connection
  // then paces the stream instead of dropping what it cannot send yet.
  bool sole = false;

  const uint8_t* packet(uint32_t i) const { return ring->packet(first + i); }
  uint32_t length(uint32_t i) const { return ring->length(first + i); }
  uint64_t stream_index(uint32_t i) const { return first + i; }
};

class Sink {
 public:
  virtual ~Sink() = default;

  // How many receivers each packet goes to (UDP: its destinations; a
  // multicast group or a TCP connection: 1). The engine bounds a run by the
  // wire messages it costs (packets x destinations), so that one channel
  // with many destinations does not hold the sender thread for long, and a
  // channel whose sinks have no destination at all holds its packets.
  virtual size_t destination_count() const = 0;
  bool empty() const { return destination_count() == 0; }

  // Packets one wire message carries at most (UDP GSO segments). A paced
  // channel saves its tokens for up to this many packets (or half its
  // burst, if less) before it sends, so that a run fills whole messages
  // (see Engine::pacing_quantum).
  virtual uint32_t packets_per_message() const { return 1; }

  // Takes packets from the front of the run and returns how many it took:
  // sent, copied into its own buffer, or dropped and counted in `counters`
  // (a fountain stream needs no packet in particular). Packets it did not
  // take are offered again, first, on a later loop of the sender thread, and
  // their ring slots stay held until it takes them: returning fewer than
  // run.count is back-pressure on the whole channel (the producer cannot
  // refill those slots), so a sink that should not slow the others (a TCP
  // connection with a closed window) takes and drops instead. The engine
  // offers the rest again on its next loop, whatever woke it; it does not
  // spin on a sink that took nothing.
  virtual uint32_t send(const Run& run, ChannelCounters& counters) = 0;
};

}  // namespace replicate
}  // namespace rqcast

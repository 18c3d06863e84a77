// rqcast — runs of stream packets onto UDP sockets: grouping into GSO
// super-datagrams, sendmmsg batches over a destination set, and the
// fallbacks of both (plain datagrams where the kernel or a route refuses
// GSO). The engine's one, over its unicast sockets, serves the unicast
// sinks on the sender thread; a multicast group's sink has one of its own
// over the group's socket (open_for), so that a route refusing GSO for the
// group turns it off there alone. The syscalls themselves stay in
// native/udp/.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "replicate/channel_counters.h"
#include "replicate/destination_set.h"
#include "replicate/sink.h"
#include "udp/udp.h"

namespace rqcast {
namespace replicate {

struct DatagramOptions {
  bool gso = true;                     // use UDP GSO when the kernel has it
  int send_buffer_bytes = 4 << 20;     // SO_SNDBUF(FORCE) of each socket
  int send_timeout_ms = 100;           // a send blocked longer is a drop
  uint32_t max_batch = udp::kMaxBatch; // messages per sendmmsg
  uint32_t max_segments = udp::kMaxGsoSegments;  // packets per GSO datagram
};

// A run grouped into datagrams: group k is iov[first[k] .. first[k] +
// segs[k]), bytes[k] long, one GSO super-datagram when segs[k] > 1 (its
// UDP_SEGMENT control message in control[k]).
struct DatagramRun {
  iovec iov[kMaxRunPackets];
  uint32_t first[kMaxRunPackets];
  uint32_t segs[kMaxRunPackets];
  uint64_t bytes[kMaxRunPackets];
  alignas(cmsghdr) uint8_t control[kMaxRunPackets][udp::kGsoControlSize];
  uint32_t groups = 0;
  uint32_t packets = 0;
};

class DatagramSender {
 public:
  explicit DatagramSender(const DatagramOptions& options);
  DatagramSender(const DatagramSender&) = delete;
  DatagramSender& operator=(const DatagramSender&) = delete;

  // Opens the unicast sockets: IPv4, and IPv6 if the host has it (a host
  // without IPv6 still replicates to IPv4). Returns an errno value.
  int open();
  // For a sink whose socket is its own (a multicast group): no unicast
  // sockets, only the scratch, and GSO as far as `own` supports it.
  void open_for(const udp::Socket& own);
  void close();
  bool has_family(int family) const;
  // The unicast socket of the family (closed if the host lacks it).
  udp::Socket& socket(int family) { return family == AF_INET6 ? v6_ : v4_; }

  bool gso_supported() const { return gso_supported_; }
  // Any thread. Off when not asked for, not supported, or refused by the
  // device (EIO): then every message is one packet.
  bool gso_active() const { return gso_active_.load(std::memory_order_relaxed); }
  uint32_t packets_per_message() const {
    return gso_active() ? options_.max_segments : 1;
  }
  uint64_t gso_fallbacks() const { return gso_fallbacks_.load(std::memory_order_relaxed); }
  uint64_t syscalls() const { return syscalls_.load(std::memory_order_relaxed); }

  // ---- sender thread
  // Groups consecutive packets of the run into GSO super-datagrams (or one
  // datagram per packet when GSO is off). The result lives in scratch
  // shared by every caller: valid until the next group().
  const DatagramRun& group(const Run& run);
  // Sends every datagram of `run` to every destination of `set`, in
  // sendmmsg batches through `s`, counting on `counters`. Never fails: what
  // the kernel refuses is counted as dropped.
  void send(udp::Socket& s, DestinationSet& set, const DatagramRun& run,
            ChannelCounters& counters);
  // One datagram outside any run (an ACK's replacement symbol): 0 or an
  // errno value (EAFNOSUPPORT without a socket of that family).
  int send_one(const udp::Endpoint& to, const uint8_t* data, size_t len);

 private:
  void flush(udp::Socket& s, DestinationSet& set, unsigned count,
             ChannelCounters& counters);
  void send_segments_plain(udp::Socket& s, const struct msghdr& h,
                           ChannelCounters& counters);
  void allocate(bool gso_supported);

  DatagramOptions options_;
  udp::Socket v4_, v6_;
  bool gso_supported_ = false;
  std::atomic<bool> gso_active_{false};
  std::atomic<uint64_t> gso_fallbacks_{0}, syscalls_{0};

  // Sender thread scratch.
  std::unique_ptr<DatagramRun> run_;
  std::vector<struct mmsghdr> msgs_;
  std::vector<uint32_t> msg_segs_;
  std::vector<uint64_t> msg_bytes_;
  std::vector<struct mmsghdr> plain_;  // a refused GSO message, split
};

}  // namespace replicate
}  // namespace rqcast

// rqcast — a bound UDP socket read in batches: recvmmsg straight into one
// scratch area, then the datagrams packed end to end with their lengths and
// source addresses, so that a consumer in another runtime (JS) takes many
// datagrams per hand-over instead of one callback each.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "udp/udp.h"

namespace rqcast {
namespace udp {

// Bytes per source record in ReceivedBatch::sources: family (4 or 6),
// reserved, port (big-endian), then 16 address bytes (IPv4 in the first 4).
constexpr size_t kSourceRecordSize = 20;

struct ReceivedBatch {
  std::vector<uint8_t> data;      // datagrams laid end to end
  std::vector<uint32_t> lengths;  // one per datagram
  std::vector<uint8_t> sources;   // kSourceRecordSize bytes per datagram
  uint32_t truncated = 0;         // longer than max_datagram: dropped
  size_t count() const { return lengths.size(); }
  void clear() {
    data.clear();
    lengths.clear();
    sources.clear();
    truncated = 0;
  }
};

void write_source_record(const sockaddr_storage& from, uint8_t* out);

class BatchReceiver {
 public:
  // Binds `local`; max_datagram is the largest datagram kept whole (longer
  // ones are counted in `truncated` and dropped), batch about the most
  // datagrams one receive() returns (a coalesced message is taken whole,
  // so it may return up to 63 more). With `gro` (and a kernel that has
  // UDP_GRO) the kernel may hand over a run of equally sized datagrams from
  // one sender as one message, which is split here: the batch looks the
  // same, and neither the kernel nor this thread handles each datagram on
  // its own. With reuse_address, other sockets of this host may bind the
  // same address and port (Socket::open_bound): receivers of one multicast
  // group port side by side. The socket gets the multicast datagrams of the
  // groups it joins itself (Socket::join_group) and no others
  // (Socket::set_multicast_all). Returns an errno value.
  int open(const Endpoint& local, int receive_buffer_bytes,
           uint32_t max_datagram, uint32_t batch, bool gro = true,
           bool reuse_address = false);
  // Whether UDP_GRO is on; messages that arrived coalesced (> 1 datagram).
  bool gro() const { return gro_; }
  uint64_t coalesced_messages() const { return coalesced_; }
  // Blocks until datagrams arrive, then appends up to `batch` of them to
  // *out. Returns 0, ECANCELED once stop() was called, or an errno value.
  int receive(ReceivedBatch* out);
  // With a gather window, a receive() that got fewer than `batch`
  // datagrams waits up to that long (stop() cuts it short) and takes what
  // arrived meanwhile, so that a paced stream is handed over in batches
  // instead of one wake-up (here and in the consumer) per datagram. 0 (the
  // default) returns at once. Any thread: a receive() under way uses the
  // window it read when its datagrams arrived.
  void set_gather_ns(uint64_t ns) {
    gather_ns_.store(ns, std::memory_order_relaxed);
  }
  // Any thread: makes the current and every later receive() return
  // ECANCELED.
  void stop();
  Socket& socket() { return socket_; }

 private:
  Socket socket_;
  Waker waker_;
  uint32_t max_datagram_ = 0;
  uint32_t batch_ = 0;
  std::atomic<uint64_t> gather_ns_{0};
  bool gro_ = false;
  uint32_t slot_ = 0;      // bytes per message buffer
  uint32_t messages_ = 0;  // message buffers (recvmmsg entries)
  std::atomic<uint64_t> coalesced_{0};
  std::unique_ptr<uint8_t[]> control_;  // kGroControlSize per message
  // One recvmmsg of at most `room` messages appended to *out; returns the
  // datagrams taken (kept or truncated), or -1 with *err.
  int receive_once(ReceivedBatch* out, uint32_t room, int* err);
  std::unique_ptr<uint8_t[]> scratch_;  // messages_ * slot_
  std::vector<struct mmsghdr> msgs_;
  std::vector<struct iovec> iov_;
  std::vector<sockaddr_storage> from_;
};

}  // namespace udp
}  // namespace rqcast

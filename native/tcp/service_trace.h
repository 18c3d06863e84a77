// rqcast — the TCP service thread's debug trace: what a benchmark needs to
// see of the sender that counters do not show (docs/ARCHITECTURE.md, "TCP").
//
// Off unless the environment names a file: RQCAST_TCP_TRACE=PATH. Then the
// thread writes, as plain text lines:
//  - `conn T ID ...` every kSampleNs for each connection it touched since
//    the last sample: cwnd, ssthresh, flight, pipe, SRTT, recovery state, the
//    peer's window and
//    the loss-recovery counters (so cwnd and ssthresh over time, and how
//    many recoveries, RTOs, probes a transfer took);
//  - `closed T ID ...` the same for a connection at its close;
//  - `loop ...` at the end: how often the thread woke and why, packets per
//    wake-up, its busy time, and how long each received segment waited in
//    the socket before the thread handed it to its connection (from the
//    kernel's receive timestamp, SO_TIMESTAMPNS): the service loop's share
//    of the round trip the congestion control sees; and, for each pass
//    that sent segments, how long after the pass began (the send time its
//    segments' records carry, so the start of their RTT samples) the last
//    of them was handed to the kernel: the loop's other share.
// Nothing here runs when the trace is off but a null check.
#pragma once

#include <cstdint>
#include <cstdio>

#include "tcp/connection.h"

namespace rqcast {
namespace tcp {

class ServiceTrace {
 public:
  static constexpr uint64_t kSampleNs = 10000000ull;   // 10 ms
  // Latency buckets' upper edges in µs; the last bucket is everything above.
  static constexpr int kBuckets = 10;
  static constexpr uint32_t kEdgesUs[kBuckets - 1] = {5, 10, 25, 50, 100, 250, 1000, 5000, 20000};

  // A trace to the file RQCAST_TCP_TRACE names, or nullptr.
  static ServiceTrace* FromEnvironment();
  ~ServiceTrace();

  // A segment the kernel queued at rx_realtime_ns was handed on at now.
  void Received(uint64_t rx_realtime_ns, uint64_t now_realtime_ns);
  // A pass that sent segments handed the last to the kernel held_ns after it began.
  void Sent(uint64_t held_ns);
  // One pass of the loop: what woke it, packets it took, busy time.
  void Loop(bool by_socket, bool by_queue, bool by_timer, uint64_t packets, uint64_t busy_ns);
  bool SampleDue(uint64_t now_ns) const { return now_ns >= next_sample_ns_; }
  void Sampled(uint64_t now_ns) { next_sample_ns_ = now_ns + kSampleNs; }
  void Connection(const char* what, uint64_t now_ns, uint32_t id, const ConnectionStats& s);
  // The loop's figures so far (written at the end, and again at each close).
  void Summary();

 private:
  explicit ServiceTrace(FILE* f) : f_(f) {}
  FILE* f_;
  uint64_t start_ns_ = 0, next_sample_ns_ = 0;
  uint64_t loops_ = 0, by_socket_ = 0, by_queue_ = 0, by_timer_ = 0, packets_ = 0;
  uint64_t busy_ns_ = 0, max_busy_ns_ = 0;
  uint64_t stamped_ = 0, wait_ns_ = 0, max_wait_ns_ = 0;
  uint64_t buckets_[kBuckets] = {};
  uint64_t sending_passes_ = 0, held_ns_ = 0, max_held_ns_ = 0;
  uint64_t held_buckets_[kBuckets] = {};
};

}  // namespace tcp
}  // namespace rqcast

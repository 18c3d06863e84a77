// rqcast — one channel's counters, written by the sender thread (the engine
// core and the channel's sinks) and read by anyone.
#pragma once

#include <errno.h>

#include <atomic>
#include <cstdint>

namespace rqcast {
namespace replicate {

// One writer (the sender thread), any number of readers: a relaxed load and
// store, not a locked read-modify-write, on the per-run path.
struct Counter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n) {
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void set(uint64_t n) { v.store(n, std::memory_order_relaxed); }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

struct ChannelCounters {
  Counter stream_packets;  // ring packets the stream moved past (engine)
  Counter datagrams;       // wire datagrams (GSO segments counted)
  Counter bytes;           // payload bytes of those datagrams
  Counter syscalls;
  Counter gso_sends;       // super-datagrams handed to the kernel
  Counter drops_eagain;    // send timed out on a full buffer
  Counter drops_enobufs;
  Counter errors;          // other per-destination errors
  Counter one_offs;        // datagrams outside the stream (engine)
  Counter tcp_packets;     // stream packets copied into TCP connections' pools (TcpSink, each connection counted)
  Counter tcp_bytes;       // their bytes
  Counter pacing_forfeited;  // bytes of rate stalls took beyond the burst (pacing.h)
  Counter pacing_repaid;     // of them, paid back later

  // Counts the datagrams a failed send carried, by why it failed.
  void count_error(int err, uint64_t lost) {
    if (err == EAGAIN || err == EWOULDBLOCK)
      drops_eagain.add(lost);
    else if (err == ENOBUFS)
      drops_enobufs.add(lost);
    else
      errors.add(lost);
  }
};

}  // namespace replicate
}  // namespace rqcast

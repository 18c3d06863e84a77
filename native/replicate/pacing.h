// rqcast — per-channel pacing: a token bucket in bytes per second.
//
// Clock-free: the caller passes the current time (ns, any monotonic origin),
// so the arithmetic is a deterministic unit test. Tokens are kept in
// byte-nanoseconds-per-second units ("nano-bytes": 1 byte = 1e9) so that a
// refill never loses a fraction of a byte, whatever the interval: the rate
// stays exact over hours.
//
// Catch-up: a sender thread that runs late (the machine's other work held
// the CPU) finds more time passed than its run needed. A bucket capped at
// the burst forfeits whatever lateness exceeds the burst less the run it
// waited for, and the channel sends below its rate (bench:e2e, 3 receivers
// on 2 shared cores at load 5-10: 5-14 % of the rate forfeited, all of it
// with packets queued). So a busy channel keeps up to `catch_up` bytes beyond the burst
// and sends them at once; time that passes while the channel has nothing to
// send (rest()) earns no more than the burst, so an idle channel never
// bursts more than before. The catch-up is small (5 ms, default_catch_up):
// a larger one (25 ms) let a channel on a starved machine run ahead of its
// receivers' NEED reports (docs/BENCHMARKS.md, 2026-12-04).
#pragma once

#include <cstdint>

namespace rqcast {
namespace replicate {

class TokenBucket {
 public:
  static constexpr int64_t kNano = 1000000000;

  TokenBucket() = default;
  // rate 0 means unpaced: every take succeeds.
  TokenBucket(uint64_t rate_bytes_per_s, uint64_t burst_bytes, uint64_t now_ns,
              uint64_t catch_up_bytes = 0)
      : rate_(rate_bytes_per_s),
        burst_(burst_bytes),
        catch_up_(catch_up_bytes),
        tokens_(static_cast<__int128>(burst_bytes) * kNano),
        last_ns_(now_ns) {}

  // Keeps the tokens held (capped at the new burst).
  void reconfigure(uint64_t rate_bytes_per_s, uint64_t burst_bytes,
                   uint64_t now_ns, uint64_t catch_up_bytes = 0) {
    rest(now_ns);
    rate_ = rate_bytes_per_s;
    burst_ = burst_bytes;
    catch_up_ = catch_up_bytes;
    clamp(burst_);
  }

  bool unpaced() const { return rate_ == 0; }
  uint64_t rate() const { return rate_; }
  uint64_t burst() const { return burst_; }
  uint64_t catch_up() const { return catch_up_; }
  // Whole bytes available (may be negative after a forced take).
  int64_t tokens() const { return static_cast<int64_t>(tokens_ / kNano); }

  // Time passed while the channel had packets to send: all of it kept if
  // that stays within the burst plus the catch-up (a sender a few ms late);
  // beyond that it was a stall, and the bucket keeps the burst only, as
  // after idling: a machine that held the sender that long holds its
  // receivers too, and a channel that then sent what it owed would run
  // ahead of their NEED reports (test/client/e2e-need.test.ts).
  void refill(uint64_t now_ns) {
    add_time(now_ns);
    if (tokens_ > static_cast<__int128>(burst_ + catch_up_) * kNano) clamp(burst_);
  }

  // Time passed while the channel had nothing to send (no packets, no
  // destination, paused): kept up to the burst only.
  void rest(uint64_t now_ns) {
    add_time(now_ns);
    clamp(burst_);
  }

  // Takes bytes if the bucket holds them.
  bool try_take(uint64_t bytes) {
    if (rate_ == 0) return true;
    __int128 need = static_cast<__int128>(bytes) * kNano;
    if (tokens_ < need) return false;
    tokens_ -= need;
    return true;
  }

  // Takes bytes even into debt (one-off packets sent on the channel's
  // account): the stream then waits until the debt is repaid.
  void force_take(uint64_t bytes) {
    if (rate_ == 0) return;
    tokens_ -= static_cast<__int128>(bytes) * kNano;
  }

  // Nanoseconds from the last refill until `bytes` can be taken; 0 if now.
  // A request larger than the burst can never be met: callers size the
  // burst to at least one packet.
  uint64_t wait_ns(uint64_t bytes) const {
    if (rate_ == 0) return 0;
    __int128 need = static_cast<__int128>(bytes) * kNano - tokens_;
    if (need <= 0) return 0;
    __int128 ns = (need + rate_ - 1) / rate_;
    return ns > static_cast<__int128>(UINT64_MAX) ? UINT64_MAX
                                                  : static_cast<uint64_t>(ns);
  }

 private:
  void add_time(uint64_t now_ns) {
    if (now_ns <= last_ns_) return;  // a clock that steps back adds nothing
    tokens_ += static_cast<__int128>(rate_) * (now_ns - last_ns_);
    last_ns_ = now_ns;
  }

  void clamp(uint64_t cap_bytes) {
    __int128 cap = static_cast<__int128>(cap_bytes) * kNano;
    if (tokens_ > cap) tokens_ = cap;
  }

  uint64_t rate_ = 0;
  uint64_t burst_ = 0;
  uint64_t catch_up_ = 0;
  __int128 tokens_ = 0;
  uint64_t last_ns_ = 0;
};

// Default burst: 5 ms of the rate, at least two packets, so the sender
// thread's wake-up granularity (~0.1 ms) never starves a paced channel.
inline uint64_t default_burst(uint64_t rate_bytes_per_s, uint32_t packet_size) {
  uint64_t b = rate_bytes_per_s / 200;
  uint64_t min = 2ull * packet_size;
  return b < min ? min : b;
}

// Default catch-up: 5 ms of the rate, as much as the default burst. A sender
// thread late by up to that much beyond what the burst absorbs still sends
// what the rate owed; a longer stall is forfeited down to the burst (a
// channel never sends more than rate x time + burst + catch-up). Measured on bench:e2e
// (3 receivers, 2 shared cores, load 5-10): 5 ms would have recovered
// 66-72 % of what a burst-capped bucket forfeited, 10 ms 84-90 %, 25 ms 98 %.
inline uint64_t default_catch_up(uint64_t rate_bytes_per_s) {
  return rate_bytes_per_s / 200;
}

}  // namespace replicate
}  // namespace rqcast

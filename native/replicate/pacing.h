// rqcast — per-channel pacing: a token bucket in bytes per second.
//
// Clock-free: the caller passes the current time (ns, any monotonic origin),
// so the arithmetic is a deterministic unit test. Tokens are kept in
// byte-nanoseconds-per-second units ("nano-bytes": 1 byte = 1e9) so that a
// refill never loses a fraction of a byte, whatever the interval: the rate
// stays exact over hours.
#pragma once

#include <cstdint>

namespace rqcast {
namespace replicate {

class TokenBucket {
 public:
  static constexpr int64_t kNano = 1000000000;

  TokenBucket() = default;
  // rate 0 means unpaced: every take succeeds.
  TokenBucket(uint64_t rate_bytes_per_s, uint64_t burst_bytes, uint64_t now_ns)
      : rate_(rate_bytes_per_s),
        burst_(burst_bytes),
        tokens_(static_cast<__int128>(burst_bytes) * kNano),
        last_ns_(now_ns) {}

  // Keeps the tokens held (capped at the new burst).
  void reconfigure(uint64_t rate_bytes_per_s, uint64_t burst_bytes,
                   uint64_t now_ns) {
    refill(now_ns);
    rate_ = rate_bytes_per_s;
    burst_ = burst_bytes;
    clamp();
  }

  bool unpaced() const { return rate_ == 0; }
  uint64_t rate() const { return rate_; }
  uint64_t burst() const { return burst_; }
  // Whole bytes available (may be negative after a forced take).
  int64_t tokens() const { return static_cast<int64_t>(tokens_ / kNano); }

  void refill(uint64_t now_ns) {
    if (now_ns <= last_ns_) return;  // a clock that steps back adds nothing
    tokens_ += static_cast<__int128>(rate_) * (now_ns - last_ns_);
    last_ns_ = now_ns;
    clamp();
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
  void clamp() {
    __int128 cap = static_cast<__int128>(burst_) * kNano;
    if (tokens_ > cap) tokens_ = cap;
  }

  uint64_t rate_ = 0;
  uint64_t burst_ = 0;
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

}  // namespace replicate
}  // namespace rqcast

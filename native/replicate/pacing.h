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
//
// Repayment: a stall (lateness beyond burst + catch-up) still leaves the
// bucket holding the burst only, but what it forfeited while packets were
// queued is owed (up to `repay_cap` bytes) and paid back slowly: while
// anything is owed the bucket fills at 9/8 of the rate, never in a burst.
// On a machine that held the sender thread 10-100 ms at a time (3 receivers
// and the server on 2 cores: 1.5-7 % of the rate forfeited in bench:e2e)
// the channel keeps its rate on average; its bursts stay within burst +
// catch-up. Idle time (rest) owes nothing and forgives any debt.
#pragma once

#include <cstdint>

namespace rqcast {
namespace replicate {

class TokenBucket {
 public:
  static constexpr int64_t kNano = 1000000000;
  // While bytes are owed the bucket fills at (1 + 1/kRepayDivisor) x rate.
  static constexpr int64_t kRepayDivisor = 8;

  TokenBucket() = default;
  // rate 0 means unpaced: every take succeeds.
  TokenBucket(uint64_t rate_bytes_per_s, uint64_t burst_bytes, uint64_t now_ns,
              uint64_t catch_up_bytes = 0, uint64_t repay_cap_bytes = 0)
      : rate_(rate_bytes_per_s),
        burst_(burst_bytes),
        catch_up_(catch_up_bytes),
        repay_cap_(repay_cap_bytes),
        tokens_(static_cast<__int128>(burst_bytes) * kNano),
        last_ns_(now_ns) {}

  // Keeps the tokens held (capped at the new burst).
  void reconfigure(uint64_t rate_bytes_per_s, uint64_t burst_bytes,
                   uint64_t now_ns, uint64_t catch_up_bytes = 0,
                   uint64_t repay_cap_bytes = 0) {
    rest(now_ns);
    rate_ = rate_bytes_per_s;
    burst_ = burst_bytes;
    catch_up_ = catch_up_bytes;
    repay_cap_ = repay_cap_bytes;
    clamp(burst_);
  }

  bool unpaced() const { return rate_ == 0; }
  uint64_t rate() const { return rate_; }
  uint64_t burst() const { return burst_; }
  uint64_t catch_up() const { return catch_up_; }
  uint64_t repay_cap() const { return repay_cap_; }
  // Whole bytes forfeited by stalls and not yet paid back.
  uint64_t owed() const { return static_cast<uint64_t>(owed_ / kNano); }
  // Whole bytes stalls took beyond the burst, and of them paid back, since
  // creation (what the channel never sent: the difference).
  uint64_t forfeited_total() const { return static_cast<uint64_t>(forfeited_ / kNano); }
  uint64_t repaid_total() const { return static_cast<uint64_t>(repaid_ / kNano); }
  // Whole bytes available (may be negative after a forced take).
  int64_t tokens() const { return static_cast<int64_t>(tokens_ / kNano); }

  // Time passed while the channel had packets to send: all of it kept if
  // that stays within the burst plus the catch-up (a sender a few ms late);
  // beyond that it was a stall, and the bucket keeps the burst only, as
  // after idling: a machine that held the sender that long holds its
  // receivers too, and a channel that then sent what it owed at once would
  // run ahead of their NEED reports (test/client/e2e-need.test.ts). What the
  // stall took is owed instead, and paid back at an eighth of the rate.
  // Returns whether forfeited_total() or repaid_total() may have changed (a
  // stall, or a repayment): most refills touch neither.
  bool refill(uint64_t now_ns) {
    bool changed = false;
    uint64_t dt = add_time(now_ns);
    if (owed_ > 0 && dt > 0) {
      __int128 pay = static_cast<__int128>(rate_) * dt / kRepayDivisor;
      if (pay > owed_) pay = owed_;
      owed_ -= pay;
      tokens_ += pay;
      repaid_ += pay;
      changed = true;
    }
    const __int128 burst = static_cast<__int128>(burst_) * kNano;
    if (tokens_ > static_cast<__int128>(burst_ + catch_up_) * kNano) {
      const __int128 lost = tokens_ - burst;
      const __int128 cap = static_cast<__int128>(repay_cap_) * kNano;
      const __int128 room = cap > owed_ ? cap - owed_ : 0;
      const __int128 keep = lost < room ? lost : room;
      owed_ += keep;
      forfeited_ += lost;
      tokens_ = burst;
      changed = true;
    }
    return changed;
  }

  // Time passed while the channel had nothing to send (no packets, no
  // destination, paused): kept up to the burst only, and nothing is owed.
  void rest(uint64_t now_ns) {
    add_time(now_ns);
    clamp(burst_);
    owed_ = 0;
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
  // Adds the rate over the time since the last call; returns that time (ns).
  uint64_t add_time(uint64_t now_ns) {
    if (now_ns <= last_ns_) return 0;  // a clock that steps back adds nothing
    const uint64_t dt = now_ns - last_ns_;
    tokens_ += static_cast<__int128>(rate_) * dt;
    last_ns_ = now_ns;
    return dt;
  }

  void clamp(uint64_t cap_bytes) {
    __int128 cap = static_cast<__int128>(cap_bytes) * kNano;
    if (tokens_ > cap) tokens_ = cap;
  }

  uint64_t rate_ = 0;
  uint64_t burst_ = 0;
  uint64_t catch_up_ = 0;
  uint64_t repay_cap_ = 0;
  __int128 tokens_ = 0;
  __int128 owed_ = 0;
  __int128 forfeited_ = 0;
  __int128 repaid_ = 0;
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

// Default repayment cap: 100 ms of the rate, paid back within 800 ms at an
// eighth of the rate. A stall beyond it is a machine too busy to hold the
// rate at all; the channel forfeits the rest.
inline uint64_t default_repay_cap(uint64_t rate_bytes_per_s) {
  return rate_bytes_per_s / 10;
}

}  // namespace replicate
}  // namespace rqcast

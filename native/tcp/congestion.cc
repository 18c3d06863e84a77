// rqcast — NewReno with SACK loss recovery (see congestion.h).
#include "tcp/congestion.h"

namespace rqcast {
namespace tcp {

void NewReno::Init(uint32_t smss, uint32_t initial_segments, uint32_t max_cwnd,
                   bool cubic_beta) {
  smss_ = smss;
  cubic_beta_ = cubic_beta;
  max_cwnd_ = max_cwnd < 2 * smss ? 2 * smss : max_cwnd;
  cwnd_ = Clamp(uint64_t(initial_segments == 0 ? 1 : initial_segments) * smss);
  ssthresh_ = max_cwnd_;   // "arbitrarily high" (RFC 5681 §3.1)
  w_max_ = 0;
  acked_in_avoidance_ = 0;
}

uint32_t NewReno::HalfFlight(uint32_t flight) const {
  const uint32_t reduced =
      cubic_beta_ ? static_cast<uint32_t>(uint64_t(flight) * kBetaNum / kBetaDen) : flight / 2;
  return reduced < 2 * smss_ ? 2 * smss_ : reduced;
}

void NewReno::NoteCongestion() {
  // RFC 9438 §4.7 fast convergence: a window that did not get back to the
  // last W_max gives up more of it.
  const uint64_t w = cwnd_ < w_max_ ? uint64_t(cwnd_) * (kBetaDen + kBetaNum) / (2 * kBetaDen)
                                    : cwnd_;
  w_max_ = Clamp(w);
}

void NewReno::OnAck(uint32_t acked) {
  if (cwnd_ < ssthresh_) {
    cwnd_ = Clamp(uint64_t(cwnd_) + (acked < smss_ ? acked : smss_));
    return;
  }
  // α = 3 (1 - β) / (1 + β) = 9/17 SMSS per cwnd acknowledged below W_max,
  // 1 SMSS above it (RFC 9438 §4.3): one SMSS per cwnd * 17/9 bytes.
  acked_in_avoidance_ += acked;
  const uint64_t per_smss = cubic_beta_ && cwnd_ < w_max_
                                ? uint64_t(cwnd_) * kAlphaDen / kAlphaNum
                                : uint64_t(cwnd_);
  if (acked_in_avoidance_ >= per_smss) {
    acked_in_avoidance_ -= per_smss;
    cwnd_ = Clamp(uint64_t(cwnd_) + smss_);
  }
}

void NewReno::EnterRecovery(uint32_t flight, bool sack) {
  NoteCongestion();
  ssthresh_ = HalfFlight(flight);
  cwnd_ = sack ? ssthresh_ : Clamp(uint64_t(ssthresh_) + 3 * smss_);
  acked_in_avoidance_ = 0;
}

void NewReno::OnDupAckInRecovery(bool sack) {
  if (!sack) cwnd_ = Clamp(uint64_t(cwnd_) + smss_);
}

void NewReno::OnPartialAck(uint32_t acked, bool sack) {
  if (sack) return;
  // RFC 6582 §3.2 step 5: deflate by the amount acknowledged, add back one
  // SMSS if that was at least one SMSS.
  cwnd_ = acked >= cwnd_ ? smss_ : cwnd_ - acked;
  if (acked >= smss_) cwnd_ = Clamp(uint64_t(cwnd_) + smss_);
}

void NewReno::ExitRecovery(uint32_t flight, bool sack) {
  if (sack) {
    cwnd_ = ssthresh_;
  } else {
    const uint64_t f = uint64_t(flight > smss_ ? flight : smss_) + smss_;
    cwnd_ = Clamp(f < ssthresh_ ? f : ssthresh_);
  }
  acked_in_avoidance_ = 0;
}

void NewReno::OnTimeout(uint32_t flight, bool first) {
  if (first) {
    NoteCongestion();
    ssthresh_ = HalfFlight(flight);
  }
  cwnd_ = smss_;
  acked_in_avoidance_ = 0;
}

}  // namespace tcp
}  // namespace rqcast

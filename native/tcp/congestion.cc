// rqcast — NewReno with SACK loss recovery (see congestion.h).
#include "tcp/congestion.h"

namespace rqcast {
namespace tcp {

void NewReno::Init(uint32_t smss, uint32_t initial_segments, uint32_t max_cwnd) {
  smss_ = smss;
  max_cwnd_ = max_cwnd < 2 * smss ? 2 * smss : max_cwnd;
  cwnd_ = Clamp(uint64_t(initial_segments == 0 ? 1 : initial_segments) * smss);
  ssthresh_ = max_cwnd_;   // "arbitrarily high" (RFC 5681 §3.1)
  acked_in_avoidance_ = 0;
}

uint32_t NewReno::HalfFlight(uint32_t flight) const {
  const uint32_t half = flight / 2;
  return half < 2 * smss_ ? 2 * smss_ : half;
}

void NewReno::OnAck(uint32_t acked) {
  if (cwnd_ < ssthresh_) {
    cwnd_ = Clamp(uint64_t(cwnd_) + (acked < smss_ ? acked : smss_));
    return;
  }
  acked_in_avoidance_ += acked;
  if (acked_in_avoidance_ >= cwnd_) {
    acked_in_avoidance_ -= cwnd_;
    cwnd_ = Clamp(uint64_t(cwnd_) + smss_);
  }
}

void NewReno::EnterRecovery(uint32_t flight, bool sack) {
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
  if (first) ssthresh_ = HalfFlight(flight);
  cwnd_ = smss_;
  acked_in_avoidance_ = 0;
}

}  // namespace tcp
}  // namespace rqcast

// rqcast — the RFC 6298 retransmission timeout (see rtt.h).
#include "tcp/rtt.h"

namespace rqcast {
namespace tcp {

RttEstimator::RttEstimator(uint64_t initial_ns, uint64_t min_ns, uint64_t max_ns,
                           uint64_t granularity_ns)
    : min_ns_(min_ns), max_ns_(max_ns), granularity_ns_(granularity_ns) {
  base_rto_ns_ = Clamp(initial_ns);
  rto_ns_ = base_rto_ns_;
}

uint64_t RttEstimator::Clamp(uint64_t v) const {
  if (v < min_ns_) v = min_ns_;
  if (v > max_ns_) v = max_ns_;
  return v;
}

void RttEstimator::Sample(uint64_t r) {
  if (!has_sample_) {
    srtt_ns_ = r;           // §2.2
    rttvar_ns_ = r / 2;
    has_sample_ = true;
  } else {                  // §2.3, alpha 1/8, beta 1/4
    const uint64_t diff = srtt_ns_ > r ? srtt_ns_ - r : r - srtt_ns_;
    rttvar_ns_ = (3 * rttvar_ns_ + diff) / 4;
    srtt_ns_ = (7 * srtt_ns_ + r) / 8;
  }
  const uint64_t k_var = 4 * rttvar_ns_;
  base_rto_ns_ = Clamp(srtt_ns_ + (k_var > granularity_ns_ ? k_var : granularity_ns_));
  rto_ns_ = base_rto_ns_;
}

void RttEstimator::Reinitialize(uint64_t rto_ns) {
  if (has_sample_) return;
  base_rto_ns_ = Clamp(rto_ns);
  rto_ns_ = base_rto_ns_;
}

void RttEstimator::Backoff() {
  rto_ns_ = rto_ns_ >= max_ns_ / 2 ? max_ns_ : rto_ns_ * 2;
}

}  // namespace tcp
}  // namespace rqcast

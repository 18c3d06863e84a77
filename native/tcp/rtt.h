// rqcast — the retransmission timeout (RFC 6298): smoothed RTT, RTT
// variation, the RTO computed from them, and its exponential backoff.
//
// Deviations, as Linux: the lower bound is a parameter (200 ms by default in
// Config, not the RFC's 1 s). Samples come from the caller, who applies
// Karn's rule (no sample from a retransmitted segment unless timestamps
// tell which transmission was acknowledged, RFC 7323 §4).
#pragma once

#include <cstdint>

namespace rqcast {
namespace tcp {

class RttEstimator {
 public:
  RttEstimator(uint64_t initial_ns, uint64_t min_ns, uint64_t max_ns,
               uint64_t granularity_ns);

  // One RTT measurement (RFC 6298 §2.2, §2.3); clears the backoff, as the
  // new RTO is computed from fresh measurements (§5.7).
  void Sample(uint64_t rtt_ns);
  // The timer expired: RTO doubles, up to the maximum (§5.5).
  void Backoff();
  // Without a sample yet: RTO becomes rto_ns (clamped), backoff cleared —
  // §5.7's 3 s once data starts after a SYN's timer expired.
  void Reinitialize(uint64_t rto_ns);

  uint64_t rto_ns() const { return rto_ns_; }
  bool has_sample() const { return has_sample_; }
  uint64_t srtt_ns() const { return srtt_ns_; }
  uint64_t rttvar_ns() const { return rttvar_ns_; }

 private:
  uint64_t Clamp(uint64_t v) const;

  uint64_t min_ns_, max_ns_, granularity_ns_;
  uint64_t srtt_ns_ = 0, rttvar_ns_ = 0;
  uint64_t base_rto_ns_;   // from the estimates, before backoff
  uint64_t rto_ns_;        // base_rto_ns_ with the backoff applied
  bool has_sample_ = false;
};

}  // namespace tcp
}  // namespace rqcast

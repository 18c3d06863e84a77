// rqcast — NewReno congestion control (RFC 5681, RFC 6582), with the loss
// recovery of RFC 6675 when SACK is on: the window (cwnd, ssthresh) only;
// which segment goes next is the connection's business (scoreboard.h).
//
//  - slow start: cwnd grows by min(acked, SMSS) per ACK (RFC 5681 §3.1,
//    appropriate byte counting with L = 1 SMSS, RFC 3465);
//  - congestion avoidance: α SMSS per cwnd of acknowledged bytes;
//  - fast recovery: ssthresh = max(β FlightSize, 2 SMSS). With SACK the
//    connection's PRR (RFC 6937) sets cwnd on each ACK (SetRecoveryCwnd)
//    and pipe decides what may be sent (RFC 6675 §5); without, cwnd is inflated by each duplicate ACK and deflated by each
//    partial ACK (RFC 6582 §3.2), and on the full ACK set to
//    min(ssthresh, FlightSize + SMSS);
//  - timeout: ssthresh as above (RFC 9438 §4.8; only on the first timeout
//    of a series, RFC 5681 §3.1 eq. 4 note), cwnd = 1 SMSS (the loss window).
// β and α are CUBIC's (RFC 9438): β = 0.7 (§4.6) and, for the same average
// share as Reno's (α 1, β 0.5), α = 3 (1 - β) / (1 + β) = 9/17 SMSS (§4.3)
// until cwnd is back at W_max (cwnd at the last congestion event, lowered
// by fast convergence, §4.7), 1 SMSS above it. That is CUBIC's Reno-friendly
// region without the cubic curve: on a path of a few hundred µs RTT CUBIC
// is exactly this, and elsewhere this grows no faster than CUBIC would.
// cwnd never exceeds max_cwnd.
#pragma once

#include <cstdint>

namespace rqcast {
namespace tcp {

class NewReno {
 public:
  // RFC 9438's β_cubic, and its Reno-friendly α = 3 (1 - β) / (1 + β).
  static constexpr uint32_t kBetaNum = 7, kBetaDen = 10;
  static constexpr uint32_t kAlphaNum = 9, kAlphaDen = 17;

  // cubic_beta: RFC 9438's β and α (below); false: Reno's 0.5 and 1.
  void Init(uint32_t smss, uint32_t initial_segments, uint32_t max_cwnd,
            bool cubic_beta = true);

  // New data acknowledged outside fast recovery.
  void OnAck(uint32_t acked);
  // Three duplicate ACKs (or SACK says the first segment is lost).
  void EnterRecovery(uint32_t flight, bool sack);
  // Without SACK: each further duplicate ACK during recovery.
  void OnDupAckInRecovery(bool sack);
  // An ACK below the recovery point during recovery.
  void OnPartialAck(uint32_t acked, bool sack);
  // The ACK that covers the recovery point; flight after it.
  void ExitRecovery(uint32_t flight, bool sack);
  // The retransmission timer expired; first: the first expiry of a series.
  void OnTimeout(uint32_t flight, bool first);
  // PRR (RFC 6937) sets cwnd on each ACK of a SACK recovery.
  void SetRecoveryCwnd(uint32_t cwnd) { cwnd_ = Clamp(cwnd); }

  uint32_t cwnd() const { return cwnd_; }
  uint32_t ssthresh() const { return ssthresh_; }
  uint32_t smss() const { return smss_; }

 private:
  uint32_t Clamp(uint64_t v) const { return v > max_cwnd_ ? max_cwnd_ : static_cast<uint32_t>(v); }
  // ssthresh after a congestion event: max(β FlightSize, 2 SMSS).
  uint32_t HalfFlight(uint32_t flight) const;
  // A congestion event: W_max (RFC 9438 §4.7) from cwnd.
  void NoteCongestion();

  uint32_t smss_ = 1460;
  uint32_t max_cwnd_ = 1u << 30;
  uint32_t cwnd_ = 0;
  uint32_t ssthresh_ = 0;
  uint32_t acked_in_avoidance_ = 0;
  uint32_t w_max_ = 0;            // W_max: cwnd at the last congestion event
  bool cubic_beta_ = true;
};

}  // namespace tcp
}  // namespace rqcast

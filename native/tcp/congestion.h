// rqcast — NewReno congestion control (RFC 5681, RFC 6582), with the loss
// recovery of RFC 6675 when SACK is on: the window (cwnd, ssthresh) only;
// which segment goes next is the connection's business (scoreboard.h).
//
//  - slow start: cwnd grows by min(acked, SMSS) per ACK (RFC 5681 §3.1,
//    appropriate byte counting with L = 1 SMSS, RFC 3465);
//  - congestion avoidance: one SMSS per cwnd of acknowledged bytes;
//  - fast recovery: ssthresh = max(FlightSize / 2, 2 SMSS). With SACK the
//    connection's PRR (RFC 6937) sets cwnd on each ACK (SetRecoveryCwnd)
//    and pipe decides what may be sent (RFC 6675 §5); without, cwnd is inflated by each duplicate ACK and deflated by each
//    partial ACK (RFC 6582 §3.2), and on the full ACK set to
//    min(ssthresh, FlightSize + SMSS);
//  - timeout: ssthresh as above (only on the first timeout of a series,
//    RFC 5681 §3.1 eq. 4 note), cwnd = 1 SMSS (the loss window).
// cwnd never exceeds max_cwnd.
#pragma once

#include <cstdint>

namespace rqcast {
namespace tcp {

class NewReno {
 public:
  void Init(uint32_t smss, uint32_t initial_segments, uint32_t max_cwnd);

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
  uint32_t HalfFlight(uint32_t flight) const;

  uint32_t smss_ = 1460;
  uint32_t max_cwnd_ = 1u << 30;
  uint32_t cwnd_ = 0;
  uint32_t ssthresh_ = 0;
  uint32_t acked_in_avoidance_ = 0;
};

}  // namespace tcp
}  // namespace rqcast

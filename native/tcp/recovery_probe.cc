// rqcast — the recovery probe: loss recovery that never waits for the RTO
// while the path answers (see connection.h).
//
// RFC 8985's tail loss probe runs only outside recovery (§7.2). Inside a
// recovery, RACK finds a lost retransmission only when something sent after
// it is delivered (§6.2). With the small windows that heavy loss leaves, the
// retransmission and the few segments after it are often all lost: no ACK
// comes back, nothing is left for RACK to compare with, and the sender used
// to sit out the RTO (at least 200 ms, against a round trip of well under a
// millisecond on a LAN), one such stall per ~1 000 segments at 10 % loss.
//
// The probe: while in a recovery (fast or after an RTO) with data in
// flight (or after an unanswered TLP, below), when no ACK has delivered
// anything for PTO = max(2 SRTT,
// kTlpMinPtoNs) (1 s without an SRTT), the first record not SACKed — the
// hole that holds snd_una, the one a lost retransmission leaves — is
// marked lost and sent again (with fresh frames, as every retransmission).
// Its ACK either advances snd_una or, as a delivery newer than everything
// before it, lets RACK judge the rest at once. A further probe without an
// ACK between waits twice as long; after kMaxRecoveryProbes the RTO is left
// to act. The probe:
//  - goes whatever cwnd says but is one segment per PTO, counted in pipe
//    and (in a fast recovery) in PRR's prr_out, like a TLP (§7.3);
//  - changes no window: the episode's reduction was made when it began;
//  - never moves the RTO: the RTO stays the backstop, armed from the last
//    ACK that advanced snd_una (RFC 6298 §5.3), so a dead path still times
//    out, backs off and aborts as before.
//
// The same probe follows a tail loss probe that nothing answered, when the
// flight before the TLP held at least two full segments. RFC 8985 sends one
// TLP and then waits for the RTO, restarted at the probe (§7.3). With GSO
// trains a connection's whole window often leaves as one packet: a loss
// rule (or a queue) that drops that packet leaves nothing to ACK, the TLP
// is the only way to learn of it, and when the TLP is lost too the sender
// sat out 200 ms and restarted from one segment (113 RTOs in 50 s of a
// 256 MiB transfer at 10 % loss: at least 45 % of its time). Here the TLP
// counts as the first probe: the hole at snd_una goes 2 PTO after it, and
// again 4 PTO after that, unless an ACK delivers something first. The condition is what keeps it from racing a
// delayed ACK: a receiver ACKs at least every second full-sized segment at
// once (RFC 5681 §4.2), and out-of-order data at once, so with two full
// segments out before the TLP, silence for 2 PTO means loss. (Without it —
// tried and reverted once — a probe went before a Linux receiver's delayed
// ACK of a few small in-order segments, and resent data that had arrived.)
// A flight smaller than that keeps RFC 8985's RTO.
//
// The delayed-ACK allowance of TLP (WCDelAckT) is left out: a receiver with
// a hole ACKs every segment at once (RFC 5681 §4.2, RFC 9293 §3.10.7.4), and
// the probe fills or lands beside one.
#include "tcp/connection.h"

namespace rqcast {
namespace tcp {

uint64_t Connection::RecoveryPtoNs() const {
  if (!rtt_.has_sample()) return kTlpNoRttNs;
  const uint64_t pto = 2 * rtt_.srtt_ns();
  return pto < kTlpMinPtoNs ? kTlpMinPtoNs : pto;
}

bool Connection::ProbingAllowed() const {
  return rack_on_ && !board_.empty() &&
         (recovery_ != Recovery::kNone || (tlp_outstanding_ && tlp_owed_ack_));
}

void Connection::ArmRecoveryProbe(uint64_t now_ns) {
  recovery_probes_in_row_ = 0;
  if (!ProbingAllowed()) {
    recovery_probe_deadline_ = kNever;
    return;
  }
  recovery_probe_deadline_ = now_ns + RecoveryPtoNs();
}

void Connection::ArmProbeAfterTlp(uint64_t now_ns) {
  recovery_probes_in_row_ = 1;   // the TLP was the first
  recovery_probe_deadline_ = ProbingAllowed() ? now_ns + (RecoveryPtoNs() << 1) : kNever;
}

void Connection::OnRecoveryProbeTimer(uint64_t now_ns) {
  recovery_probe_deadline_ = kNever;
  if (!ProbingAllowed()) return;
  if (recovery_probes_in_row_ >= kMaxRecoveryProbes) return;   // the RTO's turn
  uint64_t hole = board_.begin();
  while (hole != board_.end() && board_.at(hole).sacked) ++hole;
  if (hole == board_.end()) return;
  if (!board_.at(hole).needs_rtx) board_.MarkLost(hole);
  Retransmit(hole, now_ns);
  ++recovery_probes_in_row_;
  ++stats_.recovery_probes;
  // The last one allowed arms nothing: the RTO's turn.
  if (recovery_probes_in_row_ < kMaxRecoveryProbes)
    recovery_probe_deadline_ = now_ns + (RecoveryPtoNs() << recovery_probes_in_row_);
}

}  // namespace tcp
}  // namespace rqcast

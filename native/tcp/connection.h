// rqcast — one TCP connection's state machine, server side (passive open
// only). I/O-free: time in ns and segments are passed in, segments go out
// through SegmentOutput. Nothing here reads a clock, allocates per segment on
// the steady state, or touches a socket.
//
// What it implements (RFC 9293 unless said): every state of a passive open;
// window scaling, timestamps and SACK (RFC 7323, RFC 2018) when the SYN
// offers them; RFC 5961 challenge ACKs for RSTs and SYNs in the window and
// for ACKs of data never sent or too old (at most kChallengeAcksPerSecond);
// RTO per RFC 6298 (rtt.h); NewReno with SACK loss recovery (congestion.h,
// scoreboard.h; PRR, RFC 6937, for what goes during it) and, when SACK is on, RACK-TLP loss detection (RFC 8985:
// a lost retransmission is sent again about an RTT later instead of at the
// RTO; tail loss probes; see connection.cc); a persist timer whose probes
// carry no data. It sends whole
// frames and never re-segments (frame_source.h): retransmissions carry the
// same sequence range, with fresh data frames in place of the old ones.
//
// What it leaves out, on purpose: PAWS (RFC 7323 §5: timestamps are only
// echoed and used for RTT samples), delayed ACKs (we receive little and ACK
// each data segment), keep-alive, urgent data, ECN, out-of-order reassembly
// of the peer's data (dropped and ACKed with rcv_nxt: the peer sends small
// control frames).
//
// Choices worth knowing: a SYN in SYN-RECEIVED other than the first one
// again draws a challenge ACK (the connection is not returned to LISTEN);
// window probes count as backoffs, so a peer that keeps its window at zero
// through max_rto_backoffs probes (about 100 s with the defaults) is aborted
// (kTimeout); a peer MSS below kMinPeerMss is raised to it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tcp/congestion.h"
#include "tcp/frame_source.h"
#include "tcp/rtt.h"
#include "tcp/scoreboard.h"
#include "tcp/segment.h"

namespace rqcast {
namespace tcp {

enum class State : uint8_t { kSynReceived, kEstablished, kFinWait1, kFinWait2, kClosing,
                             kTimeWait, kCloseWait, kLastAck, kClosed };
const char* StateName(State s);
enum class CloseReason : uint8_t { kNone, kNormal, kReset, kTimeout, kAborted, kProtocol };
struct Config {
  uint16_t mss = 1460;              // the most we send and announce (from the path MTU)
  uint8_t wscale = 7;               // announced when the peer offers window scaling
  uint32_t rcv_buffer = 65536;      // bytes of the peer's data we hold unread
  uint32_t initial_cwnd_segments = 10;
  uint32_t max_cwnd_bytes = 8u << 20;
  uint64_t rto_initial_ns = 1000000000ull, rto_min_ns = 200000000ull, rto_max_ns = 60000000000ull;
  uint32_t max_rto_backoffs = 8;    // then abort (kTimeout) with a RST
  uint32_t max_syn_ack_retries = 5;
  uint64_t time_wait_ns = 1000000000ull; // short: the server's TIME_WAIT holds a 4-tuple only
  bool sack = true, timestamps = true, window_scaling = true;  // offered only if the peer offers
  // FIN_WAIT_2 with the peer never closing: give up after this long
  // (kTimeout), as Linux's tcp_fin_timeout.
  uint64_t fin_wait2_timeout_ns = 60000000000ull;
  // RACK-TLP loss detection (RFC 8985) when SACK is on; off: RFC 6675 alone
  // and no tail loss probes (Linux's net.ipv4.tcp_recovery = 0).
  bool rack_tlp = true;
  // CUBIC's β = 0.7 and Reno-friendly α (RFC 9438, congestion.h); false:
  // RFC 5681's halving and one SMSS per round trip.
  bool cubic_beta = true;
};
struct ConnectionStats {
  uint64_t segments_sent = 0, bytes_sent = 0, data_segments_sent = 0;
  uint64_t retransmitted_segments = 0, fast_retransmits = 0, rto_timeouts = 0;
  uint64_t fresh_frames = 0, stale_frames = 0;   // data frames refreshed / resent as they were
  uint64_t segments_received = 0, bytes_received = 0, dup_acks = 0, bad_segments = 0;
  uint64_t challenge_acks = 0, window_probes = 0;
  uint32_t cwnd = 0, ssthresh = 0, flight = 0, srtt_us = 0, rto_ms = 0, snd_wnd = 0;
  // RACK-TLP: segments RACK judged lost (each time: a retransmission may be
  // judged lost again), tail loss probes sent.
  uint64_t rack_lost = 0, tlp_probes = 0;
  // Recovery probes (recovery_probe.cc): a hole sent again in a recovery
  // that no ACK answered for a PTO.
  uint64_t recovery_probes = 0;
  // RTO expiries by where they struck: during a fast recovery, during the
  // recovery from an earlier RTO (a lost retransmission after a timeout).
  uint64_t rto_in_recovery = 0, rto_after_rto = 0;
  // Where the connection is (refreshed with cwnd): 0 no recovery, 1 a fast
  // recovery, 2 the recovery after an RTO; pipe (RFC 6675) in bytes.
  uint8_t recovery = 0;
  uint32_t pipe = 0;
};
class SegmentOutput {
 public:
  virtual ~SegmentOutput() = default;
  virtual void Transmit(const OutSegment& seg, const uint8_t* payload, size_t len) = 0;
};
class Connection {
 public:
  // A SYN (no ACK, no RST/FIN) arrived for local endpoint `syn.dst`: makes the
  // connection in kSynReceived with initial sequence number iss and sends the
  // SYN-ACK (options: MSS always; WS, SACK-permitted, TS only if the SYN had them
  // and the config allows). The caller checked the SYN's flags.
  Connection(const Config& config, const Segment& syn, uint32_t iss, uint64_t now_ns,
             FrameSource* source, SegmentOutput* out);
  // One arriving segment of this 4-tuple (RFC 9293 §3.10.7 order of checks,
  // RFC 5961 for RST/SYN in the window: challenge ACKs).
  void OnSegment(const Segment& seg, uint64_t now_ns);
  // Timers that fell due, then new data while cwnd and the peer's window allow
  // (whole segments only: a segment is at most min(mss, peer mss) bytes and is
  // sent only when it fits the window whole). Call after OnSegment calls and
  // whenever the FrameSource may have frames again.
  void Poll(uint64_t now_ns);
  // The next time Poll must run for a timer (UINT64_MAX if no timer is armed;
  // 0 when a window update after Read waits for Poll).
  uint64_t NextDeadline() const;
  // Graceful close from our side: no more new data frames are taken except
  // control frames already offered; FIN after the last byte. (Stops calling
  // NextFrame for data: the source must not give data frames once CloseSource()
  // is called — the shell does that; the connection just sends what it has and FIN.)
  // "Drained" is NextFrame returning 0 for the largest frame there can be; a
  // frame that did not fit the room left is held by the connection until it
  // does, so the FIN never overtakes it.
  void Close(uint64_t now_ns);
  // Sends RST and goes to kClosed (reason kAborted).
  void Abort(uint64_t now_ns);
  // In-order bytes of the peer's stream not yet read (at most rcv_buffer);
  // Read moves up to cap of them to out and reopens the window (a window update
  // is sent by the next Poll when the window grew by >= 2 MSS or from zero).
  size_t Readable() const;
  size_t Read(uint8_t* out, size_t cap);
  bool PeerFinished() const;   // the peer's FIN arrived (in order)
  State state() const;
  CloseReason close_reason() const;
  const ConnectionStats& stats() const;   // cwnd..snd_wnd refreshed on each call path
  Endpoint4 local() const;
  Endpoint4 remote() const;

  // Payload bytes per segment: min(mss, peer MSS) less the timestamp
  // option when timestamps are on (RFC 9293 §3.7.1: the MSS counts options).
  uint32_t segment_size() const { return seg_size_; }
  // A frame longer than a segment was split: from then on every
  // retransmission resends the original bytes (nothing is refreshed, and
  // nothing is counted in fresh_frames or stale_frames).
  bool sends_originals() const { return originals_only_; }
  uint32_t snd_una() const { return snd_una_; }
  uint32_t snd_nxt() const { return snd_nxt_; }
  uint32_t rcv_nxt() const { return rcv_nxt_; }

  // RACK-TLP (RFC 8985), on when SACK is: see connection.cc.
  static constexpr uint64_t kTlpDelayedAckNs = 200000000ull;   // WCDelAckT (§7.2)
  static constexpr uint64_t kTlpNoRttNs = 1000000000ull;       // PTO without an SRTT
  // The PTO's floor: RFC 8985 §7.2 sets PTO = 2 SRTT (WCDelAckT added for
  // a flight of one segment) and no floor; this one only keeps the timer
  // above what a loaded host's timers and scheduler blur. Linux's PTO is
  // 2 SRTT + 2 ms (jiffy-era slack). The floor sets how long a lost train
  // holds the connection: with GSO a whole window often leaves as one
  // packet, and at 10 % loss the probes' waits were most of a transfer
  // (10 ms: the first TLP draft's floor; 2 ms: 16-19 s for 256 MiB; 0.5 ms:
  // 10-13 s, bench:tcp, docs/BENCHMARKS.md). It changes no window: a probe
  // is one segment, and a loss it finds costs the one reduction of its
  // recovery; a queue that lengthens the round trip lengthens 2 SRTT.
  static constexpr uint64_t kTlpMinPtoNs = 500000ull;
  // RACK.reo_wnd: reo_wnd_mult * min_RTT / 4, at most SRTT (RFC 8985
  // §6.2 step 4: the multiplier grows by one per round trip with a D-SACK,
  // back to 1 after kReoWndPersist recoveries without one).
  static constexpr uint32_t kReoWndPersist = 16, kMaxReoWndMult = 64;
  uint64_t rack_reo_wnd_ns() const;
  uint64_t rack_deadline() const { return rack_deadline_; }
  uint64_t rto_deadline() const { return rto_deadline_; }
  uint64_t tlp_deadline() const { return tlp_deadline_; }
  // The recovery probe (recovery_probe.cc): in a recovery with no ACK for a
  // PTO, or after a tail loss probe nothing answered (when the receiver
  // owed an immediate ACK), the first hole goes again; at most this many
  // in a row (the TLP counts as the first).
  static constexpr uint32_t kMaxRecoveryProbes = 3;
  uint64_t recovery_probe_deadline() const { return recovery_probe_deadline_; }

  static constexpr uint32_t kChallengeAcksPerSecond = 10;
  static constexpr int kDupThresh = 3;          // RFC 5681 §3.2, RFC 6675
  static constexpr uint32_t kDefaultPeerMss = 536;   // RFC 9293 §3.7.1
  static constexpr uint32_t kMinPeerMss = 64;   // a smaller announced MSS is raised to this

 private:
  enum class Recovery : uint8_t { kNone, kFast, kTimeout };
  static constexpr uint64_t kNever = UINT64_MAX;

  void Emit(uint32_t seq, uint8_t flags, const uint8_t* payload, size_t len, uint64_t now_ns,
            bool syn_options = false);
  void SendSynAck(uint64_t now_ns);
  void SendAck(uint64_t now_ns) { Emit(snd_nxt_, kAck, nullptr, 0, now_ns); }
  void SendChallengeAck(uint64_t now_ns);
  void SendRstAbort(uint64_t now_ns);
  uint16_t WindowField(bool syn);
  uint32_t FreeSpace() const { return cfg_.rcv_buffer - static_cast<uint32_t>(rcv_len_); }
  uint32_t TsNow(uint64_t now_ns) const;
  void TsSample(uint32_t ts_ecr, uint64_t now_ns);
  uint32_t Flight() const { return snd_nxt_ - snd_una_; }

  bool SequenceAcceptable(const Segment& seg) const;
  // The ACK field of a segment in a synchronized state; false: drop it.
  bool ProcessAck(const Segment& seg, uint64_t now_ns);
  void EnterFastRecovery(uint64_t now_ns);
  // PRR (RFC 6937): starts an episode; on each ACK of a SACK recovery sets
  // cwnd to pipe + what may be sent for `delivered` bytes newly delivered.
  void PrrStart();
  void PrrOnAck(uint32_t delivered);
  // RACK: detect losses, enter recovery on the first, arm the reorder timer.
  void RackDetect(uint64_t now_ns);
  // TLP: arm (or cancel) the probe timer; send the probe.
  void SchedulePto(uint64_t now_ns);
  void OnPtoTimer(uint64_t now_ns);
  // The recovery probe (recovery_probe.cc): (re)arm from an ACK that
  // delivered something or the start of a recovery; off outside one.
  uint64_t RecoveryPtoNs() const;
  bool ProbingAllowed() const;
  void ArmRecoveryProbe(uint64_t now_ns);
  void ArmProbeAfterTlp(uint64_t now_ns);
  void OnRecoveryProbeTimer(uint64_t now_ns);
  void RttSample(uint64_t rtt_ns) {
    rtt_.Sample(rtt_ns);
    rack_.NoteRtt(rtt_ns);
  }
  bool TakePayload(const Segment& seg);

  void TrySend(uint64_t now_ns);
  // Builds and sends one new segment of at most `room` payload bytes; 0 if
  // no frame was ready. *drained: the source has nothing at all.
  size_t SendNewSegment(uint64_t now_ns, uint32_t room, bool* drained);
  void SendFin(uint64_t now_ns);
  void Retransmit(uint64_t record, uint64_t now_ns);
  void OnRtoTimer(uint64_t now_ns);
  void OnPersistTimer(uint64_t now_ns);
  void UpdatePersist(uint64_t now_ns);
  void ArmRto(uint64_t now_ns) { rto_deadline_ = now_ns + rtt_.rto_ns(); }
  void EnterTimeWait(uint64_t now_ns);
  void CloseWith(CloseReason reason);
  bool CanSendNewData() const {
    return (state_ == State::kEstablished || state_ == State::kCloseWait) && !fin_sent_;
  }
  void RefreshStats() const;

  Config cfg_;
  FrameSource* source_;
  SegmentOutput* out_;
  Endpoint4 local_, remote_;
  LinkAddress link_;   // the SYN's: every segment leaves by it (segment.h)
  State state_ = State::kSynReceived;
  CloseReason reason_ = CloseReason::kNone;

  // Send sequence space (RFC 9293 §3.3.1).
  uint32_t iss_ = 0, snd_una_ = 0, snd_nxt_ = 0;
  uint32_t snd_wnd_ = 0, max_snd_wnd_ = 0, snd_wl1_ = 0, snd_wl2_ = 0;
  uint8_t snd_wscale_ = 0, rcv_wscale_ = 0;
  bool ws_ok_ = false, sack_ok_ = false, ts_ok_ = false;
  uint32_t seg_size_ = 0;

  // Receive side: in-order bytes not yet read, in a ring of rcv_buffer bytes
  // (allocated with the first byte: most connections never get any).
  uint32_t irs_ = 0, rcv_nxt_ = 0;
  std::vector<uint8_t> rcv_buf_;
  size_t rcv_head_ = 0, rcv_len_ = 0;
  uint32_t rcv_wnd_announced_ = 0;
  bool peer_fin_ = false;
  bool ack_pending_ = false;

  // Timestamps (RFC 7323 §4.3); our clock ticks in ms from a per-connection
  // offset (the ISS), so it tells nothing of the host's uptime.
  uint32_t ts_recent_ = 0, ts_offset_ = 0;

  // Timers: absolute deadlines, kNever when off.
  uint64_t rto_deadline_ = kNever, persist_deadline_ = kNever;
  uint64_t time_wait_deadline_ = kNever, fin_wait2_deadline_ = kNever;
  uint32_t rto_backoffs_ = 0, persist_backoffs_ = 0, syn_ack_retries_ = 0;
  uint64_t syn_ack_sent_ns_ = 0;

  RttEstimator rtt_;
  NewReno cc_;
  Scoreboard board_;
  Recovery recovery_ = Recovery::kNone;
  uint32_t recover_ = 0;                   // RFC 6582 "recover"
  // PRR (RFC 6937) in a SACK fast recovery: bytes delivered and sent since
  // it began, and the flight then.
  uint32_t prr_delivered_ = 0, prr_out_ = 0, prr_recover_fs_ = 0;
  uint32_t dupacks_ = 0;

  // RACK-TLP (RFC 8985).
  Rack rack_;
  uint64_t rack_deadline_ = kNever;        // the reorder timer (§6.3)
  uint64_t tlp_deadline_ = kNever;         // the probe timeout (§7.2)
  bool rack_on_ = false;                   // SACK and cfg_.rack_tlp
  uint32_t reo_wnd_mult_ = 1, reo_wnd_persist_ = 0;
  bool dsack_round_set_ = false;           // RACK.dsack_round
  uint32_t dsack_round_ = 0;
  bool tlp_outstanding_ = false;           // TLP.end_seq is set
  bool tlp_retransmitted_ = false;         // the probe was a retransmission
  // The flight before the TLP held two full segments: the receiver ACKs
  // those at once (RFC 5681 §4.2), so silence after the probe is loss,
  // not a delayed ACK (recovery_probe.cc).
  bool tlp_owed_ack_ = false;
  uint32_t tlp_end_seq_ = 0;
  uint64_t recovery_probe_deadline_ = kNever;
  uint32_t recovery_probes_in_row_ = 0;

  bool close_requested_ = false, fin_sent_ = false, fin_acked_ = false;
  uint32_t fin_seq_ = 0;
  bool originals_only_ = false;
  // A frame taken from the source but not (all) on the wire: one that did
  // not fit the room there was (sent whole when there is), or one longer
  // than a segment being sent in pieces (pending_sent_ > 0).
  std::vector<uint8_t> pending_;
  FrameInfo pending_info_;
  size_t pending_sent_ = 0;

  uint64_t challenge_window_start_ = 0;
  uint32_t challenge_count_ = 0;
  mutable ConnectionStats stats_;
};
}  // namespace tcp
}  // namespace rqcast

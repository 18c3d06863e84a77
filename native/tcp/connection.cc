// rqcast — one TCP connection, server side (see connection.h).
#include "tcp/connection.h"

#include <cstring>

#include "tcp/seq.h"

namespace rqcast {
namespace tcp {

namespace {

constexpr uint64_t kMs = 1000000ull;
constexpr uint64_t kSecond = 1000000000ull;
constexpr uint8_t kMaxWscale = 14;
constexpr size_t kTimestampOptionBytes = 12;   // NOP NOP TS, RFC 7323 appendix A
// The largest frame: a u16 length and a packet of up to 65535 bytes.
constexpr size_t kMaxFrameBytes = 2 + 65535;

// Where a frame longer than a segment is first read into. One per thread:
// connections of one thread run one at a time, and such frames are rare.
thread_local uint8_t t_big_frame[kMaxFrameBytes];

uint32_t Min32(uint64_t a, uint64_t b) { return static_cast<uint32_t>(a < b ? a : b); }

}  // namespace

const char* StateName(State s) {
  switch (s) {
    case State::kSynReceived: return "SYN-RECEIVED";
    case State::kEstablished: return "ESTABLISHED";
    case State::kFinWait1: return "FIN-WAIT-1";
    case State::kFinWait2: return "FIN-WAIT-2";
    case State::kClosing: return "CLOSING";
    case State::kTimeWait: return "TIME-WAIT";
    case State::kCloseWait: return "CLOSE-WAIT";
    case State::kLastAck: return "LAST-ACK";
    case State::kClosed: return "CLOSED";
  }
  return "?";
}

Connection::Connection(const Config& config, const Segment& syn, uint32_t iss, uint64_t now_ns,
                       FrameSource* source, SegmentOutput* out)
    : cfg_(config),
      source_(source),
      out_(out),
      local_(syn.dst),
      remote_(syn.src),
      link_(syn.link),
      rtt_(config.rto_initial_ns, config.rto_min_ns, config.rto_max_ns, kMs) {
  irs_ = syn.seq;
  rcv_nxt_ = irs_ + 1;
  iss_ = iss;
  snd_una_ = iss;
  snd_nxt_ = iss + 1;   // the SYN

  const Options& o = syn.options;
  if (cfg_.window_scaling && o.has_wscale) {
    ws_ok_ = true;
    snd_wscale_ = o.wscale > kMaxWscale ? kMaxWscale : o.wscale;
    rcv_wscale_ = cfg_.wscale > kMaxWscale ? kMaxWscale : cfg_.wscale;
  }
  sack_ok_ = cfg_.sack && o.sack_permitted;
  rack_on_ = sack_ok_ && cfg_.rack_tlp;
  ts_ok_ = cfg_.timestamps && o.has_timestamps;
  if (ts_ok_) ts_recent_ = o.ts_val;
  ts_offset_ = iss;

  uint32_t peer_mss = o.has_mss ? o.mss : kDefaultPeerMss;
  if (peer_mss < kMinPeerMss) peer_mss = kMinPeerMss;
  uint32_t mss = cfg_.mss < peer_mss ? cfg_.mss : peer_mss;
  if (mss < kMinPeerMss) mss = kMinPeerMss;
  seg_size_ = mss - (ts_ok_ ? static_cast<uint32_t>(kTimestampOptionBytes) : 0u);

  // The SYN's window is never scaled (RFC 7323 §2.2).
  snd_wnd_ = syn.window;
  max_snd_wnd_ = snd_wnd_;
  snd_wl1_ = syn.seq;
  snd_wl2_ = iss;

  cc_.Init(seg_size_, cfg_.initial_cwnd_segments, cfg_.max_cwnd_bytes, cfg_.cubic_beta);
  board_.Init(seg_size_, cfg_.max_cwnd_bytes / seg_size_ + 16);

  SendSynAck(now_ns);
  syn_ack_sent_ns_ = now_ns;
  ArmRto(now_ns);
  RefreshStats();
}

// ------------------------------------------------------------ output --

uint32_t Connection::TsNow(uint64_t now_ns) const {
  return static_cast<uint32_t>(now_ns / kMs) + ts_offset_;
}

uint16_t Connection::WindowField(bool syn) {
  const uint32_t free = FreeSpace();
  if (syn) {
    const uint32_t w = Min32(free, 0xFFFF);
    rcv_wnd_announced_ = w;
    return static_cast<uint16_t>(w);
  }
  const uint32_t w = Min32(free >> rcv_wscale_, 0xFFFF);
  rcv_wnd_announced_ = w << rcv_wscale_;
  return static_cast<uint16_t>(w);
}

void Connection::Emit(uint32_t seq, uint8_t flags, const uint8_t* payload, size_t len,
                      uint64_t now_ns, bool syn_options) {
  OutSegment s;
  s.src = local_;
  s.dst = remote_;
  s.seq = seq;
  s.flags = flags;
  s.link = link_;
  if (flags & kAck) s.ack = rcv_nxt_;
  s.window = (flags & kRst) ? 0 : WindowField(syn_options);
  if (syn_options) {
    s.options.has_mss = true;
    s.options.mss = cfg_.mss;
    s.options.has_wscale = ws_ok_;
    s.options.wscale = rcv_wscale_;
    s.options.sack_permitted = sack_ok_;
  }
  if (ts_ok_ && !(flags & kRst)) {
    s.options.has_timestamps = true;
    s.options.ts_val = TsNow(now_ns);
    s.options.ts_ecr = ts_recent_;
  }
  out_->Transmit(s, payload, len);
  ++stats_.segments_sent;
  if (len > 0) {
    ++stats_.data_segments_sent;
    stats_.bytes_sent += len;
  }
  if (flags & kAck) ack_pending_ = false;
}

void Connection::SendSynAck(uint64_t now_ns) {
  Emit(iss_, kSyn | kAck, nullptr, 0, now_ns, true);
}

void Connection::SendChallengeAck(uint64_t now_ns) {
  // RFC 5961 §7: a per-connection limit keeps an attacker from using us to
  // flood, and bounds what a blind attacker learns per second.
  if (now_ns - challenge_window_start_ >= kSecond || challenge_window_start_ == 0) {
    challenge_window_start_ = now_ns == 0 ? 1 : now_ns;
    challenge_count_ = 0;
  }
  if (challenge_count_ >= kChallengeAcksPerSecond) return;
  ++challenge_count_;
  ++stats_.challenge_acks;
  SendAck(now_ns);
}

void Connection::SendRstAbort(uint64_t now_ns) {
  Emit(snd_nxt_, kRst | kAck, nullptr, 0, now_ns);
}

// ------------------------------------------------------------- input --

void Connection::TsSample(uint32_t ts_ecr, uint64_t now_ns) {
  // An echo from the future or older than the longest RTO is no sample
  // (a broken or lying peer; RFC 7323 §4.2 trusts only echoes of ours).
  const uint32_t d = TsNow(now_ns) - ts_ecr;
  // Not offered to RACK's min_RTT: at 1 ms granularity a LAN's echo is
  // often 0, which would leave no reordering window at all.
  if (d < 0x80000000u && uint64_t(d) * kMs <= cfg_.rto_max_ns) rtt_.Sample(uint64_t(d) * kMs);
}

bool Connection::SequenceAcceptable(const Segment& seg) const {
  // RFC 9293 §3.10.7.4, first check, with RCV.WND our free buffer space.
  const uint32_t seg_len = static_cast<uint32_t>(seg.payload_len) + (seg.has(kSyn) ? 1 : 0) +
                           (seg.has(kFin) ? 1 : 0);
  const uint32_t wnd = FreeSpace();
  const uint32_t right = rcv_nxt_ + wnd;
  // A zero window still lets the segment at rcv_nxt in for its ACK and RST.
  if (seg.seq == rcv_nxt_) return true;
  if (wnd == 0) return false;
  if (SeqLeq(rcv_nxt_, seg.seq) && SeqLt(seg.seq, right)) return true;
  if (seg_len == 0) return false;
  const uint32_t last = seg.seq + seg_len - 1;
  return SeqLeq(rcv_nxt_, last) && SeqLt(last, right);
}

void Connection::OnSegment(const Segment& seg, uint64_t now_ns) {
  if (state_ == State::kClosed) return;
  ++stats_.segments_received;

  // Our SYN-ACK was lost: the peer's SYN again gets it again.
  if (state_ == State::kSynReceived && seg.has(kSyn) && !seg.has(kAck) && !seg.has(kRst) &&
      seg.seq == irs_) {
    SendSynAck(now_ns);
    RefreshStats();
    return;
  }

  if (!SequenceAcceptable(seg)) {
    ++stats_.bad_segments;
    if (!seg.has(kRst)) {
      if (state_ == State::kTimeWait && seg.has(kFin)) {
        time_wait_deadline_ = now_ns + cfg_.time_wait_ns;   // RFC 9293 §3.10.7.4 eighth
      }
      SendAck(now_ns);
    }
    RefreshStats();
    return;
  }

  if (seg.has(kRst)) {
    // RFC 5961 §3.2: only the exact next sequence number resets; anywhere
    // else in the window draws a challenge ACK.
    if (seg.seq == rcv_nxt_) {
      CloseWith(state_ == State::kTimeWait ? CloseReason::kNormal : CloseReason::kReset);
    } else {
      SendChallengeAck(now_ns);
    }
    RefreshStats();
    return;
  }

  if (seg.has(kSyn)) {   // RFC 5961 §4.2: any SYN here draws a challenge ACK
    SendChallengeAck(now_ns);
    RefreshStats();
    return;
  }

  if (!seg.has(kAck)) {
    ++stats_.bad_segments;
    RefreshStats();
    return;
  }

  if (ts_ok_ && seg.options.has_timestamps && SeqLeq(seg.seq, rcv_nxt_) &&
      SeqGeq(seg.options.ts_val, ts_recent_)) {
    ts_recent_ = seg.options.ts_val;   // RFC 7323 §4.3
  }

  if (state_ == State::kSynReceived) {
    if (!(SeqLt(snd_una_, seg.ack) && SeqLeq(seg.ack, snd_nxt_))) {
      Emit(seg.ack, kRst, nullptr, 0, now_ns);   // RFC 9293 §3.10.7.4 fifth
      RefreshStats();
      return;
    }
    state_ = State::kEstablished;
    snd_una_ = seg.ack;
    snd_wnd_ = uint32_t(seg.window) << snd_wscale_;
    max_snd_wnd_ = snd_wnd_;
    snd_wl1_ = seg.seq;
    snd_wl2_ = seg.ack;
    if (ts_ok_ && seg.options.has_timestamps && seg.options.ts_ecr != 0) {
      TsSample(seg.options.ts_ecr, now_ns);
    } else if (syn_ack_retries_ == 0) {
      RttSample(now_ns - syn_ack_sent_ns_);     // Karn: only an unrepeated SYN-ACK
    } else {
      rtt_.Reinitialize(3 * kSecond);            // RFC 6298 §5.7
    }
    rto_deadline_ = kNever;
    rto_backoffs_ = 0;
  } else {
    if (!ProcessAck(seg, now_ns)) {
      RefreshStats();
      return;
    }
    if (state_ == State::kClosed) return;
  }

  bool need_ack = false;
  if (seg.payload_len > 0) {
    if (state_ == State::kEstablished || state_ == State::kFinWait1 ||
        state_ == State::kFinWait2) {
      TakePayload(seg);
    }
    need_ack = true;
  }
  if (seg.has(kFin)) {
    need_ack = true;
    const bool in_order = seg.seq + static_cast<uint32_t>(seg.payload_len) == rcv_nxt_;
    if (in_order && (state_ == State::kEstablished || state_ == State::kFinWait1 ||
                     state_ == State::kFinWait2)) {
      ++rcv_nxt_;
      peer_fin_ = true;
      if (state_ == State::kEstablished) {
        state_ = State::kCloseWait;
      } else if (state_ == State::kFinWait1) {
        if (fin_acked_) {
          EnterTimeWait(now_ns);
        } else {
          state_ = State::kClosing;
        }
      } else {
        EnterTimeWait(now_ns);
      }
    } else if (state_ == State::kTimeWait) {
      time_wait_deadline_ = now_ns + cfg_.time_wait_ns;
    }
  }
  if (need_ack) SendAck(now_ns);
  RefreshStats();
}

bool Connection::TakePayload(const Segment& seg) {
  if (SeqGt(seg.seq, rcv_nxt_)) return false;   // out of order: dropped, ACK says where we are
  const uint32_t skip = rcv_nxt_ - seg.seq;
  if (skip >= seg.payload_len) return false;    // all seen before
  uint32_t n = static_cast<uint32_t>(seg.payload_len) - skip;
  const uint32_t free = FreeSpace();
  if (n > free) n = free;
  if (n == 0) return false;
  if (rcv_buf_.empty()) rcv_buf_.resize(cfg_.rcv_buffer);
  const size_t cap = rcv_buf_.size();
  size_t at = (rcv_head_ + rcv_len_) % cap;
  const uint8_t* p = seg.payload + skip;
  const size_t first = n < cap - at ? n : cap - at;
  std::memcpy(rcv_buf_.data() + at, p, first);
  if (first < n) std::memcpy(rcv_buf_.data(), p + first, n - first);
  rcv_len_ += n;
  rcv_nxt_ += n;
  stats_.bytes_received += n;
  return true;
}

bool Connection::ProcessAck(const Segment& seg, uint64_t now_ns) {
  // RFC 5961 §5.2: acceptable ACKs lie in [snd_una - max_snd_wnd, snd_nxt].
  if (SeqGt(seg.ack, snd_nxt_)) {
    ++stats_.bad_segments;
    SendChallengeAck(now_ns);
    return false;
  }
  if (SeqLt(seg.ack, snd_una_ - max_snd_wnd_)) {
    ++stats_.bad_segments;
    SendChallengeAck(now_ns);
    return false;
  }

  const uint32_t old_wnd = snd_wnd_;
  if (SeqLeq(snd_una_, seg.ack) &&
      (SeqLt(snd_wl1_, seg.seq) || (snd_wl1_ == seg.seq && SeqLeq(snd_wl2_, seg.ack)))) {
    snd_wnd_ = uint32_t(seg.window) << snd_wscale_;
    snd_wl1_ = seg.seq;
    snd_wl2_ = seg.ack;
    if (snd_wnd_ > max_snd_wnd_) max_snd_wnd_ = snd_wnd_;
  }
  if (snd_wnd_ != 0) persist_backoffs_ = 0;

  // PRR's DeliveredData (RFC 6937 §3): the change in snd_una plus the
  // change in SACKed bytes.
  const uint32_t sacked_before = board_.sacked_bytes();
  uint32_t newly_sacked = 0;
  if (sack_ok_ && seg.options.sack_count > 0) {
    newly_sacked = board_.Sack(seg.options.sack, seg.options.sack_count, snd_una_, snd_nxt_,
                               &rack_, now_ns);
  }

  const bool advanced = SeqGt(seg.ack, snd_una_);
  const uint32_t snd_una_before = snd_una_;
  bool recovery_ended = false;
  if (advanced) {
    const uint32_t acked = seg.ack - snd_una_;
    bool have_sample = false, retransmission_acked = false;
    uint64_t sample_sent_ns = 0;
    while (!board_.empty() && SeqLeq(board_.at(board_.begin()).end(), seg.ack)) {
      const SegmentRecord& r = board_.at(board_.begin());
      // Karn: an ACK that covers a retransmission gives no sample of its
      // own (what it covers above the hole waited for the hole, not for
      // the path); a record SACKed earlier neither.
      if (r.transmissions > 1) retransmission_acked = true;
      if (r.transmissions == 1 && !r.sacked) {
        have_sample = true;
        sample_sent_ns = r.sent_ns;
      }
      if (!r.sacked) rack_.Offer(r, now_ns);   // RFC 8985 §6.2 step 2
      board_.PopFront();
    }
    snd_una_ = seg.ack;
    if (fin_sent_ && SeqGt(seg.ack, fin_seq_)) fin_acked_ = true;
    rto_backoffs_ = 0;
    persist_backoffs_ = 0;
    dupacks_ = 0;
    // The send time of a record sent once, to the ns, before the echo of
    // a timestamp that ticks in ms (as Linux prefers its own send times):
    // on a LAN the echo says 0 or 1 ms.
    if (have_sample && !retransmission_acked) {
      RttSample(now_ns - sample_sent_ns);
    } else if (ts_ok_ && seg.options.has_timestamps && seg.options.ts_ecr != 0) {
      TsSample(seg.options.ts_ecr, now_ns);
    }

    if (recovery_ == Recovery::kFast) {
      if (SeqGeq(seg.ack, recover_)) {
        cc_.ExitRecovery(Flight(), sack_ok_);
        recovery_ = Recovery::kNone;
        recovery_ended = true;
        board_.EndEpisode();
      } else {
        // A partial ACK (RFC 6582 §3.2 step 5): the segment now at the front
        // was lost too; resend it at once.
        cc_.OnPartialAck(acked, sack_ok_);
        if (!board_.empty()) {
          const uint64_t front = board_.begin();
          const SegmentRecord& r = board_.at(front);
          if (!r.sacked && !r.lost) {
            board_.MarkLost(front);
            Retransmit(front, now_ns);
          }
        }
      }
    } else {
      cc_.OnAck(acked);
      if (recovery_ == Recovery::kTimeout && SeqGeq(seg.ack, recover_)) {
        recovery_ = Recovery::kNone;
        recovery_ended = true;
        board_.EndEpisode();
      }
    }
    if (board_.empty()) {
      rto_deadline_ = kNever;
    } else {
      ArmRto(now_ns);   // RFC 6298 §5.3
    }
  } else if (seg.ack == snd_una_ && !board_.empty()) {
    // A duplicate ACK (RFC 5681 §2), or with SACK one that SACKs new data
    // (RFC 6675 §2).
    const bool classic = seg.payload_len == 0 && !seg.has(kFin) && snd_wnd_ == old_wnd;
    if (classic || newly_sacked > 0) {
      ++stats_.dup_acks;
      ++dupacks_;
      if (recovery_ == Recovery::kNone) {
        if (dupacks_ >= uint32_t(kDupThresh) ||
            (sack_ok_ && board_.FrontIsLost(kDupThresh, seg_size_))) {
          EnterFastRecovery(now_ns);
        }
      } else if (recovery_ == Recovery::kFast) {
        cc_.OnDupAckInRecovery(sack_ok_);
      }
    }
  }
  if (recovery_ == Recovery::kFast && sack_ok_ && newly_sacked > 0) {
    board_.MarkLostBySack(kDupThresh, seg_size_);
  }

  if (rack_on_) {
    // A D-SACK (RFC 2883): the first block below the ACK, or inside the
    // second block.
    const SackBlock* sb = seg.options.sack;
    const bool dsack =
        seg.options.sack_count > 0 &&
        (SeqLt(sb[0].left, seg.ack) ||
         (seg.options.sack_count > 1 && SeqGeq(sb[0].left, sb[1].left) &&
          SeqLeq(sb[0].right, sb[1].right)));
    // RFC 8985 §6.2 step 4: reo_wnd grows by min_RTT / 4 per round trip
    // that brings a D-SACK (a retransmission was spurious: reordering),
    // and falls back after 16 recoveries without one.
    if (dsack_round_set_ && SeqGeq(snd_una_, dsack_round_)) dsack_round_set_ = false;
    if (!dsack_round_set_ && dsack) {
      dsack_round_set_ = true;
      dsack_round_ = snd_nxt_;
      if (reo_wnd_mult_ < kMaxReoWndMult) ++reo_wnd_mult_;
      reo_wnd_persist_ = kReoWndPersist;
    } else if (recovery_ended && reo_wnd_persist_ > 0) {
      if (--reo_wnd_persist_ == 0) reo_wnd_mult_ = 1;
    }
    if (tlp_outstanding_ && SeqGeq(seg.ack, tlp_end_seq_)) {
      // RFC 8985 §7.4, as Linux's tcp_process_tlp_ack: a new-data probe
      // needs nothing; a retransmitted one that drew a D-SACK (RFC 2883:
      // the first block below the ACK) repaired nothing; an ACK beyond it
      // without one means it repaired a loss: one reduction, as a fast
      // recovery would have made (unless one is under way). A plain
      // duplicate ACK at it: both copies arrived.
      if (!tlp_retransmitted_ || dsack) {
        tlp_outstanding_ = false;
      } else if (SeqGt(seg.ack, tlp_end_seq_)) {
        tlp_outstanding_ = false;
        if (recovery_ == Recovery::kNone) {
          cc_.EnterRecovery(cc_.cwnd(), true);
          cc_.ExitRecovery(0, true);
        }
      } else if (!advanced && newly_sacked == 0) {
        tlp_outstanding_ = false;
      }
    }
    RackDetect(now_ns);
    if (advanced) {
      SchedulePto(now_ns);
    } else if (newly_sacked > 0 || recovery_ != Recovery::kNone) {
      tlp_deadline_ = kNever;
    }
  }

  if (!ProbingAllowed()) {
    recovery_probe_deadline_ = kNever;
  } else if (advanced || newly_sacked > 0) {
    ArmRecoveryProbe(now_ns);
  }

  if (recovery_ == Recovery::kFast && sack_ok_) {
    const int64_t delivered = int64_t(advanced ? seg.ack - snd_una_before : 0) +
                              int64_t(board_.sacked_bytes()) - int64_t(sacked_before);
    if (delivered > 0) PrrOnAck(static_cast<uint32_t>(delivered));
  }

  if (fin_acked_) {
    if (state_ == State::kFinWait1) {
      state_ = State::kFinWait2;
      fin_wait2_deadline_ = now_ns + cfg_.fin_wait2_timeout_ns;
    } else if (state_ == State::kClosing) {
      EnterTimeWait(now_ns);
    } else if (state_ == State::kLastAck) {
      CloseWith(CloseReason::kNormal);
    }
  }
  return true;
}

void Connection::EnterFastRecovery(uint64_t now_ns) {
  recovery_ = Recovery::kFast;
  recover_ = snd_nxt_;
  cc_.EnterRecovery(Flight(), sack_ok_);
  PrrStart();
  ++stats_.fast_retransmits;
  const uint64_t front = board_.begin();
  board_.MarkLost(front);
  if (sack_ok_) board_.MarkLostBySack(kDupThresh, seg_size_);
  // The fast retransmit goes whatever cwnd says (RFC 5681 §3.2 step 4).
  if (board_.at(front).needs_rtx) Retransmit(front, now_ns);
  ArmRecoveryProbe(now_ns);
}

// ----------------------------------------------------------------- PRR --
//
// Proportional Rate Reduction (RFC 6937, PRR-SSRB), for a fast recovery
// with SACK: on each ACK, with DeliveredData the bytes it newly delivered
// (cumulatively or by SACK), cwnd becomes pipe + sndcnt where
//  - pipe > ssthresh: sndcnt = ceil(prr_delivered * ssthresh / RecoverFS)
//    - prr_out: the flight falls to ssthresh over one round trip, sending
//    ssthresh / RecoverFS for each byte delivered;
//  - else (slow start reduction bound): sndcnt = min(ssthresh - pipe,
//    max(prr_delivered - prr_out, DeliveredData) + SMSS): back up to
//    ssthresh no faster than slow start.
// What goes out is retransmissions first, then new data: new segments keep
// going during recovery, so later deliveries let RACK see a lost
// retransmission. Everything sent during the episode counts in prr_out
// (the fast retransmit too, which goes whatever PRR says: RFC 6937 §3's
// "on any data transmission or retransmission"). Without SACK, RFC 6582's
// window inflation stays.

void Connection::PrrStart() {
  prr_delivered_ = 0;
  prr_out_ = 0;
  prr_recover_fs_ = Flight();
}

void Connection::PrrOnAck(uint32_t delivered) {
  prr_delivered_ += delivered;
  const uint64_t pipe = board_.pipe();
  const uint64_t ssthresh = cc_.ssthresh();
  int64_t sndcnt;
  if (pipe > ssthresh) {
    const uint64_t fs = prr_recover_fs_ == 0 ? 1 : prr_recover_fs_;
    sndcnt = int64_t((uint64_t(prr_delivered_) * ssthresh + fs - 1) / fs) - int64_t(prr_out_);
  } else {
    int64_t limit = int64_t(prr_delivered_) - int64_t(prr_out_);
    if (limit < int64_t(delivered)) limit = delivered;
    limit += cc_.smss();
    sndcnt = int64_t(ssthresh - pipe) < limit ? int64_t(ssthresh - pipe) : limit;
  }
  if (sndcnt < 0) sndcnt = 0;
  cc_.SetRecoveryCwnd(static_cast<uint32_t>(pipe + uint64_t(sndcnt)));
}

// ------------------------------------------------------------ RACK-TLP --
//
// RFC 8985 on top of the SACK scoreboard, only when SACK is on (as Linux)
// and Config::rack_tlp allows:
// without SACK there is nothing to tell which later segments arrived.
//  - RACK: each delivered record (cumulatively ACKed or newly SACKed)
//    offers its latest transmission time to rack_ (scoreboard.h: the
//    RTT-based check of §6.2 step 2 skips deliveries an earlier
//    transmission may have made). On every ACK, every record in flight
//    sent before RACK's segment by more than RACK.rtt + reo_wnd is lost,
//    retransmitted or not: a lost retransmission goes again an RTT and a
//    bit later, not at the RTO. A record not yet that old arms the reorder
//    timer. reo_wnd is min_RTT / 4 times a multiplier that D-SACKs raise
//    (§6.2 step 4), at most SRTT; it is never 0 (the RFC's reo_wnd = 0
//    before any reordering was seen, in recovery or with DupThresh
//    segments SACKed, is left out: DupThresh covers that case).
//  - RFC 6675's DupThresh rule (three SACKed segments above, or three
//    duplicate ACKs) still runs beside it: whichever sees a loss first
//    starts the recovery episode. NewReno reacts once per episode.
//  - TLP (§7): with data in flight, no SACKed data, not in recovery and no
//    probe out, a probe timeout of 2 SRTT (+ WCDelAckT when one segment is
//    out; at least kTlpMinPtoNs; 1 s without an SRTT), cut to the RTO's
//    expiry, sends one new segment if the peer's window and the source
//    allow (whatever cwnd says), else retransmits the last segment; the
//    RTO is then restarted from the probe.

uint64_t Connection::rack_reo_wnd_ns() const {
  if (rack_.min_rtt_ns == UINT64_MAX) return 0;
  uint64_t w = reo_wnd_mult_ * (rack_.min_rtt_ns / 4);
  if (rtt_.has_sample() && w > rtt_.srtt_ns()) w = rtt_.srtt_ns();
  return w;
}

void Connection::RackDetect(uint64_t now_ns) {
  rack_deadline_ = kNever;
  if (!rack_on_ || !rack_.valid || board_.empty()) return;
  int marked = 0;
  const uint64_t wait = board_.RackDetectLost(rack_, rack_reo_wnd_ns(), now_ns, &marked);
  if (wait > 0) rack_deadline_ = now_ns + wait;
  if (marked == 0) return;
  stats_.rack_lost += static_cast<uint64_t>(marked);
  tlp_deadline_ = kNever;
  if (recovery_ != Recovery::kNone) return;   // the retransmissions go by TrySend
  recovery_ = Recovery::kFast;
  recover_ = snd_nxt_;
  cc_.EnterRecovery(Flight(), true);
  PrrStart();
  ++stats_.fast_retransmits;
  // The first goes at once, whatever cwnd says (RFC 5681 §3.2 step 4).
  const uint64_t first = board_.NextToRetransmit(board_.begin());
  if (first != board_.end()) Retransmit(first, now_ns);
  ArmRecoveryProbe(now_ns);
}

void Connection::SchedulePto(uint64_t now_ns) {
  tlp_deadline_ = kNever;
  if (!rack_on_ || board_.empty() || recovery_ != Recovery::kNone || tlp_outstanding_ ||
      board_.sacked_bytes() > 0) {
    return;
  }
  uint64_t pto = kTlpNoRttNs;
  if (rtt_.has_sample()) {
    pto = 2 * rtt_.srtt_ns();
    if (board_.size() == 1) pto += kTlpDelayedAckNs;
    if (pto < kTlpMinPtoNs) pto = kTlpMinPtoNs;
  }
  uint64_t t = now_ns + pto;
  if (t > rto_deadline_) t = rto_deadline_;
  tlp_deadline_ = t;
}

void Connection::OnPtoTimer(uint64_t now_ns) {
  tlp_deadline_ = kNever;
  if (board_.empty() || recovery_ != Recovery::kNone || tlp_outstanding_ ||
      board_.sacked_bytes() > 0) {
    return;
  }
  bool sent_new = false;
  const bool owed_ack = Flight() >= 2 * seg_size_;
  if (CanSendNewData() && !board_.Full()) {
    const int64_t peer_room = int64_t(snd_wnd_) - int64_t(Flight());
    const int64_t room = peer_room < int64_t(seg_size_) ? peer_room : int64_t(seg_size_);
    bool drained = false;
    if (room > 0) sent_new = SendNewSegment(now_ns, static_cast<uint32_t>(room), &drained) > 0;
  }
  if (!sent_new) {
    const uint64_t last = board_.end() - 1;
    const SegmentRecord& r = board_.at(last);
    if (r.sacked || r.needs_rtx) return;
    Retransmit(last, now_ns);
  }
  tlp_outstanding_ = true;
  tlp_retransmitted_ = !sent_new;
  tlp_end_seq_ = snd_nxt_;
  tlp_owed_ack_ = owed_ack;
  ++stats_.tlp_probes;
  ArmRto(now_ns);
  ArmProbeAfterTlp(now_ns);
}

// ----------------------------------------------------------- sending --

void Connection::Retransmit(uint64_t record, uint64_t now_ns) {
  SegmentRecord& r = board_.at(record);
  uint8_t* slot = board_.slot(record);
  for (uint32_t f = 0; f < r.frame_count; ++f) {
    FrameRecord& fr = board_.frame(r.first_frame + f);
    if (fr.kind != FrameInfo::kData || originals_only_) continue;
    FrameInfo lost;
    lost.kind = FrameInfo::kData;
    lost.length = fr.length;
    lost.block = fr.block;
    lost.header = fr.header;
    uint64_t block = 0;
    if (source_->Refresh(lost, slot + fr.offset, &block)) {
      fr.block = block;
      ++stats_.fresh_frames;
    } else {
      ++stats_.stale_frames;
    }
  }
  uint8_t flags = kAck;
  if (r.len > 0) flags |= kPsh;
  if (r.fin) flags |= kFin;
  Emit(r.seq, flags, slot, r.len, now_ns);
  board_.Sent(record, now_ns);
  if (recovery_ == Recovery::kFast) prr_out_ += r.seq_len();
  ++stats_.retransmitted_segments;
  if (rto_deadline_ == kNever) ArmRto(now_ns);
}

size_t Connection::SendNewSegment(uint64_t now_ns, uint32_t room, bool* drained) {
  *drained = false;
  const uint64_t idx = board_.Append(snd_nxt_);
  uint8_t* slot = board_.slot(idx);
  size_t used = 0;
  auto add_frame = [&](const uint8_t* bytes, size_t n, const FrameInfo& info) {
    if (bytes != nullptr) std::memcpy(slot + used, bytes, n);
    FrameRecord fr;
    fr.offset = static_cast<uint32_t>(used);
    fr.length = static_cast<uint32_t>(n);
    fr.kind = info.kind;
    fr.block = info.block;
    fr.header = info.header;
    board_.AddFrame(idx, fr);
    used += n;
  };
  auto start_split = [&]() {
    // Split across segments: the receiver may hold part of it, so no
    // retransmission may change any byte from now on.
    originals_only_ = true;
    std::memcpy(slot, pending_.data(), room);
    pending_sent_ = room;
    used = room;
  };

  if (!pending_.empty()) {
    if (pending_sent_ > 0) {   // the rest of a frame longer than a segment
      size_t n = pending_.size() - pending_sent_;
      if (n > room) n = room;
      std::memcpy(slot, pending_.data() + pending_sent_, n);
      pending_sent_ += n;
      used = n;
      if (pending_sent_ == pending_.size()) {
        pending_.clear();
        pending_sent_ = 0;
      }
    } else if (pending_.size() <= room) {
      add_frame(pending_.data(), pending_.size(), pending_info_);
      pending_.clear();
    } else if (pending_.size() > seg_size_ && room == seg_size_) {
      start_split();
    }
  }
  while (used < room && pending_.empty()) {
    FrameInfo info;
    const size_t n = source_->NextFrame(slot + used, room - used, &info);
    if (n == 0 || n > room - used) break;
    add_frame(nullptr, n, info);
  }
  if (used == 0 && pending_.empty()) {
    // Nothing of at most `room` bytes: maybe nothing at all, maybe a frame
    // that needs more room (or more than a segment). Take it and hold it.
    FrameInfo info;
    const size_t n = source_->NextFrame(t_big_frame, kMaxFrameBytes, &info);
    if (n == 0 || n > kMaxFrameBytes) {
      *drained = true;
    } else if (n <= room) {
      add_frame(t_big_frame, n, info);
    } else {
      pending_.assign(t_big_frame, t_big_frame + n);
      pending_info_ = info;
      pending_sent_ = 0;
      if (n > seg_size_ && room == seg_size_) start_split();
    }
  }
  if (used == 0) {
    board_.DiscardBack();
    return 0;
  }
  SegmentRecord& r = board_.at(idx);
  r.len = static_cast<uint32_t>(used);
  Emit(snd_nxt_, kAck | kPsh, slot, used, now_ns);
  board_.Sent(idx, now_ns);
  if (recovery_ == Recovery::kFast) prr_out_ += static_cast<uint32_t>(used);
  snd_nxt_ += static_cast<uint32_t>(used);
  if (rto_deadline_ == kNever) ArmRto(now_ns);
  return used;
}

void Connection::SendFin(uint64_t now_ns) {
  const uint64_t idx = board_.Append(snd_nxt_);
  board_.at(idx).fin = true;
  fin_seq_ = snd_nxt_;
  fin_sent_ = true;
  Emit(snd_nxt_, kAck | kFin, nullptr, 0, now_ns);
  board_.Sent(idx, now_ns);
  if (recovery_ == Recovery::kFast) prr_out_ += 1;
  snd_nxt_ += 1;
  if (rto_deadline_ == kNever) ArmRto(now_ns);
  state_ = state_ == State::kCloseWait ? State::kLastAck : State::kFinWait1;
}

void Connection::TrySend(uint64_t now_ns) {
  if (state_ == State::kSynReceived || state_ == State::kClosed || state_ == State::kTimeWait) {
    return;
  }
  const uint32_t nxt_before = snd_nxt_;
  for (;;) {
    const int64_t budget = int64_t(cc_.cwnd()) - int64_t(board_.pipe());
    const uint64_t rtx = board_.NextToRetransmit(board_.begin());
    if (rtx != board_.end()) {
      // pipe 0: nothing else can clock it out, so the loss window goes whole.
      if (budget >= int64_t(board_.at(rtx).seq_len()) || board_.pipe() == 0) {
        Retransmit(rtx, now_ns);
        continue;
      }
      break;
    }
    if (!CanSendNewData()) break;
    const int64_t peer_room = int64_t(snd_wnd_) - int64_t(Flight());
    int64_t room = seg_size_;
    if (peer_room < room) room = peer_room;
    if (budget < room) room = budget;
    bool drained = false;
    if (room > 0 && !board_.Full()) {
      if (SendNewSegment(now_ns, static_cast<uint32_t>(room), &drained) > 0) continue;
    }
    if (close_requested_ && drained) SendFin(now_ns);
    break;
  }
  if (snd_nxt_ != nxt_before) SchedulePto(now_ns);   // new data: restart the PTO (§7.2)
}

// ------------------------------------------------------------ timers --

void Connection::OnRtoTimer(uint64_t now_ns) {
  if (state_ == State::kSynReceived) {
    if (syn_ack_retries_ >= cfg_.max_syn_ack_retries) {
      CloseWith(CloseReason::kTimeout);
      return;
    }
    ++syn_ack_retries_;
    rtt_.Backoff();
    SendSynAck(now_ns);
    ArmRto(now_ns);
    return;
  }
  if (board_.empty()) {
    rto_deadline_ = kNever;
    return;
  }
  if (rto_backoffs_ >= cfg_.max_rto_backoffs) {
    SendRstAbort(now_ns);
    CloseWith(CloseReason::kTimeout);
    return;
  }
  ++rto_backoffs_;
  ++stats_.rto_timeouts;
  if (recovery_ == Recovery::kFast) ++stats_.rto_in_recovery;
  if (recovery_ == Recovery::kTimeout) ++stats_.rto_after_rto;
  cc_.OnTimeout(Flight(), rto_backoffs_ == 1);
  rtt_.Backoff();
  // RFC 6582 §3.2 / RFC 6675 §5.1: everything outstanding is lost; no fast
  // retransmit until the ACKs pass what was sent before the timeout.
  recovery_ = Recovery::kTimeout;
  recover_ = snd_nxt_;
  dupacks_ = 0;
  tlp_deadline_ = rack_deadline_ = recovery_probe_deadline_ = kNever;
  tlp_outstanding_ = false;
  board_.MarkAllLost();
  const uint64_t front = board_.begin();
  Retransmit(front, now_ns);
  ArmRto(now_ns);
  ArmRecoveryProbe(now_ns);
}

void Connection::UpdatePersist(uint64_t now_ns) {
  // Nothing in flight and the peer's window too small for a segment: only a
  // probe can learn that the window opened (RFC 9293 §3.8.6.1).
  const bool stalled = CanSendNewData() && board_.empty() && snd_wnd_ < seg_size_;
  if (!stalled) {
    persist_deadline_ = kNever;
    return;
  }
  if (persist_deadline_ == kNever) {
    uint64_t t = rtt_.rto_ns();
    for (uint32_t i = 0; i < persist_backoffs_ && t < cfg_.rto_max_ns; ++i) t *= 2;
    if (t > cfg_.rto_max_ns) t = cfg_.rto_max_ns;
    persist_deadline_ = now_ns + t;
  }
}

void Connection::OnPersistTimer(uint64_t now_ns) {
  persist_deadline_ = kNever;
  if (persist_backoffs_ >= cfg_.max_rto_backoffs) {
    SendRstAbort(now_ns);
    CloseWith(CloseReason::kTimeout);
    return;
  }
  ++persist_backoffs_;
  ++stats_.window_probes;
  // No data: seq = snd_una - 1 is old, so the peer answers with an ACK that
  // carries its window (as Linux's zero-window probe).
  Emit(snd_una_ - 1, kAck, nullptr, 0, now_ns);
}

void Connection::EnterTimeWait(uint64_t now_ns) {
  state_ = State::kTimeWait;
  time_wait_deadline_ = now_ns + cfg_.time_wait_ns;
  rto_deadline_ = kNever;
  tlp_deadline_ = rack_deadline_ = recovery_probe_deadline_ = kNever;
  persist_deadline_ = kNever;
  fin_wait2_deadline_ = kNever;
}

void Connection::CloseWith(CloseReason reason) {
  state_ = State::kClosed;
  reason_ = reason;
  rto_deadline_ = persist_deadline_ = time_wait_deadline_ = fin_wait2_deadline_ = kNever;
  tlp_deadline_ = rack_deadline_ = recovery_probe_deadline_ = kNever;
  ack_pending_ = false;
}

void Connection::Poll(uint64_t now_ns) {
  if (state_ == State::kClosed) return;
  // The probe first: when the PTO was cut to the RTO's expiry, the probe
  // goes instead of the timeout and restarts the RTO (RFC 8985 §7.2).
  if (tlp_deadline_ <= now_ns) OnPtoTimer(now_ns);
  if (rto_deadline_ <= now_ns) OnRtoTimer(now_ns);
  if (state_ == State::kClosed) return RefreshStats();
  // After the RTO: one that fired restarted the probe from now.
  if (recovery_probe_deadline_ <= now_ns) OnRecoveryProbeTimer(now_ns);
  if (rack_deadline_ <= now_ns) RackDetect(now_ns);   // the reorder timer (§6.3)
  if (persist_deadline_ <= now_ns) OnPersistTimer(now_ns);
  if (state_ == State::kClosed) return RefreshStats();
  if (time_wait_deadline_ <= now_ns) {
    CloseWith(CloseReason::kNormal);
    return RefreshStats();
  }
  if (fin_wait2_deadline_ <= now_ns && state_ == State::kFinWait2) {
    CloseWith(CloseReason::kTimeout);
    return RefreshStats();
  }
  TrySend(now_ns);
  if (ack_pending_) SendAck(now_ns);
  UpdatePersist(now_ns);
  RefreshStats();
}

uint64_t Connection::NextDeadline() const {
  if (state_ == State::kClosed) return UINT64_MAX;
  if (ack_pending_) return 0;   // a window update waits for Poll
  uint64_t t = rto_deadline_;
  if (tlp_deadline_ < t) t = tlp_deadline_;
  if (recovery_probe_deadline_ < t) t = recovery_probe_deadline_;
  if (rack_deadline_ < t) t = rack_deadline_;
  if (persist_deadline_ < t) t = persist_deadline_;
  if (time_wait_deadline_ < t) t = time_wait_deadline_;
  if (state_ == State::kFinWait2 && fin_wait2_deadline_ < t) t = fin_wait2_deadline_;
  return t;
}

void Connection::Close(uint64_t now_ns) {
  if (state_ == State::kClosed || close_requested_) return;
  close_requested_ = true;
  TrySend(now_ns);
  RefreshStats();
}

void Connection::Abort(uint64_t now_ns) {
  if (state_ == State::kClosed) return;
  if (state_ != State::kTimeWait) SendRstAbort(now_ns);
  CloseWith(CloseReason::kAborted);
  RefreshStats();
}

// ----------------------------------------------------------- reading --

size_t Connection::Readable() const { return rcv_len_; }

size_t Connection::Read(uint8_t* out, size_t cap) {
  size_t n = rcv_len_ < cap ? rcv_len_ : cap;
  if (n == 0) return 0;
  const size_t size = rcv_buf_.size();
  const size_t first = n < size - rcv_head_ ? n : size - rcv_head_;
  std::memcpy(out, rcv_buf_.data() + rcv_head_, first);
  if (first < n) std::memcpy(out + first, rcv_buf_.data(), n - first);
  rcv_head_ = (rcv_head_ + n) % size;
  rcv_len_ -= n;
  // A window update when the window grew by two segments or opened from
  // zero (RFC 9293 §3.8.6.2.2, receiver-side silly window avoidance).
  if (state_ != State::kClosed && state_ != State::kSynReceived) {
    const uint32_t now_wnd = Min32(FreeSpace() >> rcv_wscale_, 0xFFFF) << rcv_wscale_;
    if ((rcv_wnd_announced_ == 0 && now_wnd > 0) ||
        now_wnd >= rcv_wnd_announced_ + 2u * cfg_.mss) {
      ack_pending_ = true;
    }
  }
  return n;
}

bool Connection::PeerFinished() const { return peer_fin_; }
State Connection::state() const { return state_; }
CloseReason Connection::close_reason() const { return reason_; }
Endpoint4 Connection::local() const { return local_; }
Endpoint4 Connection::remote() const { return remote_; }

const ConnectionStats& Connection::stats() const {
  RefreshStats();
  return stats_;
}

void Connection::RefreshStats() const {
  stats_.cwnd = cc_.cwnd();
  stats_.ssthresh = cc_.ssthresh();
  stats_.flight = snd_nxt_ - snd_una_;
  stats_.srtt_us = static_cast<uint32_t>(rtt_.srtt_ns() / 1000);
  stats_.rto_ms = static_cast<uint32_t>(rtt_.rto_ns() / kMs);
  stats_.snd_wnd = snd_wnd_;
  stats_.recovery = static_cast<uint8_t>(recovery_);
  stats_.pipe = static_cast<uint32_t>(board_.pipe());
}

}  // namespace tcp
}  // namespace rqcast

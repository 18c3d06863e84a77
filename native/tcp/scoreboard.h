// rqcast — the sender's record of every segment in flight, and the SACK
// scoreboard over them (RFC 6675 §2, §4).
//
// The connection never re-segments: a segment keeps its sequence range and
// its frames (offset, length, kind, block) from its first transmission until
// it is acknowledged, and every retransmission sends the same range. Each
// record owns a fixed slot of slot_size bytes (its payload, rewritten in
// place when its data frames are refreshed) and a run of frame records.
// Records, slots and frames live in rings that grow by doubling up to a
// bound and are reused after that: no allocation per segment in the steady
// state.
//
// pipe (RFC 6675 §4): the bytes the sender believes are in the network —
// every record neither SACKed nor waiting for its retransmission. It is kept
// up to date as records change, never recounted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tcp/frame_source.h"
#include "tcp/segment.h"

namespace rqcast {
namespace tcp {

// A FIFO over a power-of-two array addressed by absolute (never wrapping,
// 64-bit) indices; grows by doubling, keeping every index valid.
template <typename T>
class Ring {
 public:
  uint64_t begin() const { return head_; }
  uint64_t end() const { return tail_; }
  size_t size() const { return static_cast<size_t>(tail_ - head_); }
  size_t capacity() const { return buf_.size(); }
  bool empty() const { return head_ == tail_; }
  T& operator[](uint64_t i) { return buf_[i & (buf_.size() - 1)]; }
  const T& operator[](uint64_t i) const { return buf_[i & (buf_.size() - 1)]; }
  // Makes room for one more (doubling when full) and returns its index.
  uint64_t push_back(const T& v) {
    if (size() == buf_.size()) Grow(buf_.empty() ? 16 : 2 * buf_.size());
    buf_[tail_ & (buf_.size() - 1)] = v;
    return tail_++;
  }
  void pop_front(size_t n = 1) { head_ += n; }
  void pop_back() { --tail_; }
  void Grow(size_t cap) {
    std::vector<T> next(cap);
    for (uint64_t i = head_; i != tail_; ++i) next[i & (cap - 1)] = (*this)[i];
    buf_.swap(next);
  }

 private:
  std::vector<T> buf_;
  uint64_t head_ = 0, tail_ = 0;
};

struct FrameRecord {
  uint32_t offset = 0;          // in the segment's payload
  uint32_t length = 0;
  FrameInfo::Kind kind = FrameInfo::kControl;
  uint16_t header = 0;          // FrameInfo::header
  uint64_t block = 0;
};

struct SegmentRecord {
  uint32_t seq = 0;
  uint32_t len = 0;             // payload bytes
  bool fin = false;             // the FIN follows the payload (one more sequence number)
  uint64_t first_frame = 0;     // index in the frame ring
  uint32_t frame_count = 0;
  uint32_t transmissions = 0;   // 1 after the first send; > 1: retransmitted
  uint64_t sent_ns = 0;         // last (re)transmission (RACK's Segment.xmit_ts)
  bool sacked = false;
  bool lost = false;            // judged lost in the current loss episode
  bool needs_rtx = false;       // lost and not retransmitted since
  uint32_t seq_len() const { return len + (fin ? 1u : 0u); }
  uint32_t end() const { return seq + seq_len(); }
};

// RACK (RFC 8985 §6.2 steps 1-2): the most recently sent segment known
// delivered (cumulatively ACKed or SACKed), its RTT, and the least RTT seen.
struct Rack {
  bool valid = false;           // a delivery was seen
  uint64_t xmit_ns = 0;         // RACK.xmit_ts
  uint32_t end_seq = 0;         // RACK.end_seq
  uint64_t rtt_ns = 0;          // RACK.rtt
  uint64_t min_rtt_ns = UINT64_MAX;   // none yet: UINT64_MAX
  // An RTT measurement from elsewhere (timestamps, the handshake).
  void NoteRtt(uint64_t rtt_ns) {
    if (rtt_ns < min_rtt_ns) min_rtt_ns = rtt_ns;
  }
  // Record r was just delivered (now_ns). A retransmitted record whose
  // delivery came sooner than min_rtt after its latest transmission was
  // delivered by an earlier one (the RTT-based check of §6.2 step 2, as
  // Linux does): it is ignored. A record never retransmitted also gives a
  // min_rtt sample.
  void Offer(const SegmentRecord& r, uint64_t now_ns);
  // Whether a record sent at (xmit_ns, end_seq) went before RACK's segment.
  bool SentBefore(uint64_t rec_xmit_ns, uint32_t rec_end_seq) const;
};

class Scoreboard {
 public:
  // slot_size: the largest payload of one segment; max_records: the most
  // records held at once (Full() after that).
  void Init(uint32_t slot_size, size_t max_records);

  bool empty() const { return records_.empty(); }
  size_t size() const { return records_.size(); }
  bool Full() const { return records_.size() >= max_records_; }
  uint64_t begin() const { return records_.begin(); }
  uint64_t end() const { return records_.end(); }
  SegmentRecord& at(uint64_t i) { return records_[i]; }
  const SegmentRecord& at(uint64_t i) const { return records_[i]; }
  uint8_t* slot(uint64_t i);
  const uint8_t* slot(uint64_t i) const;
  FrameRecord& frame(uint64_t i) { return frames_[i]; }
  const FrameRecord& frame(uint64_t i) const { return frames_[i]; }

  // A new record at the back (not yet counted in pipe: Sent() does that);
  // its slot is slot(index). Callers check Full() first.
  uint64_t Append(uint32_t seq);
  void AddFrame(uint64_t record, const FrameRecord& f);
  // The record went on the wire (first time or again).
  void Sent(uint64_t record, uint64_t now_ns);
  // Drops the front record (acknowledged) and its frames.
  void PopFront();
  // Takes back the record Append just made, before any frame was added
  // (nothing was ready to fill it).
  void DiscardBack();

  // Applies SACK blocks (RFC 2018): a record inside a block becomes SACKed.
  // Blocks not within [snd_una, snd_nxt] are ignored (D-SACK, RFC 2883, or
  // garbage). Returns the bytes newly SACKed.
  // With rack: each newly SACKed record is offered to it (delivered at now_ns).
  uint32_t Sack(const SackBlock* blocks, int count, uint32_t snd_una, uint32_t snd_nxt,
                Rack* rack = nullptr, uint64_t now_ns = 0);
  // RACK detect-lost (RFC 8985 §6.2 step 5): every record in flight (not
  // SACKed, not already waiting for retransmission, retransmitted before or
  // not) sent before RACK's segment and longer ago than rack.rtt_ns +
  // reo_wnd_ns is marked lost. *marked: how many. Returns how long until the
  // next such record becomes lost (the reorder timer, §6.3), 0 if none waits.
  uint64_t RackDetectLost(const Rack& rack, uint64_t reo_wnd_ns, uint64_t now_ns, int* marked);
  // RFC 6675 IsLost for each record below the highest SACKed one: at least
  // dup_thresh SACKed records, or more than (dup_thresh - 1) * smss SACKed
  // bytes, above it. Marks such records lost (to be retransmitted) unless
  // they already were in this episode; returns how many it marked.
  int MarkLostBySack(int dup_thresh, uint32_t smss);
  // Whether the front record is lost by that rule (enters recovery).
  bool FrontIsLost(int dup_thresh, uint32_t smss) const;
  // Marks one record lost (fast retransmit, a partial ACK, a timeout).
  void MarkLost(uint64_t record);
  // After a timeout: every record not SACKed is lost (RFC 6675 §5.1).
  void MarkAllLost();
  // Ends a loss episode: records already retransmitted may be judged lost
  // again in the next one.
  void EndEpisode();
  // The first record waiting for retransmission at or after `from`, or end().
  uint64_t NextToRetransmit(uint64_t from);
  // The record holding sequence number `seq`, or end().
  uint64_t Find(uint32_t seq) const;

  uint32_t pipe() const { return pipe_; }
  uint32_t sacked_bytes() const { return sacked_bytes_; }
  uint32_t slot_size() const { return slot_size_; }

 private:
  static uint32_t InPipe(const SegmentRecord& r) {
    return (!r.sacked && !r.needs_rtx && r.transmissions > 0) ? r.seq_len() : 0;
  }
  // Before and after every change of a record's flags: keeps pipe_ and the
  // counters true without recounting.
  void Forget(const SegmentRecord& r);
  void Count(uint64_t i, const SegmentRecord& r);

  Ring<SegmentRecord> records_;
  Ring<FrameRecord> frames_;
  std::vector<uint8_t> slots_;   // records_.capacity() slots of slot_size_
  uint32_t slot_size_ = 0;
  size_t max_records_ = 0;
  uint32_t pipe_ = 0;
  uint32_t sacked_bytes_ = 0;
  uint32_t sacked_count_ = 0;
  uint32_t rtx_count_ = 0;        // records with needs_rtx
  uint64_t rtx_hint_ = 0;         // no record below this index needs_rtx
};

}  // namespace tcp
}  // namespace rqcast

// rqcast — segment records and the SACK scoreboard (see scoreboard.h).
#include "tcp/scoreboard.h"

#include <cstring>

#include "tcp/seq.h"

namespace rqcast {
namespace tcp {

void Scoreboard::Init(uint32_t slot_size, size_t max_records) {
  slot_size_ = slot_size;
  max_records_ = max_records < 4 ? 4 : max_records;
}

uint8_t* Scoreboard::slot(uint64_t i) {
  return slots_.data() + (i & (records_.capacity() - 1)) * slot_size_;
}

const uint8_t* Scoreboard::slot(uint64_t i) const {
  return slots_.data() + (i & (records_.capacity() - 1)) * slot_size_;
}

uint64_t Scoreboard::Append(uint32_t seq) {
  if (records_.size() == records_.capacity()) {
    // Grow records and slots together: a record's slot is its ring position.
    const size_t old_cap = records_.capacity();
    const size_t cap = old_cap == 0 ? 16 : 2 * old_cap;
    std::vector<uint8_t> next(cap * slot_size_);
    for (uint64_t i = records_.begin(); i != records_.end(); ++i) {
      std::memcpy(next.data() + (i & (cap - 1)) * slot_size_,
                  slots_.data() + (i & (old_cap - 1)) * slot_size_, slot_size_);
    }
    slots_.swap(next);
    records_.Grow(cap);
  }
  SegmentRecord r;
  r.seq = seq;
  r.first_frame = frames_.end();
  return records_.push_back(r);
}

void Scoreboard::Forget(const SegmentRecord& r) {
  pipe_ -= InPipe(r);
  if (r.sacked) {
    sacked_bytes_ -= r.seq_len();
    --sacked_count_;
  }
  if (r.needs_rtx) --rtx_count_;
}

void Scoreboard::Count(uint64_t i, const SegmentRecord& r) {
  pipe_ += InPipe(r);
  if (r.sacked) {
    sacked_bytes_ += r.seq_len();
    ++sacked_count_;
  }
  if (r.needs_rtx) {
    ++rtx_count_;
    if (i < rtx_hint_) rtx_hint_ = i;
  }
}

void Scoreboard::AddFrame(uint64_t record, const FrameRecord& f) {
  frames_.push_back(f);
  ++records_[record].frame_count;
}

void Scoreboard::Sent(uint64_t record, uint64_t now_ns) {
  SegmentRecord& r = records_[record];
  Forget(r);
  ++r.transmissions;
  r.sent_ns = now_ns;
  r.needs_rtx = false;
  Count(record, r);
}

void Scoreboard::PopFront() {
  const SegmentRecord& r = records_[records_.begin()];
  Forget(r);
  frames_.pop_front(r.frame_count);
  records_.pop_front();
}

void Scoreboard::DiscardBack() { records_.pop_back(); }

void Rack::Offer(const SegmentRecord& r, uint64_t now_ns) {
  if (r.transmissions == 0 || now_ns < r.sent_ns) return;
  const uint64_t rtt = now_ns - r.sent_ns;
  if (r.transmissions > 1) {
    if (rtt < min_rtt_ns) return;   // ambiguous: an earlier transmission's
  } else {
    NoteRtt(rtt);
  }
  if (!valid || !SentBefore(r.sent_ns, r.end())) {
    if (valid && r.sent_ns == xmit_ns && r.end() == end_seq) return;
    valid = true;
    xmit_ns = r.sent_ns;
    end_seq = r.end();
    rtt_ns = rtt;
  }
}

bool Rack::SentBefore(uint64_t rec_xmit_ns, uint32_t rec_end_seq) const {
  // RACK_sent_after(RACK.xmit_ts, RACK.end_seq, t, seq) (§6.2).
  return xmit_ns > rec_xmit_ns || (xmit_ns == rec_xmit_ns && SeqGt(end_seq, rec_end_seq));
}

uint64_t Scoreboard::RackDetectLost(const Rack& rack, uint64_t reo_wnd_ns, uint64_t now_ns,
                                    int* marked) {
  *marked = 0;
  if (!rack.valid) return 0;
  uint64_t timeout = 0;
  for (uint64_t i = records_.begin(); i != records_.end(); ++i) {
    SegmentRecord& r = records_[i];
    if (r.transmissions == 0) break;
    if (!rack.SentBefore(r.sent_ns, r.end())) {
      // Records go out in sequence order the first time, and a
      // retransmission only makes a record later: past the first record
      // never retransmitted that is not before RACK's, none is.
      if (r.transmissions == 1) break;
      continue;
    }
    if (r.sacked || r.needs_rtx) continue;
    const uint64_t due = r.sent_ns + rack.rtt_ns + reo_wnd_ns;
    if (due <= now_ns) {
      MarkLost(i);
      ++*marked;
    } else if (due - now_ns > timeout) {
      timeout = due - now_ns;
    }
  }
  return timeout;
}

uint32_t Scoreboard::Sack(const SackBlock* blocks, int count, uint32_t snd_una,
                          uint32_t snd_nxt, Rack* rack, uint64_t now_ns) {
  uint32_t newly = 0;
  for (int b = 0; b < count; ++b) {
    const SackBlock& s = blocks[b];
    if (!SeqLt(s.left, s.right) || SeqLt(s.left, snd_una) || SeqGt(s.right, snd_nxt)) continue;
    // Records tile the sequence space in order: binary search for the
    // first that ends after left.
    uint64_t lo = records_.begin(), hi = records_.end();
    while (lo < hi) {
      const uint64_t mid = lo + (hi - lo) / 2;
      if (SeqLeq(records_[mid].end(), s.left)) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    for (uint64_t i = lo; i != records_.end(); ++i) {
      SegmentRecord& r = records_[i];
      if (SeqGeq(r.seq, s.right)) break;
      if (r.sacked || SeqLt(r.seq, s.left) || SeqGt(r.end(), s.right)) continue;
      Forget(r);
      r.sacked = true;
      r.needs_rtx = false;
      Count(i, r);
      newly += r.seq_len();
      if (rack != nullptr) rack->Offer(r, now_ns);
    }
  }
  return newly;
}

int Scoreboard::MarkLostBySack(int dup_thresh, uint32_t smss) {
  int marked = 0;
  int sacked_above = 0;
  uint64_t bytes_above = 0;
  const uint64_t limit = uint64_t(dup_thresh - 1) * smss;
  for (uint64_t i = records_.end(); i != records_.begin();) {
    --i;
    SegmentRecord& r = records_[i];
    if (r.sacked) {
      ++sacked_above;
      bytes_above += r.seq_len();
      continue;
    }
    if (r.lost || r.transmissions == 0) continue;
    if (sacked_above >= dup_thresh || bytes_above > limit) {
      MarkLost(i);
      ++marked;
    }
  }
  return marked;
}

bool Scoreboard::FrontIsLost(int dup_thresh, uint32_t smss) const {
  // Every SACKed record lies above an unSACKed front.
  if (records_.empty() || records_[records_.begin()].sacked) return false;
  return sacked_count_ >= uint32_t(dup_thresh) ||
         uint64_t(sacked_bytes_) > uint64_t(dup_thresh - 1) * smss;
}

void Scoreboard::MarkLost(uint64_t record) {
  SegmentRecord& r = records_[record];
  if (r.sacked) return;
  Forget(r);
  r.lost = true;
  r.needs_rtx = true;
  Count(record, r);
}

void Scoreboard::MarkAllLost() {
  for (uint64_t i = records_.begin(); i != records_.end(); ++i) MarkLost(i);
}

void Scoreboard::EndEpisode() {
  for (uint64_t i = records_.begin(); i != records_.end(); ++i) {
    SegmentRecord& r = records_[i];
    if (!r.needs_rtx) r.lost = false;
  }
}

uint64_t Scoreboard::NextToRetransmit(uint64_t from) {
  if (rtx_count_ == 0) return records_.end();
  if (from < rtx_hint_) from = rtx_hint_;
  if (from < records_.begin()) from = records_.begin();
  for (uint64_t i = from; i < records_.end(); ++i) {
    if (records_[i].needs_rtx) {
      if (i > rtx_hint_ && from == rtx_hint_) rtx_hint_ = i;
      return i;
    }
  }
  return records_.end();
}

uint64_t Scoreboard::Find(uint32_t seq) const {
  for (uint64_t i = records_.begin(); i != records_.end(); ++i) {
    const SegmentRecord& r = records_[i];
    if (SeqLeq(r.seq, seq) && SeqLt(seq, r.end())) return i;
  }
  return records_.end();
}

}  // namespace tcp
}  // namespace rqcast

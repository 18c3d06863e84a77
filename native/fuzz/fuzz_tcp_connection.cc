// libFuzzer harness: one TCP connection (native/tcp/connection.h) fed a
// sequence of fuzzer-made segments, clock steps, frames, reads and closes.
//
// Properties, checked on every segment it transmits and after every step:
//  - no payload is longer than the segment size, which is at most
//    max(min(our MSS, the peer's MSS), kMinPeerMss);
//  - new data is contiguous (each new segment starts where the last ended);
//    a retransmission has the sequence number and length of a segment sent
//    before (the connection never re-segments), and unless the connection
//    sends originals its frames have the same boundaries and lengths;
//  - every data segment holds whole frames unless a frame was split;
//  - snd_una <= snd_nxt, flight == snd_nxt - snd_una, cwnd <= max_cwnd;
//  - after Poll(now) no timer is due at or before now;
//  - nothing is transmitted once the connection is closed;
//  - RACK-TLP (on when SACK is and the config allows): no loss probe and no
//    RACK loss without it; probes only from Poll, at most one per Poll, and
//    never a second one before an ACK reaches the first one's end (at
//    least snd_nxt before the Poll that sent it) or an RTO fires.
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <vector>

#include "fuzz_check.h"
#include "tcp/connection.h"
#include "tcp/seq.h"

using namespace rqcast::tcp;

namespace {

using Bytes = std::vector<uint8_t>;

// Frame lengths as the u16 chain of a payload; false if the chain does not
// end exactly at the payload's end.
bool FrameChain(const Bytes& p, std::vector<uint32_t>* lens) {
  size_t at = 0;
  while (at < p.size()) {
    if (p.size() - at < 2) return false;
    const uint32_t len = 2u + ((uint32_t(p[at]) << 8) | p[at + 1]);
    if (len > p.size() - at) return false;
    lens->push_back(len);
    at += len;
  }
  return true;
}

class Source : public FrameSource {
 public:
  size_t NextFrame(uint8_t* out, size_t max_bytes, FrameInfo* info) override {
    if (frames.empty() || frames.front().size() > max_bytes) return 0;
    std::memcpy(out, frames.front().data(), frames.front().size());
    info->kind = kinds.front();
    info->length = static_cast<uint32_t>(frames.front().size());
    info->block = 1;
    frames.pop_front();
    kinds.pop_front();
    return info->length;
  }
  bool Refresh(const FrameInfo& lost, uint8_t* out, uint64_t* block) override {
    FUZZ_CHECK(lost.kind == FrameInfo::kData);
    FUZZ_CHECK(lost.length >= 2);
    if (!refresh_ok) return false;
    out[0] = static_cast<uint8_t>((lost.length - 2) >> 8);
    out[1] = static_cast<uint8_t>(lost.length - 2);
    std::memset(out + 2, 0xEE, lost.length - 2);
    *block = 2;
    return true;
  }
  void Add(uint32_t framed, FrameInfo::Kind kind) {
    Bytes f(framed, 0x11);
    f[0] = static_cast<uint8_t>((framed - 2) >> 8);
    f[1] = static_cast<uint8_t>(framed - 2);
    frames.push_back(f);
    kinds.push_back(kind);
  }
  std::deque<Bytes> frames;
  std::deque<FrameInfo::Kind> kinds;
  bool refresh_ok = true;
};

class Checker : public SegmentOutput {
 public:
  void Transmit(const OutSegment& seg, const uint8_t* payload, size_t len) override {
    FUZZ_CHECK(!closed);
    FUZZ_CHECK(conn != nullptr || (seg.flags & kSyn));
    if (conn == nullptr) return;   // the SYN-ACK from the constructor
    FUZZ_CHECK(len <= conn->segment_size());
    FUZZ_CHECK(len <= max_payload);
    if (len == 0) return;
    Bytes p(payload, payload + len);
    std::vector<uint32_t> lens;
    const bool whole = FrameChain(p, &lens);
    if (!conn->sends_originals()) FUZZ_CHECK(whole);
    if (!have_next) {
      next_new = seg.seq;
      have_next = true;
    }
    if (seg.seq == next_new) {   // new data
      sent[seg.seq] = Record{static_cast<uint32_t>(len), lens, whole};
      next_new = seg.seq + static_cast<uint32_t>(len);
      return;
    }
    // A retransmission: a range sent before, exactly.
    FUZZ_CHECK(SeqLt(seg.seq, next_new));
    auto it = sent.find(seg.seq);
    FUZZ_CHECK(it != sent.end());
    FUZZ_CHECK(it->second.len == len);
    if (!conn->sends_originals() && it->second.whole) FUZZ_CHECK(it->second.lens == lens);
  }
  void Prune(uint32_t snd_una) {
    // Keys are ordered as plain integers, so after a wrap the front may not
    // be the oldest: pruning stops there, which only costs memory.
    while (!sent.empty()) {
      auto it = sent.begin();
      if (!SeqLeq(it->first + it->second.len, snd_una)) break;
      sent.erase(it);
    }
  }
  struct Record {
    uint32_t len;
    std::vector<uint32_t> lens;
    bool whole;
  };
  const Connection* conn = nullptr;
  bool closed = false;
  uint32_t max_payload = 0;
  std::map<uint32_t, Record> sent;   // by sequence number
  uint32_t next_new = 0;
  bool have_next = false;
};

void CheckInvariants(const Connection& c, const Config& cfg) {
  FUZZ_CHECK(SeqLeq(c.snd_una(), c.snd_nxt()));
  const ConnectionStats& st = c.stats();
  FUZZ_CHECK(st.flight == c.snd_nxt() - c.snd_una());
  FUZZ_CHECK(st.flight < 0x80000000u);
  FUZZ_CHECK(st.cwnd <= (cfg.max_cwnd_bytes < 2 * c.segment_size() ? 2 * c.segment_size()
                                                                      : cfg.max_cwnd_bytes));
  FUZZ_CHECK(c.Readable() <= cfg.rcv_buffer);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  Config cfg;
  cfg.mss = static_cast<uint16_t>(64 + in.u16() % 1500);
  cfg.wscale = in.u8() % 16;
  cfg.rcv_buffer = 1 + in.u16() * 2;
  cfg.initial_cwnd_segments = 1 + in.u8() % 12;
  cfg.max_cwnd_bytes = 1 + in.u24() * 4;
  cfg.max_rto_backoffs = in.u8() % 10;
  cfg.max_syn_ack_retries = in.u8() % 6;
  const uint8_t features = in.u8();
  cfg.sack = features & 1;
  cfg.timestamps = features & 2;
  cfg.window_scaling = features & 4;
  cfg.rack_tlp = !(features & 8);

  Segment syn;
  syn.src = {0x0A000001, 50000};
  syn.dst = {0x0A000002, 4000};
  syn.flags = kSyn;
  syn.seq = static_cast<uint32_t>(in.u16() << 16 | in.u16());
  syn.window = static_cast<uint16_t>(in.u16());
  const uint8_t o = in.u8();
  syn.options.has_mss = o & 1;
  syn.options.mss = static_cast<uint16_t>(in.u16());
  syn.options.has_wscale = o & 2;
  syn.options.wscale = in.u8() % 16;
  syn.options.sack_permitted = o & 4;
  syn.options.has_timestamps = o & 8;
  syn.options.ts_val = in.u16();
  const uint32_t iss = static_cast<uint32_t>(in.u16() << 16 | in.u16());

  uint32_t peer_mss = syn.options.has_mss ? syn.options.mss : Connection::kDefaultPeerMss;
  if (peer_mss < Connection::kMinPeerMss) peer_mss = Connection::kMinPeerMss;
  uint32_t eff = cfg.mss < peer_mss ? cfg.mss : peer_mss;
  if (eff < Connection::kMinPeerMss) eff = Connection::kMinPeerMss;

  Source src;
  Checker out;
  out.max_payload = eff;
  uint64_t now = in.u16();
  Connection c(cfg, syn, iss, now, &src, &out);
  out.conn = &c;
  uint32_t peer_seq = syn.seq + 1;
  uint32_t peer_ts = syn.options.ts_val;
  const bool rack_on = cfg.rack_tlp && cfg.sack && syn.options.sack_permitted;
  uint64_t probes = 0, rtos = 0;
  uint32_t probe_end = 0;
  bool probe_out = false;
  uint8_t payload[4096];
  for (size_t i = 0; i < sizeof payload; ++i) payload[i] = static_cast<uint8_t>(i);

  for (int step = 0; step < 400 && !in.empty(); ++step) {
    const uint8_t op = in.u8();
    switch (op % 8) {
      case 0:
      case 1: {   // the clock moves; Poll
        const uint8_t unit = in.u8();
        uint64_t d = in.u16();
        d *= (unit & 3) == 0 ? 1000ull : (unit & 3) == 1 ? 1000000ull : (unit & 3) == 2 ? 10000000ull : 1000000000ull;
        now += d;
        const uint32_t nxt_before = c.snd_nxt();
        c.Poll(now);
        {
          const ConnectionStats& st = c.stats();
          FUZZ_CHECK(st.tlp_probes <= probes + 1);
          if (st.rto_timeouts != rtos) probe_out = false;
          if (st.tlp_probes != probes) {
            FUZZ_CHECK(!probe_out);
            probe_out = true;
            probe_end = nxt_before;   // the probe's end is at or above
          }
          probes = st.tlp_probes;
          rtos = st.rto_timeouts;
        }
        if (c.state() != State::kClosed) {
          const uint64_t next = c.NextDeadline();
          FUZZ_CHECK(next > now);
        }
        break;
      }
      case 2:
      case 3:
      case 4: {   // a segment from the peer
        Segment s;
        s.src = syn.src;
        s.dst = syn.dst;
        const uint8_t how = in.u8();
        const int32_t sd = static_cast<int16_t>(in.u16());
        s.seq = (how & 1) ? peer_seq + static_cast<uint32_t>(sd % 64) : c.rcv_nxt() + sd;
        if ((how & 0x30) == 0x30) s.seq = static_cast<uint32_t>(in.u16() << 16 | in.u16());
        const int32_t ad = static_cast<int16_t>(in.u16());
        const uint32_t una = c.snd_una(), nxt = c.snd_nxt();
        const uint32_t span = nxt - una;
        s.ack = (how & 2) ? una + (span ? static_cast<uint32_t>(ad & 0x7FFF) % (span + 1) : 0)
                          : una + ad;
        s.flags = in.u8();
        if ((how & 4) == 0) s.flags = (s.flags & (kFin | kPsh)) | kAck;   // mostly plain
        s.window = static_cast<uint16_t>(in.u16());
        if (how & 8) {
          s.options.sack_count = in.u8() % 5;
          for (int b = 0; b < s.options.sack_count; ++b) {
            const uint32_t l = una + (span ? in.u16() % (span + 1) : 0);
            const uint32_t r = l + in.u16() % 3000;
            s.options.sack[b] = {l, r};
          }
        }
        if (how & 0x40) {
          s.options.has_timestamps = true;
          peer_ts += in.u8();
          s.options.ts_val = peer_ts;
          s.options.ts_ecr = static_cast<uint32_t>(now / 1000000) + iss - in.u8();
        }
        const size_t plen = (how & 0x80) ? in.u16() % sizeof payload : 0;
        s.payload = payload;
        s.payload_len = plen;
        c.OnSegment(s, now);
        if (SeqGeq(c.rcv_nxt(), peer_seq)) peer_seq = c.rcv_nxt();
        FUZZ_CHECK(c.stats().tlp_probes == probes);   // probes only from Poll
        if (probe_out && SeqGeq(c.snd_una(), probe_end)) probe_out = false;
        break;
      }
      case 5: {   // frames become ready
        const uint8_t n = 1 + in.u8() % 8;
        const uint8_t kind = in.u8();
        for (int i = 0; i < n; ++i) {
          uint32_t len = 2 + in.u16() % 1600;
          if ((kind & 0xF0) == 0xF0) len = 2 + in.u16() % 6000;   // sometimes larger than a segment
          src.Add(len, (kind >> i) & 1 ? FrameInfo::kData : FrameInfo::kControl);
        }
        break;
      }
      case 6: {   // the shell reads, or toggles the source's replacements
        const uint8_t what = in.u8();
        if (what & 1) {
          src.refresh_ok = !src.refresh_ok;
        } else {
          uint8_t buf[8192];
          const size_t before = c.Readable();
          const size_t got = c.Read(buf, in.u16() % sizeof buf);
          FUZZ_CHECK(got <= before);
          FUZZ_CHECK(c.Readable() == before - got);
        }
        break;
      }
      case 7: {
        const uint8_t what = in.u8();
        if (what < 200) {
          c.Close(now);
        } else if (what < 210) {
          c.Abort(now);
        }
        break;
      }
    }
    out.Prune(c.snd_una());
    CheckInvariants(c, cfg);
    if (!rack_on) FUZZ_CHECK(c.stats().tlp_probes == 0 && c.stats().rack_lost == 0);
    if (c.state() == State::kClosed) out.closed = true;
  }
  return 0;
}

// Tests of the I/O-free TCP connection (native/tcp/connection.h), named
// state_event as the RFC describes them. Each drives one Connection with a
// fake clock (plain ns values), a recording SegmentOutput and a scripted
// FrameSource, and checks exact values: sequence numbers, windows, cwnd,
// RTO at given times.
//
// The setting unless a test says otherwise: the client 10.0.0.1:50000, our
// side 10.0.0.2:4000, IRS 5000, ISS 1000, MSS 1460 both ways, no options
// (so a segment holds 1460 bytes), frames of 700 bytes (two per segment).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

#include "tcp/connection.h"
#include "tcp/seq.h"

#include "check.h"

using namespace rqcast::tcp;

namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint64_t kMs = 1000000ull;
constexpr uint32_t kIss = 1000;
constexpr uint32_t kIrs = 5000;
const Endpoint4 kClient{0x0A000001, 50000};
const Endpoint4 kServer{0x0A000002, 4000};

struct Sent {
  OutSegment seg;
  Bytes payload;
  bool has(uint8_t f) const { return (seg.flags & f) != 0; }
};

class Recorder : public SegmentOutput {
 public:
  void Transmit(const OutSegment& seg, const uint8_t* payload, size_t len) override {
    Sent s;
    s.seg = seg;
    s.payload.assign(payload, payload + len);
    sent.push_back(s);
  }
  std::vector<Sent> sent;
  // Segments since the last take().
  std::vector<Sent> take() {
    std::vector<Sent> r;
    r.swap(sent);
    return r;
  }
};

// Frames laid out as the stream carries them: u16 length (of the packet),
// then the packet. Frame number i's packet bytes are all (i & 0x7F); a fresh
// replacement's are 0x80 | its number, so a test sees which bytes went.
class ScriptedSource : public FrameSource {
 public:
  struct Frame {
    FrameInfo info;
    Bytes bytes;
  };
  void AddData(uint32_t framed_len, uint64_t block) { Add(FrameInfo::kData, framed_len, block); }
  void AddControl(uint32_t framed_len) { Add(FrameInfo::kControl, framed_len, 0); }
  void Add(FrameInfo::Kind kind, uint32_t framed_len, uint64_t block) {
    Frame f;
    f.info.kind = kind;
    f.info.length = framed_len;
    f.info.block = block;
    f.bytes = Framed(framed_len, static_cast<uint8_t>(added_++ & 0x7F));
    frames.push_back(f);
  }
  static Bytes Framed(uint32_t framed_len, uint8_t fill) {
    Bytes b(framed_len, fill);
    b[0] = static_cast<uint8_t>((framed_len - 2) >> 8);
    b[1] = static_cast<uint8_t>(framed_len - 2);
    return b;
  }
  size_t NextFrame(uint8_t* out, size_t max_bytes, FrameInfo* info) override {
    ++next_calls;
    if (frames.empty() || frames.front().bytes.size() > max_bytes) return 0;
    const Frame f = frames.front();
    frames.pop_front();
    std::memcpy(out, f.bytes.data(), f.bytes.size());
    *info = f.info;
    return f.bytes.size();
  }
  bool Refresh(const FrameInfo& lost, uint8_t* out, uint64_t* block) override {
    refresh_requests.push_back(lost);
    if (!refresh_ok) return false;
    const Bytes b = Framed(lost.length, static_cast<uint8_t>(0x80 | (fresh_++ & 0x7F)));
    std::memcpy(out, b.data(), b.size());
    *block = lost.block + 100;
    return true;
  }
  std::deque<Frame> frames;
  std::vector<FrameInfo> refresh_requests;
  bool refresh_ok = true;
  int next_calls = 0;

 private:
  uint32_t added_ = 0;
  uint32_t fresh_ = 0;
};

// A segment from the client.
Segment From(uint32_t seq, uint32_t ack, uint8_t flags, uint16_t window = 65535) {
  Segment s;
  s.src = kClient;
  s.dst = kServer;
  s.seq = seq;
  s.ack = ack;
  s.flags = flags;
  s.window = window;
  return s;
}

struct Fixture {
  Config cfg;
  Recorder out;
  ScriptedSource src;
  std::unique_ptr<Connection> c;
  uint32_t peer_seq = kIrs + 1;   // the client's next sequence number

  // The SYN at time t with these options and window.
  void Syn(const Options& o, uint64_t t = 0, uint16_t window = 65535) {
    Segment syn = From(kIrs, 0, kSyn, window);
    syn.options = o;
    c.reset(new Connection(cfg, syn, kIss, t, &src, &out));
  }
  // SYN at 0 (MSS 1460, nothing else), its ACK at 10 ms with `window`.
  void Open(uint16_t window = 65535) {
    Options o;
    o.has_mss = true;
    o.mss = 1460;
    Syn(o);
    c->OnSegment(From(peer_seq, kIss + 1, kAck, window), 10 * kMs);
    out.take();
  }
  void Ack(uint32_t ack, uint64_t t, uint16_t window = 65535) {
    c->OnSegment(From(peer_seq, ack, kAck, window), t);
  }
  void AckSack(uint32_t ack, uint64_t t, std::vector<SackBlock> blocks, uint16_t window = 65535) {
    Segment s = From(peer_seq, ack, kAck, window);
    for (const SackBlock& b : blocks) s.options.sack[s.options.sack_count++] = b;
    c->OnSegment(s, t);
  }
  void Data(uint64_t n700) {
    for (uint64_t i = 0; i < n700; ++i) src.AddData(700, i / 4);
  }
};

uint32_t SegSeq(int k) { return kIss + 1 + 1400u * k; }   // k-th 1400-byte segment

// ---------------------------------------------------------------- handshake --

void syn_received_then_ack() {
  Fixture f;
  Options o;
  o.has_mss = true;
  o.mss = 1460;
  f.Syn(o, 0);
  CHECK_EQ(f.c->state(), State::kSynReceived);
  CHECK_EQ(f.out.sent.size(), size_t(1));
  const Sent& sa = f.out.sent[0];
  CHECK_EQ(sa.seg.flags, uint8_t(kSyn | kAck));
  CHECK_EQ(sa.seg.seq, kIss);
  CHECK_EQ(sa.seg.ack, kIrs + 1);
  CHECK_EQ(sa.seg.window, 65535);   // rcv_buffer 65536, unscaled on a SYN
  CHECK_EQ(sa.seg.src.addr, kServer.addr);
  CHECK_EQ(sa.seg.dst.port, kClient.port);
  CHECK(sa.seg.options.has_mss);
  CHECK_EQ(sa.seg.options.mss, 1460);
  CHECK(!sa.seg.options.has_wscale && !sa.seg.options.sack_permitted &&
        !sa.seg.options.has_timestamps);
  CHECK_EQ(f.c->NextDeadline(), 1000 * kMs);
  CHECK_EQ(f.c->local().port, kServer.port);
  CHECK_EQ(f.c->remote().addr, kClient.addr);

  f.out.take();
  f.c->OnSegment(From(kIrs + 1, kIss + 1, kAck, 30000), 10 * kMs);
  CHECK_EQ(f.c->state(), State::kEstablished);
  CHECK_EQ(f.out.sent.size(), size_t(0));   // a bare ACK needs no answer
  CHECK_EQ(f.c->NextDeadline(), UINT64_MAX);
  const ConnectionStats& st = f.c->stats();
  CHECK_EQ(st.srtt_us, 10000u);             // the SYN-ACK's round trip
  CHECK_EQ(st.rto_ms, 200u);                // 10 + 4 * 5 ms, raised to the 200 ms floor
  CHECK_EQ(st.snd_wnd, 30000u);
  CHECK_EQ(st.cwnd, 14600u);                // 10 segments (RFC 6928)
  CHECK_EQ(st.flight, 0u);
  CHECK_EQ(f.c->segment_size(), 1460u);
}

void syn_received_syn_retransmit() {
  Fixture f;
  Options o;
  o.has_mss = true;
  o.mss = 1460;
  f.Syn(o, 0);
  f.out.take();
  // The client's SYN again (our SYN-ACK was lost): the same SYN-ACK.
  Segment syn = From(kIrs, 0, kSyn);
  syn.options = o;
  f.c->OnSegment(syn, 300 * kMs);
  CHECK_EQ(f.out.sent.size(), size_t(1));
  CHECK_EQ(f.out.sent[0].seg.flags, uint8_t(kSyn | kAck));
  CHECK_EQ(f.out.sent[0].seg.seq, kIss);
  CHECK_EQ(f.out.sent[0].seg.ack, kIrs + 1);
  CHECK_EQ(f.c->state(), State::kSynReceived);
  f.out.take();
  // Timer retransmissions at 1, 3, 7, 15, 31 s (RTO 1 s doubling), then
  // after the fifth retry's 32 s the connection gives up.
  const uint64_t at[] = {1000, 3000, 7000, 15000, 31000};
  for (uint64_t t : at) {
    f.c->Poll(t * kMs - 1);
    CHECK_EQ(f.out.sent.size(), size_t(0));
    f.c->Poll(t * kMs);
    CHECK_EQ(f.out.sent.size(), size_t(1));
    if (!f.out.sent.empty()) CHECK_EQ(f.out.sent[0].seg.flags, uint8_t(kSyn | kAck));
    f.out.take();
  }
  CHECK_EQ(f.c->NextDeadline(), 63000 * kMs);
  f.c->Poll(63000 * kMs);
  CHECK_EQ(f.c->state(), State::kClosed);
  CHECK_EQ(f.c->close_reason(), CloseReason::kTimeout);
  CHECK_EQ(f.out.sent.size(), size_t(0));
}

void syn_received_bad_ack_resets() {
  Fixture f;
  f.Syn(Options(), 0);
  f.out.take();
  // An ACK of something we never sent draws <SEQ=SEG.ACK><CTL=RST>.
  f.c->OnSegment(From(kIrs + 1, kIss + 7, kAck), 5 * kMs);
  CHECK_EQ(f.out.sent.size(), size_t(1));
  CHECK_EQ(f.out.sent[0].seg.flags, uint8_t(kRst));
  CHECK_EQ(f.out.sent[0].seg.seq, kIss + 7);
  CHECK_EQ(f.c->state(), State::kSynReceived);
}

void handshake_without_options() {
  Fixture f;
  f.Syn(Options(), 0);
  const Sent& sa = f.out.sent[0];
  CHECK(sa.seg.options.has_mss);
  CHECK_EQ(sa.seg.options.mss, 1460);
  CHECK(!sa.seg.options.has_wscale && !sa.seg.options.sack_permitted &&
        !sa.seg.options.has_timestamps);
  // No MSS option: the peer takes 536 (RFC 9293 §3.7.1).
  CHECK_EQ(f.c->segment_size(), 536u);
  f.c->OnSegment(From(kIrs + 1, kIss + 1, kAck, 65535), 10 * kMs);
  f.out.take();
  f.src.AddData(500, 1);
  f.src.AddData(500, 1);
  f.c->Poll(10 * kMs);
  CHECK_EQ(f.out.sent.size(), size_t(2));   // 500 + 500 > 536: one frame each
  if (f.out.sent.size() == 2) {
    CHECK_EQ(f.out.sent[0].payload.size(), size_t(500));
    CHECK_EQ(f.out.sent[1].seg.seq, kIss + 501);
    CHECK(!f.out.sent[1].seg.options.has_timestamps);
    CHECK_EQ(f.out.sent[1].seg.window, 65535);   // no scaling
  }
}

void handshake_each_option() {
  {  // window scaling only: ours is 7, theirs shifts their windows.
    Fixture f;
    Options o;
    o.has_mss = true;
    o.mss = 1460;
    o.has_wscale = true;
    o.wscale = 2;
    f.Syn(o, 0, 1000);
    const Sent& sa = f.out.sent[0];
    CHECK(sa.seg.options.has_wscale);
    CHECK_EQ(sa.seg.options.wscale, 7);
    CHECK(!sa.seg.options.sack_permitted && !sa.seg.options.has_timestamps);
    CHECK_EQ(sa.seg.window, 65535);   // never scaled on a SYN
    CHECK_EQ(f.c->stats().snd_wnd, 1000u);   // nor is theirs
    f.c->OnSegment(From(kIrs + 1, kIss + 1, kAck, 1000), 10 * kMs);
    CHECK_EQ(f.c->stats().snd_wnd, 4000u);
    f.c->OnSegment(From(kIrs + 1, kIss + 1, kAck | kPsh, 1000), 20 * kMs);   // no payload: no answer
    Segment d = From(kIrs + 1, kIss + 1, kAck, 1000);
    const uint8_t bytes[3] = {1, 2, 3};
    d.payload = bytes;
    d.payload_len = 3;
    f.out.take();
    f.c->OnSegment(d, 30 * kMs);
    CHECK_EQ(f.out.sent.size(), size_t(1));
    if (!f.out.sent.empty()) {
      CHECK_EQ(f.out.sent[0].seg.ack, kIrs + 4);
      CHECK_EQ(f.out.sent[0].seg.window, (65536 - 3) >> 7);   // 511
    }
  }
  {  // SACK-permitted only.
    Fixture f;
    Options o;
    o.has_mss = true;
    o.mss = 1000;
    o.sack_permitted = true;
    f.Syn(o, 0);
    const Sent& sa = f.out.sent[0];
    CHECK(sa.seg.options.sack_permitted);
    CHECK(!sa.seg.options.has_wscale && !sa.seg.options.has_timestamps);
    CHECK_EQ(sa.seg.options.mss, 1460);   // ours, whatever theirs
    CHECK_EQ(f.c->segment_size(), 1000u);
  }
  {  // timestamps only: echoed, and the segment shrinks by the 12 option bytes.
    Fixture f;
    Options o;
    o.has_mss = true;
    o.mss = 1460;
    o.has_timestamps = true;
    o.ts_val = 777;
    f.Syn(o, 5 * kMs);
    const Sent& sa = f.out.sent[0];
    CHECK(sa.seg.options.has_timestamps);
    CHECK_EQ(sa.seg.options.ts_ecr, 777u);
    CHECK_EQ(sa.seg.options.ts_val, kIss + 5);   // ms since the clock's 0, offset by the ISS
    CHECK(!sa.seg.options.has_wscale && !sa.seg.options.sack_permitted);
    CHECK_EQ(f.c->segment_size(), 1448u);
    // The ACK echoes our SYN-ACK's value at 45 ms: RTT 40 ms from the echo.
    Segment a = From(kIrs + 1, kIss + 1, kAck);
    a.options.has_timestamps = true;
    a.options.ts_val = 790;
    a.options.ts_ecr = kIss + 5;
    f.c->OnSegment(a, 45 * kMs);
    CHECK_EQ(f.c->state(), State::kEstablished);
    CHECK_EQ(f.c->stats().srtt_us, 40000u);
    f.out.take();
    f.src.AddData(1448, 1);
    f.c->Poll(50 * kMs);
    CHECK_EQ(f.out.sent.size(), size_t(1));
    if (!f.out.sent.empty()) {
      CHECK(f.out.sent[0].seg.options.has_timestamps);
      CHECK_EQ(f.out.sent[0].seg.options.ts_val, kIss + 50);
      CHECK_EQ(f.out.sent[0].seg.options.ts_ecr, 790u);
      CHECK_EQ(f.out.sent[0].payload.size(), size_t(1448));
    }
  }
  {  // everything offered, nothing allowed by the config.
    Fixture f;
    f.cfg.sack = false;
    f.cfg.timestamps = false;
    f.cfg.window_scaling = false;
    Options o;
    o.has_mss = true;
    o.mss = 9000;
    o.has_wscale = true;
    o.wscale = 9;
    o.sack_permitted = true;
    o.has_timestamps = true;
    f.Syn(o, 0);
    const Sent& sa = f.out.sent[0];
    CHECK(!sa.seg.options.has_wscale && !sa.seg.options.sack_permitted &&
          !sa.seg.options.has_timestamps);
    CHECK_EQ(f.c->segment_size(), 1460u);
  }
}

// -------------------------------------------------------------- sending --

void established_sends_initial_window() {
  Fixture f;
  f.Open();
  f.Data(24);
  f.c->Poll(10 * kMs);
  // cwnd 14600: ten 1400-byte segments (two 700-byte frames each); the 600
  // bytes left hold no frame.
  CHECK_EQ(f.out.sent.size(), size_t(10));
  for (size_t k = 0; k < f.out.sent.size(); ++k) {
    const Sent& s = f.out.sent[k];
    CHECK_EQ(s.seg.seq, SegSeq(int(k)));
    CHECK_EQ(s.seg.ack, kIrs + 1);
    CHECK_EQ(s.seg.flags, uint8_t(kAck | kPsh));
    CHECK_EQ(s.payload.size(), size_t(1400));
    CHECK_EQ(s.payload[2], uint8_t(2 * k));       // frame 2k, then 2k+1
    CHECK_EQ(s.payload[702], uint8_t(2 * k + 1));
    CHECK_EQ(s.payload[0], 0x02);                 // u16 length 698
    CHECK_EQ(s.payload[1], 0xBA);
  }
  CHECK_EQ(f.c->stats().flight, 14000u);
  CHECK_EQ(f.c->NextDeadline(), 210 * kMs);   // RTO 200 ms from the first send
  CHECK_EQ(f.src.frames.size(), size_t(4));
}

void established_ack_opens_cwnd() {
  Fixture f;
  f.Open();
  f.Data(40);
  f.c->Poll(10 * kMs);
  f.out.take();
  // ACK of the first two segments at 30 ms: slow start, +1460 per ACK (ABC, L = 1 SMSS).
  f.Ack(SegSeq(2), 30 * kMs);
  CHECK_EQ(f.c->stats().cwnd, 14600u + 1460u);
  CHECK_EQ(f.c->stats().flight, 11200u);
  CHECK_EQ(f.c->NextDeadline(), 230 * kMs);   // restarted (RFC 6298 §5.3)
  // RTT sample from the newest segment acked: 20 ms; srtt = 7/8 10 + 1/8 20.
  CHECK_EQ(f.c->stats().srtt_us, 11250u);
  f.c->Poll(30 * kMs);
  // Room: 16060 - 11200 = 4860: three more segments (4200), 660 left.
  CHECK_EQ(f.out.sent.size(), size_t(3));
  if (f.out.sent.size() == 3) CHECK_EQ(f.out.sent[0].seg.seq, SegSeq(10));
  // The peer's window limits as well: 18000 bytes from snd_una.
  f.out.take();
  f.Ack(SegSeq(3), 40 * kMs, 18000);
  f.c->Poll(40 * kMs);
  // flight 14000 after the ACK; peer room 4000 -> two segments.
  CHECK_EQ(f.out.sent.size(), size_t(2));
  CHECK_EQ(f.c->stats().snd_wnd, 18000u);
}

void rto_backoff_doubles() {
  Fixture f;
  f.Open();
  f.Data(2);
  f.c->Poll(10 * kMs);
  CHECK_EQ(f.out.take().size(), size_t(1));
  // RTO 200 ms, doubling at each expiry: 200, 400, ... 51200 ms; after 8
  // backoffs the next expiry aborts with a RST.
  uint64_t t = 10 * kMs;
  uint64_t rto = 200 * kMs;
  for (int i = 1; i <= 8; ++i) {
    t += rto;
    CHECK_EQ(f.c->NextDeadline(), t);
    f.c->Poll(t - 1);
    CHECK_EQ(f.out.sent.size(), size_t(0));
    f.c->Poll(t);
    CHECK_EQ(f.out.sent.size(), size_t(1));
    if (!f.out.sent.empty()) {
      CHECK_EQ(f.out.sent[0].seg.seq, kIss + 1);
      CHECK_EQ(f.out.sent[0].payload.size(), size_t(1400));
    }
    f.out.take();
    rto *= 2;
    CHECK_EQ(uint64_t(f.c->stats().rto_ms), rto / kMs);
    CHECK_EQ(f.c->stats().rto_timeouts, uint64_t(i));
    CHECK_EQ(f.c->stats().cwnd, 1460u);
  }
  CHECK_EQ(f.c->stats().ssthresh, 2920u);   // max(1400 / 2, 2 SMSS), set once
  t += rto;
  f.c->Poll(t);
  CHECK_EQ(f.c->state(), State::kClosed);
  CHECK_EQ(f.c->close_reason(), CloseReason::kTimeout);
  CHECK_EQ(f.out.sent.size(), size_t(1));
  if (!f.out.sent.empty()) {
    CHECK_EQ(f.out.sent[0].seg.flags, uint8_t(kRst | kAck));
    CHECK_EQ(f.out.sent[0].seg.seq, kIss + 1401);
  }
}

void rto_max_caps_backoff() {
  Fixture f;
  f.cfg.max_rto_backoffs = 20;
  f.Open();
  f.Data(2);
  f.c->Poll(10 * kMs);
  uint64_t t = 10 * kMs;
  for (int i = 0; i < 12; ++i) {
    t = f.c->NextDeadline();
    f.c->Poll(t);
  }
  CHECK_EQ(f.c->stats().rto_ms, 60000u);
  CHECK_EQ(f.c->NextDeadline(), t + 60000 * kMs);
}

void rto_then_ack_resumes_slow_start() {
  Fixture f;
  f.Open();
  f.Data(40);
  f.c->Poll(10 * kMs);
  f.out.take();
  f.c->Poll(210 * kMs);   // timeout: everything is lost, the first goes again
  std::vector<Sent> s = f.out.take();
  CHECK_EQ(s.size(), size_t(1));
  CHECK_EQ(f.c->stats().ssthresh, 7000u);   // FlightSize 14000 / 2
  CHECK_EQ(f.c->stats().cwnd, 1460u);
  // Its ACK (no RTT sample: Karn) of 1400 bytes: cwnd 2860, two of the lost ones go.
  f.Ack(SegSeq(1), 300 * kMs);
  CHECK_EQ(f.c->stats().cwnd, 2860u);
  CHECK_EQ(f.c->stats().rto_ms, 400u);      // still backed off: no new sample
  f.c->Poll(300 * kMs);
  s = f.out.take();
  CHECK_EQ(s.size(), size_t(2));
  if (s.size() == 2) {
    CHECK_EQ(s[0].seg.seq, SegSeq(1));
    CHECK_EQ(s[1].seg.seq, SegSeq(2));
  }
  CHECK_EQ(f.c->stats().retransmitted_segments, 3u);
}

// ---------------------------------------------------------------- closing --

void abort_sends_rst() {
  Fixture f;
  f.Open();
  f.c->Abort(20 * kMs);
  CHECK_EQ(f.c->state(), State::kClosed);
  CHECK_EQ(f.c->close_reason(), CloseReason::kAborted);
  CHECK_EQ(f.out.sent.size(), size_t(1));
  CHECK_EQ(f.out.sent[0].seg.flags, uint8_t(kRst | kAck));
  CHECK_EQ(f.out.sent[0].seg.seq, kIss + 1);
  CHECK_EQ(f.c->NextDeadline(), UINT64_MAX);
  f.c->Poll(10000 * kMs);
  CHECK_EQ(f.out.sent.size(), size_t(1));
}

}  // namespace

int main() {
  g_check_print_limit = 60;
  syn_received_then_ack();
  syn_received_syn_retransmit();
  syn_received_bad_ack_resets();
  handshake_without_options();
  handshake_each_option();
  established_sends_initial_window();
  established_ack_opens_cwnd();
  rto_backoff_doubles();
  rto_max_caps_backoff();
  rto_then_ack_resumes_slow_start();
  abort_sends_rst();
  if (g_failures) {
    std::fprintf(stderr, "tcp_connection_test: %d of %d checks failed\n", g_failures.load(),
                 g_checks.load());
    return 1;
  }
  std::printf("tcp_connection_test: %d checks passed\n", g_checks.load());
  return 0;
}

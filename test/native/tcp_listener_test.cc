// Tests of the passive TCP table (native/tcp/listener) on a fake clock:
// accepting (SYN only, limits), answering segments of no connection
// (RFC 9293 §3.10.7.1), reporting and removing connections, RFC 6528
// initial sequence numbers, timers through NextDeadline. Segments are built
// as structs and what the listener sends is recorded, never put on a wire.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tcp/connection.h"
#include "tcp/listener.h"
#include "tcp/segment.h"

#include "check.h"

using namespace rqcast::tcp;

namespace {

constexpr uint32_t kServer = 0x0a000001;  // 10.0.0.1
constexpr uint32_t kClient = 0x0a000002;  // 10.0.0.2
constexpr uint16_t kPort = 9000;
constexpr uint64_t kMs = 1000000ull;

struct Sent {
  OutSegment seg;
  std::vector<uint8_t> payload;
};

struct Recorder : SegmentOutput {
  std::vector<Sent> sent;
  void Transmit(const OutSegment& seg, const uint8_t* payload, size_t len) override {
    sent.push_back(Sent{seg, std::vector<uint8_t>(payload, payload + len)});
  }
  size_t count(uint8_t flag) const {
    size_t n = 0;
    for (const Sent& s : sent) n += (s.seg.flags & flag) ? 1 : 0;
    return n;
  }
};

ListenerConfig config() {
  ListenerConfig c;
  c.local = Endpoint4{kServer, kPort};
  for (int i = 0; i < 16; ++i) c.isn_key[i] = static_cast<uint8_t>(i * 7 + 1);
  return c;
}

Segment seg(uint16_t client_port, uint8_t flags, uint32_t seq, uint32_t ack = 0,
            const char* data = nullptr, uint32_t client = kClient) {
  Segment s;
  s.src = Endpoint4{client, client_port};
  s.dst = Endpoint4{kServer, kPort};
  s.seq = seq;
  s.ack = ack;
  s.flags = flags;
  s.window = 65535;
  if (flags & kSyn) {
    s.options.has_mss = true;
    s.options.mss = 1460;
  }
  if (data) {
    s.payload = reinterpret_cast<const uint8_t*>(data);
    s.payload_len = std::strlen(data);
  }
  return s;
}

// SYN, SYN-ACK, ACK: the connection's id and our ISS + 1.
uint32_t handshake(Listener& l, Recorder& r, uint16_t port, uint64_t now, uint32_t* id,
                   uint32_t client_seq = 1000) {
  r.sent.clear();
  l.OnSegment(seg(port, kSyn, client_seq), now);
  l.Poll(now);
  CHECK_EQ(r.sent.size(), 1u);
  if (r.sent.empty()) return 0;
  const OutSegment& sa = r.sent[0].seg;
  CHECK_EQ(sa.flags, kSyn | kAck);
  CHECK_EQ(sa.ack, client_seq + 1);
  CHECK_EQ(sa.dst.addr, kClient);
  CHECK_EQ(sa.dst.port, port);
  CHECK_EQ(sa.src.addr, kServer);
  CHECK_EQ(sa.src.port, kPort);
  l.OnSegment(seg(port, kAck, client_seq + 1, sa.seq + 1), now);
  l.Poll(now);
  std::vector<ListenerEvent> ev;
  l.TakeEvents(&ev);
  CHECK_EQ(ev.size(), 1u);
  if (ev.size() == 1) {
    CHECK_EQ(ev[0].type, ListenerEvent::kOpened);
    CHECK_EQ(ev[0].remote.addr, kClient);
    CHECK_EQ(ev[0].remote.port, port);
    *id = ev[0].id;
  }
  return sa.seq + 1;
}

void test_syn_accepted_then_opened() {
  Recorder r;
  Listener l(config(), &r);
  uint32_t id = 0;
  handshake(l, r, 40000, 1000 * kMs, &id);
  CHECK(id != 0);
  CHECK_EQ(l.size(), 1u);
  CHECK_EQ(l.stats().accepted, 1u);
  CHECK_EQ(l.stats().half_open, 0u);
  CHECK_EQ(l.stats().connections, 1u);
  CHECK(l.pool(id) != nullptr);
  CHECK(l.connection(id) != nullptr);
  CHECK_EQ(l.connection(id)->state(), State::kEstablished);
}

void test_non_syn_to_no_connection_resets() {
  Recorder r;
  Listener l(config(), &r);
  // ACK on: <SEQ=SEG.ACK><CTL=RST>.
  l.OnSegment(seg(40001, kAck, 77, 5555), 0);
  CHECK_EQ(r.sent.size(), 1u);
  CHECK_EQ(r.sent[0].seg.flags, kRst);
  CHECK_EQ(r.sent[0].seg.seq, 5555u);
  CHECK_EQ(r.sent[0].seg.dst.addr, kClient);
  CHECK_EQ(r.sent[0].seg.dst.port, 40001);
  CHECK_EQ(r.sent[0].seg.src.port, kPort);
  // ACK off: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, FIN counted.
  l.OnSegment(seg(40001, kPsh, 100, 0, "0123456789"), 0);
  CHECK_EQ(r.sent.size(), 2u);
  CHECK_EQ(r.sent[1].seg.flags, kRst | kAck);
  CHECK_EQ(r.sent[1].seg.seq, 0u);
  CHECK_EQ(r.sent[1].seg.ack, 110u);
  l.OnSegment(seg(40001, kFin, 100), 0);
  CHECK_EQ(r.sent[2].seg.ack, 101u);
  // A SYN-ACK to no connection (we never open actively) gets a RST too.
  l.OnSegment(seg(40001, kSyn | kAck, 100, 9), 0);
  CHECK_EQ(r.sent.size(), 4u);
  CHECK_EQ(r.sent[3].seg.flags, kRst);
  CHECK_EQ(r.sent[3].seg.seq, 9u);
  CHECK_EQ(l.stats().resets_sent, 4u);
  CHECK_EQ(l.size(), 0u);
}

void test_rst_to_no_connection_ignored() {
  Recorder r;
  Listener l(config(), &r);
  l.OnSegment(seg(40002, kRst, 1), 0);
  l.OnSegment(seg(40002, kRst | kAck, 1, 2), 0);
  l.OnSegment(seg(40002, kSyn | kRst, 1), 0);
  CHECK_EQ(r.sent.size(), 0u);
  CHECK_EQ(l.stats().ignored, 3u);
  // SYN+FIN opens nothing and is not answered (as Linux).
  l.OnSegment(seg(40002, kSyn | kFin, 1), 0);
  CHECK_EQ(r.sent.size(), 0u);
  CHECK_EQ(l.size(), 0u);
}

void test_not_ours_and_impossible_peers_ignored() {
  Recorder r;
  Listener l(config(), &r);
  Segment s = seg(40003, kSyn, 1);
  s.dst.port = kPort + 1;
  l.OnSegment(s, 0);
  s = seg(40003, kSyn, 1);
  s.dst.addr = kServer + 5;
  l.OnSegment(s, 0);
  l.OnSegment(seg(40003, kSyn, 1, 0, nullptr, 0xe0000001), 0);  // 224.0.0.1
  l.OnSegment(seg(40003, kSyn, 1, 0, nullptr, 0xffffffff), 0);  // broadcast
  l.OnSegment(seg(40003, kSyn, 1, 0, nullptr, 0), 0);           // 0.0.0.0
  l.OnSegment(seg(40003, kAck, 1, 5, nullptr, 0xe0000001), 0);  // no RST to a group
  l.OnSegment(seg(0, kSyn, 1), 0);                              // port 0
  CHECK_EQ(r.sent.size(), 0u);
  CHECK_EQ(l.size(), 0u);
  CHECK_EQ(l.stats().ignored, 7u);
  // Bound to any address: a SYN to any of ours is taken, answered from it.
  ListenerConfig c = config();
  c.local.addr = 0;
  Listener any(c, &r);
  s = seg(40003, kSyn, 1);
  s.dst.addr = 0x7f000001;
  any.OnSegment(s, 0);
  CHECK_EQ(any.size(), 1u);
  CHECK_EQ(r.sent.size(), 1u);
  CHECK_EQ(r.sent[0].seg.src.addr, 0x7f000001u);
}

void test_max_half_open_refuses() {
  Recorder r;
  ListenerConfig c = config();
  c.max_half_open = 2;
  Listener l(c, &r);
  l.OnSegment(seg(41000, kSyn, 1), 0);
  l.OnSegment(seg(41001, kSyn, 1), 0);
  l.OnSegment(seg(41002, kSyn, 1), 0);
  CHECK_EQ(l.size(), 2u);
  CHECK_EQ(l.stats().refused, 1u);
  CHECK_EQ(l.stats().half_open, 2u);
  CHECK_EQ(r.sent.size(), 2u);  // no answer to the refused SYN
  // One completes: room for another half-open connection.
  const uint32_t iss = r.sent[0].seg.seq;
  l.OnSegment(seg(41000, kAck, 2, iss + 1), 0);
  l.Poll(0);
  CHECK_EQ(l.stats().half_open, 1u);
  l.OnSegment(seg(41002, kSyn, 1), 0);
  CHECK_EQ(l.size(), 3u);
  CHECK_EQ(l.stats().refused, 1u);
}

void test_max_connections_refuses() {
  Recorder r;
  ListenerConfig c = config();
  c.max_connections = 2;
  Listener l(c, &r);
  uint32_t a, b;
  handshake(l, r, 42000, 0, &a);
  handshake(l, r, 42001, 0, &b);
  r.sent.clear();
  l.OnSegment(seg(42002, kSyn, 1), 0);
  CHECK_EQ(r.sent.size(), 0u);
  CHECK_EQ(l.stats().refused, 1u);
  CHECK_EQ(l.size(), 2u);
  // A retransmitted SYN of an open connection is that connection's
  // business (a challenge ACK), not a refusal.
  l.OnSegment(seg(42000, kSyn, 1000), 0);
  CHECK_EQ(l.stats().refused, 1u);
}

void test_closed_removed_and_reported() {
  Recorder r;
  Listener l(config(), &r);
  uint32_t a, b;
  handshake(l, r, 43000, 0, &a);
  const uint32_t snd_b = handshake(l, r, 43001, 0, &b);
  // The peer resets a (RST at RCV.NXT).
  l.OnSegment(seg(43000, kRst, 1001), 5 * kMs);
  l.Poll(5 * kMs);
  std::vector<ListenerEvent> ev;
  l.TakeEvents(&ev);
  CHECK_EQ(ev.size(), 1u);
  if (!ev.empty()) {
    CHECK_EQ(ev[0].type, ListenerEvent::kClosed);
    CHECK_EQ(ev[0].id, a);
    CHECK_EQ(ev[0].reason, CloseReason::kReset);
  }
  CHECK_EQ(l.size(), 1u);
  CHECK(l.pool(a) == nullptr);
  // A segment of the gone 4-tuple now gets the CLOSED state's RST.
  r.sent.clear();
  l.OnSegment(seg(43000, kAck, 1001, 77), 6 * kMs);
  CHECK_EQ(r.sent.size(), 1u);
  CHECK_EQ(r.count(kRst), 1u);
  // We abort b: RST on the wire, closed as aborted, its pool detached.
  std::shared_ptr<FramePool> pool_b = l.pool(b);
  r.sent.clear();
  CHECK(l.Abort(b, 7 * kMs));
  CHECK_EQ(r.count(kRst), 1u);
  if (!r.sent.empty()) CHECK_EQ(r.sent[0].seg.seq, snd_b);
  l.Poll(7 * kMs);
  ev.clear();
  l.TakeEvents(&ev);
  CHECK_EQ(ev.size(), 1u);
  if (!ev.empty()) {
    CHECK_EQ(ev[0].id, b);
    CHECK_EQ(ev[0].reason, CloseReason::kAborted);
  }
  CHECK_EQ(l.size(), 0u);
  CHECK(pool_b->detached());
  CHECK(!l.Abort(b, 8 * kMs));
  CHECK(!l.Close(b, 8 * kMs));
  CHECK_EQ(l.stats().opened, 2u);
  CHECK_EQ(l.stats().closed, 2u);
}

void test_half_open_dies_silently() {
  Recorder r;
  Listener l(config(), &r);
  l.OnSegment(seg(44000, kSyn, 1000), 0);
  l.Poll(0);
  CHECK_EQ(l.stats().half_open, 1u);
  const uint32_t iss = r.sent[0].seg.seq;
  // RST in the window of SYN-RECEIVED (RFC 9293 §3.10.7.4: seq = RCV.NXT).
  l.OnSegment(seg(44000, kRst, 1001, iss + 1), 1 * kMs);
  l.Poll(1 * kMs);
  std::vector<ListenerEvent> ev;
  l.TakeEvents(&ev);
  CHECK_EQ(ev.size(), 0u);
  CHECK_EQ(l.size(), 0u);
  CHECK_EQ(l.stats().half_open, 0u);
  CHECK_EQ(l.stats().half_open_failed, 1u);
}

void test_syn_ack_retransmitted_by_timer() {
  Recorder r;
  Listener l(config(), &r);
  l.OnSegment(seg(45000, kSyn, 1000), 0);
  l.Poll(0);
  CHECK_EQ(r.sent.size(), 1u);
  const uint64_t d = l.NextDeadline();
  CHECK(d != UINT64_MAX && d > 0);
  l.Poll(d - 1);
  CHECK_EQ(r.sent.size(), 1u);  // not yet due
  l.Poll(d);
  CHECK_EQ(r.sent.size(), 2u);
  if (r.sent.size() == 2) CHECK_EQ(r.sent[1].seg.flags, kSyn | kAck);
  CHECK(l.NextDeadline() > d);
}

void test_isn_per_tuple() {
  const uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  const Endpoint4 local{kServer, kPort};
  const uint64_t t = 123456789ull;
  const uint32_t a = InitialSequenceNumber(key, local, Endpoint4{kClient, 40000}, t);
  const uint32_t b = InitialSequenceNumber(key, local, Endpoint4{kClient, 40001}, t);
  const uint32_t c = InitialSequenceNumber(key, local, Endpoint4{kClient + 1, 40000}, t);
  CHECK(a != b);
  CHECK(a != c);
  CHECK(b != c);
  // The same 4-tuple moves with the 4 µs clock (RFC 6528 §3).
  CHECK_EQ(InitialSequenceNumber(key, local, Endpoint4{kClient, 40000}, t + 4000 * 250),
           a + 250);
  uint8_t other[16];
  std::memcpy(other, key, 16);
  other[0] ^= 1;
  CHECK(InitialSequenceNumber(other, local, Endpoint4{kClient, 40000}, t) != a);
  // SipHash-2-4's reference vector (key 00..0f, message 00..0e, 15 bytes).
  uint8_t k[16], m[15];
  for (int i = 0; i < 16; ++i) k[i] = static_cast<uint8_t>(i);
  for (int i = 0; i < 15; ++i) m[i] = static_cast<uint8_t>(i);
  CHECK_EQ(SipHash24(k, m, 15), 0xa129ca6149be45e5ull);
  CHECK_EQ(SipHash24(k, m, 0), 0x726fdb47dd0e0e31ull);
  // The listener uses it: two SYNs of two ports get different ISSs.
  Recorder r;
  Listener l(config(), &r);
  l.OnSegment(seg(46000, kSyn, 1), 0);
  l.OnSegment(seg(46001, kSyn, 1), 0);
  CHECK_EQ(r.sent.size(), 2u);
  if (r.sent.size() == 2) CHECK(r.sent[0].seg.seq != r.sent[1].seg.seq);
}

void test_data_readable_and_peer_fin_closes() {
  Recorder r;
  Listener l(config(), &r);
  uint32_t id;
  const uint32_t snd = handshake(l, r, 47000, 0, &id);
  l.OnSegment(seg(47000, kAck | kPsh, 1001, snd, "hello"), 1 * kMs);
  l.Poll(1 * kMs);
  std::vector<uint32_t> ids;
  l.ReadableIds(&ids);
  CHECK_EQ(ids.size(), 1u);
  uint8_t buf[64];
  CHECK_EQ(l.Read(id, buf, sizeof buf), 5u);
  CHECK(std::memcmp(buf, "hello", 5) == 0);
  l.ReadableIds(&ids);
  CHECK_EQ(ids.size(), 0u);
  // The peer's FIN: we close too (FIN after what is queued).
  r.sent.clear();
  l.OnSegment(seg(47000, kAck | kFin, 1006, snd), 2 * kMs);
  l.Poll(2 * kMs);
  l.Poll(2 * kMs);
  CHECK_EQ(r.count(kFin), 1u);
  CHECK_EQ(l.connection(id)->state(), State::kLastAck);
  // Its ACK of our FIN ends it: closed, normal.
  l.OnSegment(seg(47000, kAck, 1007, snd + 1), 3 * kMs);
  l.Poll(3 * kMs);
  std::vector<ListenerEvent> ev;
  l.TakeEvents(&ev);
  CHECK_EQ(ev.size(), 1u);
  if (!ev.empty()) CHECK_EQ(ev[0].reason, CloseReason::kNormal);
  CHECK_EQ(l.size(), 0u);
}

void test_unread_bytes_hold_a_normal_close() {
  // The peer sends, closes, and the exchange of FINs ends the connection
  // before anyone read its bytes: they stay readable, and kClosed comes
  // only once they were read (data, then close, for the owner).
  Recorder r;
  Listener l(config(), &r);
  uint32_t id;
  const uint32_t snd = handshake(l, r, 52000, 0, &id);
  l.OnSegment(seg(52000, kAck | kPsh | kFin, 1001, snd, "last words"), 1 * kMs);
  l.Poll(1 * kMs);
  l.Poll(1 * kMs);
  CHECK_EQ(r.count(kFin), 1u);
  l.OnSegment(seg(52000, kAck, 1012, snd + 1), 2 * kMs);
  l.Poll(2 * kMs);
  CHECK_EQ(l.connection(id)->state(), State::kClosed);
  std::vector<ListenerEvent> ev;
  l.TakeEvents(&ev);
  CHECK_EQ(ev.size(), 0u);
  CHECK_EQ(l.size(), 1u);
  uint8_t buf[64];
  CHECK_EQ(l.Read(id, buf, sizeof buf), 10u);
  CHECK(std::memcmp(buf, "last words", 10) == 0);
  CHECK_EQ(l.NextDeadline(), 0u);  // the read woke it
  l.Poll(3 * kMs);
  l.TakeEvents(&ev);
  CHECK_EQ(ev.size(), 1u);
  if (!ev.empty()) {
    CHECK_EQ(ev[0].type, ListenerEvent::kClosed);
    CHECK_EQ(ev[0].reason, CloseReason::kNormal);
  }
  CHECK_EQ(l.size(), 0u);
}

void test_close_sends_control_then_fin() {
  Recorder r;
  Listener l(config(), &r);
  uint32_t id;
  handshake(l, r, 48000, 0, &id);
  r.sent.clear();
  const uint8_t msg[] = {0x52, 0x51, 1, 2, 0, 8, 0, 0};
  CHECK(l.pool(id)->PushControl(msg, sizeof msg));
  CHECK(l.Close(id, 1 * kMs));
  l.Poll(1 * kMs);
  l.Poll(1 * kMs);
  // The framed control message went out, and a FIN after it.
  bool data = false;
  for (const Sent& s : r.sent)
    if (s.payload.size() == sizeof msg + 2 && s.payload[2] == 0x52) data = true;
  CHECK(data);
  CHECK_EQ(r.count(kFin), 1u);
}

void test_syn_link_rides_on_every_segment() {
  // The link a SYN came in on (segment.h, LinkAddress) is where its
  // connection's segments go back: SYN-ACK, data and the final RST alike;
  // a RST to a segment of no connection goes back by that segment's link.
  Recorder r;
  Listener l(config(), &r);
  Segment syn = seg(48100, kSyn, 5000);
  syn.link.ifindex = 7;
  const uint8_t mac[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
  std::memcpy(syn.link.mac, mac, 6);
  l.OnSegment(syn, 0);
  l.Poll(0);
  CHECK_EQ(r.sent.size(), 1u);
  if (r.sent.empty()) return;
  const uint32_t iss = r.sent[0].seg.seq;
  // The handshake's ACK says nothing of the link (another one): the SYN's stays.
  l.OnSegment(seg(48100, kAck, 5001, iss + 1), 0);
  l.Poll(0);
  std::vector<ListenerEvent> ev;
  l.TakeEvents(&ev);
  CHECK_EQ(ev.size(), 1u);
  if (ev.size() != 1) return;
  const uint8_t msg[] = {0x52, 0x51, 1, 2, 0, 8, 0, 0};
  CHECK(l.pool(ev[0].id)->PushControl(msg, sizeof msg));
  l.MarkReady(ev[0].id);
  l.Poll(1 * kMs);
  CHECK(l.Abort(ev[0].id, 2 * kMs));
  size_t data = 0, rst = 0;
  for (const Sent& s : r.sent) {
    CHECK_EQ(s.seg.link.ifindex, 7);
    CHECK(std::memcmp(s.seg.link.mac, mac, 6) == 0);
    data += s.payload.empty() ? 0 : 1;
    rst += (s.seg.flags & kRst) ? 1 : 0;
  }
  CHECK_EQ(data, 1u);
  CHECK_EQ(rst, 1u);
  r.sent.clear();
  Segment stray = seg(48200, kAck, 1, 1);
  stray.link.ifindex = 3;
  l.OnSegment(stray, 3 * kMs);
  CHECK_EQ(r.sent.size(), 1u);
  if (!r.sent.empty()) {
    CHECK_EQ(r.sent[0].seg.flags, kRst);
    CHECK_EQ(r.sent[0].seg.link.ifindex, 3);
  }
}

void test_time_wait_reported_at_once() {
  // We close first: FIN, the peer's ACK and FIN, TIME-WAIT. The owner
  // hears kClosed (normal) then, not a TIME-WAIT later; the 4-tuple stays
  // taken until the timer ends, and goes without a second event.
  Recorder r;
  Listener l(config(), &r);
  uint32_t id;
  const uint32_t snd = handshake(l, r, 51000, 0, &id);
  std::shared_ptr<FramePool> pool = l.pool(id);
  CHECK(l.Close(id, 1 * kMs));
  l.Poll(1 * kMs);
  CHECK_EQ(r.count(kFin), 1u);
  l.OnSegment(seg(51000, kAck | kFin, 1001, snd + 1), 2 * kMs);
  l.Poll(2 * kMs);
  CHECK_EQ(l.connection(id)->state(), State::kTimeWait);
  std::vector<ListenerEvent> ev;
  l.TakeEvents(&ev);
  CHECK_EQ(ev.size(), 1u);
  if (!ev.empty()) {
    CHECK_EQ(ev[0].type, ListenerEvent::kClosed);
    CHECK_EQ(ev[0].reason, CloseReason::kNormal);
  }
  CHECK(pool->detached());
  CHECK_EQ(l.size(), 1u);
  // The peer's FIN again (our ACK was lost): answered, still one entry.
  r.sent.clear();
  l.OnSegment(seg(51000, kAck | kFin, 1001, snd + 1), 3 * kMs);
  l.Poll(3 * kMs);
  CHECK_EQ(r.count(kAck), 1u);
  CHECK_EQ(l.size(), 1u);
  l.Poll(l.NextDeadline());
  CHECK_EQ(l.size(), 0u);
  ev.clear();
  l.TakeEvents(&ev);
  CHECK_EQ(ev.size(), 0u);
  CHECK_EQ(l.stats().closed, 1u);
}

void test_reset_budget() {
  Recorder r;
  ListenerConfig c = config();
  c.max_resets_per_second = 3;
  Listener l(c, &r);
  for (int i = 0; i < 5; ++i) l.OnSegment(seg(49000, kAck, 1, 9), 10 * kMs);
  CHECK_EQ(l.stats().resets_sent, 3u);
  CHECK_EQ(l.stats().resets_suppressed, 2u);
  l.OnSegment(seg(49000, kAck, 1, 9), 10 * kMs + 400 * kMs);  // one token back
  CHECK_EQ(l.stats().resets_sent, 4u);
  l.OnSegment(seg(49000, kAck, 1, 9), 10 * kMs + 400 * kMs);
  CHECK_EQ(l.stats().resets_sent, 4u);
}

void test_many_connections_timers() {
  // Hundreds of half-open connections, each with its SYN-ACK timer: Poll
  // at each deadline retransmits exactly the ones due.
  Recorder r;
  Listener l(config(), &r);
  for (uint16_t p = 0; p < 300; ++p) l.OnSegment(seg(50000 + p, kSyn, 1), p * kMs);
  l.Poll(300 * kMs);
  CHECK_EQ(r.sent.size(), 300u);
  uint64_t now = 300 * kMs;
  size_t polls = 0;
  while (r.sent.size() < 600 && polls < 1000) {
    now = l.NextDeadline();
    l.Poll(now);
    ++polls;
  }
  CHECK_EQ(r.sent.size(), 600u);
}

// Hostile input: random segments (flags, numbers, payloads, a few peers and
// ports so that connections do form) on a clock that jumps. The table
// stays within its limits, every answer goes to whoever sent, the counters
// add up, and everything goes at AbortAll.
void test_hostile_soup() {
  Recorder r;
  ListenerConfig c = config();
  c.max_connections = 40;
  c.max_half_open = 10;
  c.max_resets_per_second = 100000;
  Listener l(c, &r);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  auto rnd = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  const char* payloads[] = {nullptr, "a", "some bytes of data", "\x52\x51 control?"};
  uint64_t now = 0;
  uint32_t last_iss[64] = {};
  std::vector<uint32_t> ids;
  uint8_t buf[256];
  size_t max_size = 0;
  bool bounded = true, addressed = true;
  for (int i = 0; i < 200000; ++i) {
    const uint64_t v = rnd();
    const uint16_t port = static_cast<uint16_t>(30000 + (v & 63));
    const uint32_t client = kClient + ((v >> 6) & 3);
    uint8_t flags = static_cast<uint8_t>(v >> 8);
    if ((v >> 16) % 4 == 0) flags = kSyn;          // openings
    else if ((v >> 16) % 4 == 1) flags = kAck;     // completions and data
    const uint32_t seq = (v >> 18) % 3 == 0 ? static_cast<uint32_t>(rnd()) : 1001;
    const uint32_t ack = (v >> 20) % 2 ? last_iss[v & 63] + 1 : static_cast<uint32_t>(rnd());
    r.sent.clear();
    Segment sg = seg(port, flags, seq, ack, payloads[(v >> 22) & 3], client);
    l.OnSegment(sg, now);
    for (const Sent& s : r.sent) {
      if (s.seg.dst.addr != client || s.seg.dst.port != port) addressed = false;
      if ((s.seg.flags & (kSyn | kAck)) == (kSyn | kAck)) last_iss[v & 63] = s.seg.seq;
    }
    if ((v >> 24) % 8 == 0) now += (rnd() % 3000) * kMs;
    if ((v >> 27) % 4 == 0) {
      l.Poll(now);
      l.ReadableIds(&ids);
      for (uint32_t id : ids) l.Read(id, buf, sizeof buf);
      std::vector<ListenerEvent> ev;
      l.TakeEvents(&ev);
      std::vector<uint32_t> touched;
      l.TakeTouched(&touched);
    }
    if ((v >> 30) % 64 == 0) l.Abort(static_cast<uint32_t>(rnd() % 50), now);
    if ((v >> 36) % 64 == 0) l.Close(static_cast<uint32_t>(rnd() % 50), now);
    max_size = std::max(max_size, l.size());
    if (l.size() > c.max_connections || l.stats().half_open > c.max_half_open) bounded = false;
  }
  CHECK(bounded);
  CHECK(addressed);
  CHECK(max_size > 5);  // connections did form
  std::printf("# soup: %llu accepted, %llu refused, %llu opened, %llu resets, %zu at most\n",
              static_cast<unsigned long long>(l.stats().accepted),
              static_cast<unsigned long long>(l.stats().refused),
              static_cast<unsigned long long>(l.stats().opened),
              static_cast<unsigned long long>(l.stats().resets_sent), max_size);
  const ListenerStats& st = l.stats();
  CHECK(st.accepted > 0 && st.refused > 0 && st.resets_sent > 0 && st.ignored > 0);
  CHECK_EQ(st.accepted, st.opened + st.half_open_failed + st.half_open);
  // Open ones are reported closed once: some linger unseen in TIME-WAIT.
  CHECK(st.opened >= st.closed);
  CHECK(st.opened - st.closed <= st.connections - st.half_open);
  l.AbortAll(now);
  CHECK_EQ(l.size(), 0u);
  CHECK_EQ(l.stats().connections, 0u);
  CHECK_EQ(l.NextDeadline(), UINT64_MAX);
}

}  // namespace

int main() {
  test_syn_accepted_then_opened();
  test_non_syn_to_no_connection_resets();
  test_rst_to_no_connection_ignored();
  test_not_ours_and_impossible_peers_ignored();
  test_max_half_open_refuses();
  test_max_connections_refuses();
  test_closed_removed_and_reported();
  test_half_open_dies_silently();
  test_syn_ack_retransmitted_by_timer();
  test_isn_per_tuple();
  test_data_readable_and_peer_fin_closes();
  test_close_sends_control_then_fin();
  test_unread_bytes_hold_a_normal_close();
  test_syn_link_rides_on_every_segment();
  test_time_wait_reported_at_once();
  test_reset_budget();
  test_many_connections_timers();
  test_hostile_soup();
  if (g_failures) {
    std::fprintf(stderr, "tcp_listener_test: %d of %d checks failed\n", g_failures.load(),
                 g_checks.load());
    return 1;
  }
  std::printf("tcp_listener_test: %d checks passed\n", g_checks.load());
  return 0;
}

// libFuzzer harness: the passive table (native/tcp/listener.h) fed
// fuzzer-made IPv4 packets (parsed as the service parses them, without the
// checksum), clock steps, polls, reads, closes, aborts and control frames,
// from a handful of peers so that connections do form.
//
// Properties, after every step:
//  - the table holds at most max_connections, at most max_half_open of
//    them half-open;
//  - every segment it sends goes to the source of a segment it was given,
//    from our address and port;
//  - a RST is never answered with a RST (no segment of ours answers one);
//  - after two polls at the same instant with nothing new, no timer is due
//    at or before it;
//  - the counters add up: accepted = opened + failed half-open + half-open,
//    and each connection is reported closed at most once;
//  - AbortAll leaves nothing.
#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "fuzz_check.h"
#include "tcp/listener.h"
#include "tcp/segment.h"

using namespace rqcast::tcp;

namespace {

constexpr uint32_t kServer = 0x0a000001;
constexpr uint16_t kPort = 9000;

struct Output : SegmentOutput {
  std::set<uint64_t> peers;  // (addr << 16 | port) of every source seen
  bool answering_rst = false;
  void Transmit(const OutSegment& seg, const uint8_t* payload, size_t len) override {
    FUZZ_CHECK(seg.src.addr == kServer && seg.src.port == kPort);
    FUZZ_CHECK(peers.count((uint64_t(seg.dst.addr) << 16) | seg.dst.port) == 1);
    FUZZ_CHECK(!(answering_rst && (seg.flags & kRst)));
  }
};

// A TCP segment from one of 4 peers x 4 ports to us, with fuzzer-chosen
// numbers, flags, options bytes and payload, as an IPv4 packet.
uint32_t U32(FuzzInput& r) { return (uint32_t(r.u16()) << 16) | r.u16(); }

std::vector<uint8_t> Packet(FuzzInput& r) {
  const uint8_t who = r.u8();
  const uint8_t opt_words = r.u8() % 11;
  const size_t payload = r.u8() % 64;
  std::vector<uint8_t> p(20 + 20 + opt_words * 4 + payload, 0);
  p[0] = 0x45;
  p[2] = static_cast<uint8_t>(p.size() >> 8);
  p[3] = static_cast<uint8_t>(p.size());
  p[6] = 0x40;
  p[8] = 64;
  p[9] = 6;
  const uint32_t src = 0x0a000002 + (who & 3);
  for (int i = 0; i < 4; ++i) p[12 + i] = static_cast<uint8_t>(src >> (24 - 8 * i));
  for (int i = 0; i < 4; ++i) p[16 + i] = static_cast<uint8_t>(kServer >> (24 - 8 * i));
  uint8_t* t = p.data() + 20;
  const uint16_t sport = static_cast<uint16_t>(40000 + ((who >> 2) & 3));
  t[0] = sport >> 8, t[1] = sport & 0xff;
  t[2] = kPort >> 8, t[3] = kPort & 0xff;
  const uint32_t seq = U32(r), ack = U32(r);
  for (int i = 0; i < 4; ++i) t[4 + i] = static_cast<uint8_t>(seq >> (24 - 8 * i));
  for (int i = 0; i < 4; ++i) t[8 + i] = static_cast<uint8_t>(ack >> (24 - 8 * i));
  t[12] = static_cast<uint8_t>((5 + opt_words) << 4);
  t[13] = r.u8();
  t[14] = r.u8(), t[15] = r.u8();
  for (size_t i = 20; i < p.size() - 20; ++i) t[i] = r.u8();
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput r(data, size);
  ListenerConfig c;
  c.local = Endpoint4{kServer, kPort};
  c.max_connections = 6;
  c.max_half_open = 3;
  c.max_resets_per_second = 1000000;
  c.connection.max_syn_ack_retries = 2;
  c.connection.max_rto_backoffs = 3;
  c.pool.pool_packets = 8;
  c.pool.reserve = 2;
  c.pool.max_control_bytes = 4096;
  Output out;
  Listener l(c, &out);
  uint64_t now = 1000000;
  std::set<uint32_t> closed;
  std::vector<ListenerEvent> ev;
  std::vector<uint32_t> ids;
  uint8_t buf[512];
  while (!r.empty()) {
    const uint8_t op = r.u8();
    switch (op % 8) {
      case 0:
      case 1:
      case 2: {
        std::vector<uint8_t> p = Packet(r);
        Segment seg;
        if (ParseIpv4Tcp(p.data(), p.size(), false, &seg) != ParseError::kOk) break;
        out.peers.insert((uint64_t(seg.src.addr) << 16) | seg.src.port);
        out.answering_rst = seg.has(kRst);
        l.OnSegment(seg, now);
        out.answering_rst = false;
        break;
      }
      case 3:
        now += uint64_t(r.u8()) << (r.u8() % 28);
        break;
      case 4:
        l.Poll(now);
        l.Poll(now);
        FUZZ_CHECK(l.NextDeadline() > now);
        break;
      case 5:
        l.ReadableIds(&ids);
        for (uint32_t id : ids) l.Read(id, buf, r.u8() + 1u);
        break;
      case 6: {
        const uint32_t id = r.u8() % 16;
        const uint8_t what = r.u8() % 3;
        if (what == 0) l.Close(id, now);
        if (what == 1) l.Abort(id, now);
        if (what == 2) {
          if (auto pool = l.pool(id)) {
            const size_t len = r.u8() % 200 + 1;
            std::vector<uint8_t> m(len, 0x52);
            pool->PushControl(m.data(), m.size());
            l.MarkReady(id);
          }
        }
        break;
      }
      case 7: {
        // Stream packets of a channel: an ALC header then a symbol.
        const uint32_t id = r.u8() % 16;
        if (auto pool = l.pool(id)) {
          std::vector<uint8_t> p(20 + r.u8() % 100 + 1, 0);
          p[0] = 0x10, p[1] = 0xa0, p[2] = 4, p[3] = 6, p[15] = r.u8() % 3;
          p[16] = r.u8() % 4;
          pool->Push(7, p.data(), p.size());
          l.MarkReady(id);
        }
        break;
      }
    }
    ev.clear();
    l.TakeEvents(&ev);
    for (const ListenerEvent& e : ev) {
      if (e.type == ListenerEvent::kClosed) FUZZ_CHECK(closed.insert(e.id).second);
    }
    l.TakeTouched(&ids);
    const ListenerStats& s = l.stats();
    FUZZ_CHECK(l.size() <= c.max_connections);
    FUZZ_CHECK(s.half_open <= c.max_half_open);
    FUZZ_CHECK(s.accepted == s.opened + s.half_open_failed + s.half_open);
    FUZZ_CHECK(s.closed <= s.opened);
  }
  l.AbortAll(now);
  FUZZ_CHECK(l.size() == 0);
  FUZZ_CHECK(l.NextDeadline() == UINT64_MAX);
  return 0;
}

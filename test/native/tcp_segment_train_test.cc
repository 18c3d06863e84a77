// Tests of GSO trains (native/tcp/segment_train.h), no sockets: which
// segments may ride together, the packet a train makes (one IPv4 + TCP
// header, the payloads back to back, the TCP checksum left partial), and
// that cutting it every gso_size bytes, as the kernel does, gives back
// exactly the segments that went in: the same sequence numbers, bytes,
// frame boundaries and a correct checksum each. And which links a reply may
// be addressed to (UsableLink), against hostile frame sources and loopback.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "tcp/segment.h"
#include "tcp/segment_train.h"

#include "check.h"

using namespace rqcast::tcp;

namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint32_t kServer = 0x0a000001;
constexpr uint32_t kClient = 0x0a000002;

OutSegment data_segment(uint32_t seq) {
  OutSegment s;
  s.src = {kServer, 4433};
  s.dst = {kClient, 50000};
  s.seq = seq;
  s.ack = 777;
  s.flags = kAck | kPsh;
  s.window = 512;
  s.options.has_timestamps = true;
  s.options.ts_val = 1234;
  s.options.ts_ecr = 99;
  s.link.ifindex = 4;
  const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x09};
  std::memcpy(s.link.mac, mac, 6);
  return s;
}

// A payload of whole frames (u16 length + bytes), `frames` frames of
// `frame_len` bytes each, bytes numbered from `tag`.
Bytes frames_payload(int frames, size_t frame_len, uint8_t tag) {
  Bytes p;
  for (int f = 0; f < frames; ++f) {
    p.push_back(static_cast<uint8_t>(frame_len >> 8));
    p.push_back(static_cast<uint8_t>(frame_len));
    for (size_t i = 0; i < frame_len; ++i) p.push_back(static_cast<uint8_t>(tag + f * 31 + i));
  }
  return p;
}

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Get32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

// What the kernel's TCP segmentation does with a GSO packet (RFC 9293's
// header copied into each piece; the sequence number advanced; the IPv4
// length and checksum redone; the TCP checksum finished by "the device":
// the pseudo-header sum for the piece's length, then the sum over the TCP
// bytes from csum_start). Only what the packet's own fields say is used.
std::vector<Bytes> cut(const uint8_t* pkt, size_t len, const GsoLayout& layout) {
  std::vector<Bytes> out;
  const size_t hdr = layout.header_len;
  const size_t payload = len - hdr;
  const size_t step = layout.gso_size == 0 ? payload : layout.gso_size;
  const uint32_t seq0 = Get32(pkt + 20 + 4);
  const uint32_t src = Get32(pkt + 12), dst = Get32(pkt + 16);
  for (size_t off = 0; off < payload || (payload == 0 && out.empty()); off += step) {
    const size_t n = payload - off < step ? payload - off : step;
    Bytes s(pkt, pkt + hdr);
    s.insert(s.end(), pkt + hdr + off, pkt + hdr + off + n);
    Put16(s.data() + 2, static_cast<uint16_t>(hdr + n));
    Put16(s.data() + 10, 0);
    Put16(s.data() + 10, ChecksumFold(ChecksumAdd(0, s.data(), 20)));
    uint8_t* tcp = s.data() + layout.csum_start;
    Put32(tcp + 4, seq0 + static_cast<uint32_t>(off));
    const size_t tcp_len = s.size() - layout.csum_start;
    Put16(tcp + layout.csum_offset,
          static_cast<uint16_t>(~ChecksumFold(PseudoHeaderSum(src, dst, tcp_len))));
    Put16(tcp + layout.csum_offset, ChecksumFold(ChecksumAdd(0, tcp, tcp_len)));
    out.push_back(s);
    if (payload == 0) break;
  }
  return out;
}

// A train of the given payloads (segments of one connection, consecutive),
// the packet and its layout; joined: how many Joins accepted.
struct Built {
  Bytes packet;
  GsoLayout layout;
  size_t joined = 0;
};

Built build(const std::vector<Bytes>& payloads, uint32_t seq = 1000) {
  Built b;
  b.packet.resize(65535);
  SegmentTrain t;
  uint32_t at = seq;
  for (size_t i = 0; i < payloads.size(); ++i) {
    const OutSegment s = data_segment(at);
    if (i == 0) {
      CHECK(t.Start(s, payloads[0].data(), payloads[0].size(), b.packet.data(), b.packet.size()));
    } else {
      CHECK(t.Joins(s, payloads[i].size()));
      t.Append(payloads[i].data(), payloads[i].size());
      ++b.joined;
    }
    at += static_cast<uint32_t>(payloads[i].size());
  }
  const size_t n = t.Finish(55, &b.layout);
  CHECK(t.empty());
  b.packet.resize(n);
  return b;
}

void equal_segments_make_one_packet_cut_back_into_them() {
  std::vector<Bytes> payloads;
  for (int i = 0; i < 5; ++i) payloads.push_back(frames_payload(2, 600, static_cast<uint8_t>(i)));
  const Built b = build(payloads, 0xfffff000u);   // the cut wraps the sequence space
  CHECK_EQ(b.joined, 4u);
  CHECK_EQ(b.layout.segments, 5u);
  CHECK_EQ(b.layout.gso_size, 1204u);
  CHECK_EQ(b.layout.csum_start, 20u);
  CHECK_EQ(b.layout.csum_offset, 16u);
  CHECK_EQ(b.layout.header_len, 20u + 20u + 12u);   // timestamps, NOP-padded
  CHECK_EQ(b.packet.size(), 52u + 5u * 1204u);
  CHECK_EQ(Get16(b.packet.data() + 2), b.packet.size());   // one IPv4 length for all
  CHECK_EQ(ChecksumFold(ChecksumAdd(0, b.packet.data(), 20)), 0u);   // IPv4 checksum whole
  // The TCP checksum field holds the pseudo-header sum over the whole
  // length, not complemented (what the kernel adjusts per piece).
  const uint16_t partial = Get16(b.packet.data() + 36);
  CHECK_EQ(partial, static_cast<uint16_t>(~ChecksumFold(PseudoHeaderSum(kServer, kClient, 32 + 5 * 1204))));
  const std::vector<Bytes> pieces = cut(b.packet.data(), b.packet.size(), b.layout);
  CHECK_EQ(pieces.size(), 5u);
  uint32_t seq = 0xfffff000u;
  for (size_t i = 0; i < pieces.size() && i < payloads.size(); ++i) {
    Segment s;
    CHECK_EQ(ParseIpv4Tcp(pieces[i].data(), pieces[i].size(), true, &s), ParseError::kOk);
    CHECK_EQ(s.seq, seq);
    CHECK_EQ(s.ack, 777u);
    CHECK_EQ(s.window, 512u);
    CHECK(s.options.has_timestamps && s.options.ts_val == 1234u && s.options.ts_ecr == 99u);
    CHECK_EQ(s.payload_len, payloads[i].size());
    CHECK(s.payload_len == payloads[i].size() &&
          std::memcmp(s.payload, payloads[i].data(), s.payload_len) == 0);
    // Whole frames: the piece starts with a frame length and ends at a frame's end.
    CHECK_EQ(Get16(s.payload), 600u);
    CHECK_EQ(Get16(s.payload + 602), 600u);
    seq += static_cast<uint32_t>(payloads[i].size());
  }
}

void shorter_last_segment_ends_the_train() {
  SegmentTrain t;
  Bytes buf(65535);
  const Bytes full = frames_payload(1, 1100, 1), small = frames_payload(1, 300, 2);
  CHECK(t.Start(data_segment(0), full.data(), full.size(), buf.data(), buf.size()));
  CHECK(t.Joins(data_segment(1102), small.size()));
  t.Append(small.data(), small.size());
  // Nothing may follow a shorter one: the cut would fall inside it.
  CHECK(!t.Joins(data_segment(1102 + 302), small.size()));
  CHECK(!t.Joins(data_segment(1102 + 302), full.size()));
  GsoLayout layout;
  const size_t n = t.Finish(1, &layout);
  CHECK_EQ(layout.segments, 2u);
  CHECK_EQ(layout.gso_size, 1102u);
  const std::vector<Bytes> pieces = cut(buf.data(), n, layout);
  CHECK_EQ(pieces.size(), 2u);
  if (pieces.size() == 2) {
    Segment s;
    CHECK_EQ(ParseIpv4Tcp(pieces[1].data(), pieces[1].size(), true, &s), ParseError::kOk);
    CHECK_EQ(s.seq, 1102u);
    CHECK_EQ(s.payload_len, 302u);
  }
}

void longer_segment_never_joins() {
  // A longer one would be cut at the first's length: frames torn apart.
  SegmentTrain t;
  Bytes buf(65535);
  const Bytes a = frames_payload(1, 500, 1), b = frames_payload(1, 501, 2);
  CHECK(t.Start(data_segment(0), a.data(), a.size(), buf.data(), buf.size()));
  CHECK(!t.Joins(data_segment(502), b.size()));
}

void other_headers_never_join() {
  SegmentTrain t;
  Bytes buf(65535);
  const Bytes p = frames_payload(1, 1000, 3);
  CHECK(t.Start(data_segment(0), p.data(), p.size(), buf.data(), buf.size()));
  const uint32_t next = 1002;
  CHECK(t.Joins(data_segment(next), p.size()));   // the control: this one would
  OutSegment s = data_segment(next + 1);           // not the next byte
  CHECK(!t.Joins(s, p.size()));
  s = data_segment(0);                             // the same range again (a retransmission)
  CHECK(!t.Joins(s, p.size()));
  s = data_segment(next); s.ack = 778;
  CHECK(!t.Joins(s, p.size()));
  s = data_segment(next); s.window = 511;
  CHECK(!t.Joins(s, p.size()));
  s = data_segment(next); s.options.ts_val = 1235;
  CHECK(!t.Joins(s, p.size()));
  s = data_segment(next); s.options.has_timestamps = false;
  CHECK(!t.Joins(s, p.size()));
  s = data_segment(next); s.options.sack_count = 1;
  CHECK(!t.Joins(s, p.size()));
  s = data_segment(next); s.flags = kAck | kPsh | kFin;
  CHECK(!t.Joins(s, p.size()));
  s = data_segment(next); s.flags = kAck;
  CHECK(!t.Joins(s, p.size()));
  s = data_segment(next); s.dst.port = 50001;       // another connection
  CHECK(!t.Joins(s, p.size()));
  s = data_segment(next); s.dst.addr = kClient + 1;
  CHECK(!t.Joins(s, p.size()));
  s = data_segment(next); s.link.ifindex = 5;        // another link
  CHECK(!t.Joins(s, p.size()));
  s = data_segment(next); s.link.mac[5] = 0x0a;
  CHECK(!t.Joins(s, p.size()));
  CHECK(!t.Joins(data_segment(next), 0));            // a bare ACK
}

void a_bare_ack_starts_no_train() {
  // A segment without payload goes alone (gso_size 0), and nothing joins it.
  SegmentTrain t;
  Bytes buf(1500);
  OutSegment ack = data_segment(0);
  ack.flags = kAck;
  CHECK(t.Start(ack, nullptr, 0, buf.data(), buf.size()));
  CHECK(!t.Joins(data_segment(0), 100));
  GsoLayout layout;
  const size_t n = t.Finish(9, &layout);
  CHECK_EQ(n, 52u);
  CHECK_EQ(layout.segments, 1u);
  CHECK_EQ(layout.gso_size, 0u);
  const std::vector<Bytes> pieces = cut(buf.data(), n, layout);
  CHECK_EQ(pieces.size(), 1u);
  Segment s;
  if (!pieces.empty()) CHECK_EQ(ParseIpv4Tcp(pieces[0].data(), pieces[0].size(), true, &s), ParseError::kOk);
  CHECK_EQ(t.Finish(9, &layout), 0u);   // empty now
}

void limits_bound_a_train() {
  // At most max_segments segments, and never past an IPv4 packet's 65535 bytes.
  {
    SegmentTrain t(3);
    Bytes buf(65535);
    const Bytes p = frames_payload(1, 100, 1);
    CHECK(t.Start(data_segment(0), p.data(), p.size(), buf.data(), buf.size()));
    for (uint32_t i = 1; i < 3; ++i) {
      CHECK(t.Joins(data_segment(i * 102), p.size()));
      t.Append(p.data(), p.size());
    }
    CHECK(!t.Joins(data_segment(3 * 102), p.size()));
  }
  {
    SegmentTrain t(1000);
    Bytes buf(65535);
    const Bytes p = frames_payload(1, 1398, 1);   // 1400-byte segments
    CHECK(t.Start(data_segment(0), p.data(), p.size(), buf.data(), buf.size()));
    uint32_t n = 1;
    while (t.Joins(data_segment(n * 1400), p.size())) {
      t.Append(p.data(), p.size());
      ++n;
    }
    CHECK_EQ(n, (65535u - 52u) / 1400u);   // 46 fit, the 47th would pass 65535
    GsoLayout layout;
    CHECK(t.Finish(1, &layout) <= 65535u);
  }
  {
    // A buffer too small for even the first: nothing opened.
    SegmentTrain t;
    Bytes buf(100);
    const Bytes p = frames_payload(1, 100, 1);
    CHECK(!t.Start(data_segment(0), p.data(), p.size(), buf.data(), buf.size()));
    CHECK(t.empty());
  }
}

void usable_links() {
  const uint8_t unicast[6] = {0x02, 0x42, 0xac, 0x11, 0x00, 0x02};
  const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  const uint8_t multicast[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
  const uint8_t zero[6] = {0, 0, 0, 0, 0, 0};
  LinkAddress l;
  CHECK(UsableLink(3, kLinkEthernet, 6, unicast, &l));
  CHECK_EQ(l.ifindex, 3);
  CHECK(std::memcmp(l.mac, unicast, 6) == 0);
  // Hostile or unknown sources: nothing set, the routed path.
  LinkAddress none;
  CHECK(!UsableLink(3, kLinkEthernet, 6, broadcast, &none));
  CHECK(!UsableLink(3, kLinkEthernet, 6, multicast, &none));
  CHECK(!UsableLink(3, kLinkEthernet, 6, zero, &none));
  CHECK(!UsableLink(3, kLinkEthernet, 4, unicast, &none));
  CHECK(!UsableLink(3, kLinkEthernet, 6, nullptr, &none));
  CHECK(!UsableLink(0, kLinkEthernet, 6, unicast, &none));
  CHECK(!UsableLink(-1, kLinkEthernet, 6, unicast, &none));
  CHECK(!UsableLink(3, 65534, 0, unicast, &none));   // ARPHRD_NONE (a TUN)
  CHECK(!UsableLink(3, 778, 6, unicast, &none));     // ARPHRD_IPGRE
  CHECK(!UsableLink(1, kLinkLoopback, 6, zero, &none));   // lo: the routed path
  CHECK_EQ(none.ifindex, 0);
}

}  // namespace

int main() {
  g_check_print_limit = 50;
  equal_segments_make_one_packet_cut_back_into_them();
  shorter_last_segment_ends_the_train();
  longer_segment_never_joins();
  other_headers_never_join();
  a_bare_ack_starts_no_train();
  limits_bound_a_train();
  usable_links();
  if (g_failures) {
    std::fprintf(stderr, "tcp_segment_train_test: %d of %d checks failed\n", g_failures.load(),
                 g_checks.load());
    return 1;
  }
  std::printf("tcp_segment_train_test: %d checks passed\n", g_checks.load());
  return 0;
}

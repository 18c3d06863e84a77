// Tests of IPv4 + TCP segment parsing and building (native/tcp/segment.h):
// RFC 791 and RFC 9293 §3.1 headers, options of RFC 7323 and RFC 2018, the
// RFC 1071 checksum.
//
// The expected SYN-ACK bytes were laid out by hand from the RFCs' header
// diagrams (options in Linux's order: MSS, SACK-permitted + timestamps,
// NOP + window scale); their two checksums were computed by a separate
// 10-line script, not by this code.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "tcp/segment.h"

#include "check.h"

using namespace rqcast::tcp;

namespace {

using Bytes = std::vector<uint8_t>;

const uint8_t kSynAck[] = {
    0x45, 0x00, 0x00, 0x3c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x14, 0x86, 0x0a, 0x00, 0x00,
    0x02, 0x0a, 0x00, 0x00, 0x01, 0x0f, 0xa0, 0xc3, 0x50, 0x11, 0x22, 0x33, 0x44, 0xa0, 0xb0,
    0xc0, 0xd1, 0xa0, 0x12, 0xff, 0xff, 0x71, 0xc7, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04,
    0x02, 0x08, 0x0a, 0x01, 0x02, 0x03, 0x04, 0xa1, 0xa2, 0xa3, 0xa4, 0x01, 0x03, 0x03, 0x07};

OutSegment syn_ack_fields() {
  OutSegment s;
  s.src = {0x0A000002, 4000};
  s.dst = {0x0A000001, 50000};
  s.seq = 0x11223344;
  s.ack = 0xA0B0C0D1;
  s.flags = kSyn | kAck;
  s.window = 65535;
  s.options.has_mss = true;
  s.options.mss = 1460;
  s.options.sack_permitted = true;
  s.options.has_timestamps = true;
  s.options.ts_val = 0x01020304;
  s.options.ts_ecr = 0xA1A2A3A4;
  s.options.has_wscale = true;
  s.options.wscale = 7;
  return s;
}

// A minimal packet: 20-byte IP header, TCP header with `opts` (a multiple of
// 4 bytes) and `payload` zero bytes. Checksums are left 0: parse() does not
// verify them.
Bytes raw_packet(const Bytes& opts, size_t payload) {
  const size_t tcp_len = 20 + opts.size() + payload;
  Bytes p(20 + tcp_len, 0);
  p[0] = 0x45;
  p[2] = static_cast<uint8_t>((20 + tcp_len) >> 8);
  p[3] = static_cast<uint8_t>(20 + tcp_len);
  p[8] = 64;
  p[9] = 6;
  p[12] = 10, p[15] = 1, p[16] = 10, p[19] = 2;
  p[20] = 0x12, p[21] = 0x34;   // ports
  p[22] = 0x00, p[23] = 0x50;
  p[32] = static_cast<uint8_t>(((20 + opts.size()) / 4) << 4);
  p[33] = kAck;
  if (!opts.empty()) std::memcpy(p.data() + 40, opts.data(), opts.size());
  return p;
}

ParseError parse(const Bytes& p, Segment* s, bool verify = false) {
  return ParseIpv4Tcp(p.data(), p.size(), verify, s);
}

// RFC 1071 §3 numerical example: the sum of 0001 f203 f4f5 f6f7 is ddf2.
void checksum_rfc1071_example() {
  const uint8_t b[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK_EQ(ChecksumFold(ChecksumAdd(0, b, sizeof b)), uint16_t(0xFFFF - 0xddf2));
  // Chained over two even pieces: the same.
  CHECK_EQ(ChecksumFold(ChecksumAdd(ChecksumAdd(0, b, 4), b + 4, 4)), uint16_t(0x220d));
  // An odd tail is padded with a zero byte.
  const uint8_t odd[] = {0x12, 0x34, 0x56};
  CHECK_EQ(ChecksumFold(ChecksumAdd(0, odd, 3)), uint16_t(~uint16_t(0x1234 + 0x5600)));
}

void build_syn_ack_bytes() {
  const OutSegment s = syn_ack_fields();
  CHECK_EQ(OptionsSize(s.options), size_t(20));
  CHECK_EQ(BuiltSize(s, 0), sizeof kSynAck);
  uint8_t out[128];
  CHECK_EQ(BuildIpv4Tcp(s, nullptr, 0, 0x1234, out, sizeof out), sizeof kSynAck);
  CHECK(std::memcmp(out, kSynAck, sizeof kSynAck) == 0);
  for (size_t i = 0; i < sizeof kSynAck; ++i) {
    if (out[i] != kSynAck[i]) std::fprintf(stderr, "byte %zu: %02x want %02x\n", i, out[i], kSynAck[i]);
  }
  // Too small a buffer: nothing.
  CHECK_EQ(BuildIpv4Tcp(s, nullptr, 0, 0x1234, out, sizeof kSynAck - 1), size_t(0));
}

void parse_syn_ack_bytes() {
  Segment g;
  CHECK_EQ(ParseIpv4Tcp(kSynAck, sizeof kSynAck, true, &g), ParseError::kOk);
  CHECK_EQ(g.src.addr, 0x0A000002u);
  CHECK_EQ(g.dst.addr, 0x0A000001u);
  CHECK_EQ(g.src.port, 4000);
  CHECK_EQ(g.dst.port, 50000);
  CHECK_EQ(g.seq, 0x11223344u);
  CHECK_EQ(g.ack, 0xA0B0C0D1u);
  CHECK_EQ(g.flags, uint8_t(kSyn | kAck));
  CHECK_EQ(g.window, 65535);
  CHECK(g.options.has_mss);
  CHECK_EQ(g.options.mss, 1460);
  CHECK(g.options.sack_permitted);
  CHECK(g.options.has_timestamps);
  CHECK_EQ(g.options.ts_val, 0x01020304u);
  CHECK_EQ(g.options.ts_ecr, 0xA1A2A3A4u);
  CHECK(g.options.has_wscale);
  CHECK_EQ(g.options.wscale, 7);
  CHECK_EQ(g.payload_len, size_t(0));
  // One flipped bit anywhere in the TCP part breaks the checksum.
  Bytes bad(kSynAck, kSynAck + sizeof kSynAck);
  bad[50] ^= 0x10;
  CHECK_EQ(parse(bad, &g, true), ParseError::kBadChecksum);
  CHECK_EQ(parse(bad, &g, false), ParseError::kOk);
}

void parse_ip_errors() {
  Segment g;
  Bytes p = raw_packet({}, 4);
  CHECK_EQ(parse(p, &g), ParseError::kOk);
  CHECK_EQ(g.payload_len, size_t(4));
  CHECK_EQ(ParseIpv4Tcp(p.data(), 19, false, &g), ParseError::kTruncated);
  Bytes q = p;
  q[0] = 0x65;
  CHECK_EQ(parse(q, &g), ParseError::kNotIpv4);
  q = p;
  q[0] = 0x44;
  CHECK_EQ(parse(q, &g), ParseError::kBadIpHeader);
  q = p;
  q[0] = 0x4F;   // 60-byte header in a 44-byte packet
  CHECK_EQ(parse(q, &g), ParseError::kTruncated);
  q = p;
  q[3] = static_cast<uint8_t>(p.size() + 1);   // total length past the bytes
  CHECK_EQ(parse(q, &g), ParseError::kTruncated);
  q = p;
  q[2] = 0, q[3] = 19;
  CHECK_EQ(parse(q, &g), ParseError::kBadIpHeader);
  q = p;
  q[6] = 0x20;   // MF
  CHECK_EQ(parse(q, &g), ParseError::kFragment);
  q = p;
  q[7] = 0x01;   // offset 8
  CHECK_EQ(parse(q, &g), ParseError::kFragment);
  q = p;
  q[6] = 0x40;   // DF alone is fine
  CHECK_EQ(parse(q, &g), ParseError::kOk);
  q = p;
  q[9] = 17;
  CHECK_EQ(parse(q, &g), ParseError::kNotTcp);
  // Trailing bytes past the IP total length (Ethernet padding) are not payload.
  q = p;
  q.push_back(0xEE);
  q.push_back(0xEE);
  CHECK_EQ(parse(q, &g), ParseError::kOk);
  CHECK_EQ(g.payload_len, size_t(4));
  // IP options: the TCP header starts after them.
  Bytes o(p.size() + 4, 0);
  std::memcpy(o.data(), p.data(), 20);
  o[0] = 0x46;
  o[3] = static_cast<uint8_t>(o.size());
  o[20] = 1, o[21] = 1, o[22] = 1, o[23] = 0;
  std::memcpy(o.data() + 24, p.data() + 20, p.size() - 20);
  CHECK_EQ(parse(o, &g), ParseError::kOk);
  CHECK_EQ(g.src.port, 0x1234);
  CHECK_EQ(g.payload_len, size_t(4));
}

void parse_tcp_errors() {
  Segment g;
  Bytes p = raw_packet({}, 0);
  Bytes q = p;
  q[3] = 39;   // 19 TCP bytes
  q.resize(39);
  CHECK_EQ(parse(q, &g), ParseError::kTruncated);
  q = p;
  q[32] = 4 << 4;
  CHECK_EQ(parse(q, &g), ParseError::kBadTcpHeader);
  q = p;
  q[32] = 6 << 4;   // 24 bytes of header in 20
  CHECK_EQ(parse(q, &g), ParseError::kBadTcpHeader);
}

void parse_option_errors() {
  Segment g;
  // Each malformed option list (padded to 4 bytes) is kBadOptions.
  const std::vector<Bytes> bad = {
      {1, 1, 2, 4},                // an MSS running past the header
      {2, 1, 0, 0},                // length < 2
      {9, 0, 0, 0},                // unknown, length 0
      {2, 3, 5, 1},                // MSS of length 3
      {3, 4, 7, 0},                // WS of length 4
      {4, 3, 0, 0},                // SACK-permitted of length 3
      {8, 8, 0, 0, 0, 0, 0, 0},    // TS of length 8
      {5, 6, 0, 0, 0, 0, 0, 0},    // SACK of length 6
      {5, 14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},   // SACK of 1.5 blocks
      {1, 1, 1, 2},                // kind at the last byte, no length
  };
  for (const Bytes& opts : bad) {
    const Bytes& o = opts;
    CHECK_MSG(parse(raw_packet(o, 0), &g) == ParseError::kBadOptions, "option kind %d len %d",
              o[0], o[1]);
  }
  // An unknown option is skipped; EOL ends the list; WS above 14 reads as 14.
  CHECK_EQ(parse(raw_packet({30, 4, 9, 9, 3, 3, 20, 0}, 0), &g), ParseError::kOk);
  CHECK(g.options.has_wscale);
  CHECK_EQ(g.options.wscale, 14);
  CHECK_EQ(parse(raw_packet({0, 2, 0, 0}, 0), &g), ParseError::kOk);   // after EOL: ignored
  CHECK(!g.options.has_mss);
  // SACK with 3 blocks.
  Bytes sack = {1, 1, 5, 26};
  for (uint32_t v = 1; v <= 6; ++v) {
    sack.push_back(0), sack.push_back(0), sack.push_back(0), sack.push_back(uint8_t(v * 10));
  }
  CHECK_EQ(parse(raw_packet(sack, 0), &g), ParseError::kOk);
  CHECK_EQ(g.options.sack_count, 3);
  CHECK_EQ(g.options.sack[0].left, 10u);
  CHECK_EQ(g.options.sack[0].right, 20u);
  CHECK_EQ(g.options.sack[2].left, 50u);
  CHECK_EQ(g.options.sack[2].right, 60u);
}

// Build then parse gives the same fields, for random options and payloads
// (SACK blocks beyond what fits next to the other options are dropped by the
// builder: the parse sees only those).
void round_trip_random() {
  std::mt19937 rng(12345);
  uint8_t buf[2048];
  uint8_t payload[1500];
  for (int iter = 0; iter < 5000; ++iter) {
    OutSegment s;
    s.src = {uint32_t(rng()), uint16_t(rng())};
    s.dst = {uint32_t(rng()), uint16_t(rng())};
    s.seq = rng();
    s.ack = rng();
    s.flags = uint8_t(rng());
    s.window = uint16_t(rng());
    Options& o = s.options;
    o.has_mss = rng() & 1;
    o.mss = uint16_t(rng());
    o.has_wscale = rng() & 1;
    o.wscale = uint8_t(rng() % 15);
    o.sack_permitted = rng() & 1;
    o.has_timestamps = rng() & 1;
    o.ts_val = rng();
    o.ts_ecr = rng();
    o.sack_count = uint8_t(rng() % 5);
    for (int b = 0; b < kMaxSackBlocks; ++b) o.sack[b] = {uint32_t(rng()), uint32_t(rng())};
    const size_t len = rng() % sizeof payload;
    for (size_t i = 0; i < len; ++i) payload[i] = uint8_t(rng());
    const uint16_t id = uint16_t(rng());
    const size_t n = BuildIpv4Tcp(s, payload, len, id, buf, sizeof buf);
    CHECK_EQ(n, BuiltSize(s, len));
    CHECK_EQ(OptionsSize(o) % 4, size_t(0));
    CHECK(OptionsSize(o) <= kMaxTcpOptionBytes);
    Segment g;
    CHECK_EQ(ParseIpv4Tcp(buf, n, true, &g), ParseError::kOk);
    CHECK_EQ(ChecksumFold(ChecksumAdd(0, buf, 20)), uint16_t(0));   // IP header checksum
    CHECK_EQ(buf[4] * 256 + buf[5], id);
    CHECK_EQ(g.src.addr, s.src.addr);
    CHECK_EQ(g.src.port, s.src.port);
    CHECK_EQ(g.dst.addr, s.dst.addr);
    CHECK_EQ(g.dst.port, s.dst.port);
    CHECK_EQ(g.seq, s.seq);
    CHECK_EQ(g.ack, s.ack);
    CHECK_EQ(g.flags, s.flags);
    CHECK_EQ(g.window, s.window);
    CHECK_EQ(g.options.has_mss, o.has_mss);
    if (o.has_mss) CHECK_EQ(g.options.mss, o.mss);
    CHECK_EQ(g.options.has_wscale, o.has_wscale);
    if (o.has_wscale) CHECK_EQ(g.options.wscale, o.wscale);
    CHECK_EQ(g.options.sack_permitted, o.sack_permitted);
    CHECK_EQ(g.options.has_timestamps, o.has_timestamps);
    if (o.has_timestamps) {
      CHECK_EQ(g.options.ts_val, o.ts_val);
      CHECK_EQ(g.options.ts_ecr, o.ts_ecr);
    }
    const size_t other = (o.has_mss ? 4 : 0) + (o.has_timestamps ? 12 : o.sack_permitted ? 4 : 0) +
                         (o.has_wscale ? 4 : 0);
    int fit = o.sack_count;
    while (fit > 0 && other + 4 + 8 * size_t(fit) > 40) --fit;
    CHECK_EQ(int(g.options.sack_count), fit);
    for (int b = 0; b < fit; ++b) {
      CHECK_EQ(g.options.sack[b].left, o.sack[b].left);
      CHECK_EQ(g.options.sack[b].right, o.sack[b].right);
    }
    CHECK_EQ(g.payload_len, len);
    CHECK(len == 0 || std::memcmp(g.payload, payload, len) == 0);
  }
}

}  // namespace

int main() {
  g_check_print_limit = 50;
  checksum_rfc1071_example();
  build_syn_ack_bytes();
  parse_syn_ack_bytes();
  parse_ip_errors();
  parse_tcp_errors();
  parse_option_errors();
  round_trip_random();
  if (g_failures) {
    std::fprintf(stderr, "tcp_segment_test: %d of %d checks failed\n", g_failures.load(),
                 g_checks.load());
    return 1;
  }
  std::printf("tcp_segment_test: %d checks passed\n", g_checks.load());
  return 0;
}

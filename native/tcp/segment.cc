// rqcast — parse and build IPv4 + TCP segments (see segment.h).
#include "tcp/segment.h"

#include <cstring>

namespace rqcast {
namespace tcp {

namespace {

// TCP option kinds (RFC 9293 §3.2, RFC 7323, RFC 2018).
constexpr uint8_t kOptEnd = 0, kOptNop = 1, kOptMss = 2, kOptWscale = 3,
                  kOptSackPermitted = 4, kOptSack = 5, kOptTimestamps = 8;
constexpr uint8_t kMaxWscale = 14;   // RFC 7323 §2.3

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t Get32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}
void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

ParseError ParseOptions(const uint8_t* p, size_t n, Options* o) {
  size_t i = 0;
  while (i < n) {
    const uint8_t kind = p[i];
    if (kind == kOptEnd) break;
    if (kind == kOptNop) {
      ++i;
      continue;
    }
    if (i + 1 >= n) return ParseError::kBadOptions;
    const uint8_t len = p[i + 1];
    if (len < 2 || len > n - i) return ParseError::kBadOptions;
    const uint8_t* v = p + i + 2;
    switch (kind) {
      case kOptMss:
        if (len != 4) return ParseError::kBadOptions;
        o->has_mss = true;
        o->mss = Get16(v);
        break;
      case kOptWscale:
        if (len != 3) return ParseError::kBadOptions;
        o->has_wscale = true;
        o->wscale = v[0] > kMaxWscale ? kMaxWscale : v[0];
        break;
      case kOptSackPermitted:
        if (len != 2) return ParseError::kBadOptions;
        o->sack_permitted = true;
        break;
      case kOptSack: {
        if (len < 10 || (len - 2) % 8 != 0) return ParseError::kBadOptions;
        const int count = (len - 2) / 8;   // at most 4 in 40 option bytes
        o->sack_count = 0;
        for (int b = 0; b < count && b < kMaxSackBlocks; ++b) {
          o->sack[b].left = Get32(v + 8 * b);
          o->sack[b].right = Get32(v + 8 * b + 4);
          o->sack_count = static_cast<uint8_t>(b + 1);
        }
        break;
      }
      case kOptTimestamps:
        if (len != 10) return ParseError::kBadOptions;
        o->has_timestamps = true;
        o->ts_val = Get32(v);
        o->ts_ecr = Get32(v + 4);
        break;
      default:
        break;   // unknown: skipped by its length
    }
    i += len;
  }
  return ParseError::kOk;
}

// How many SACK blocks OptionsSize/BuildOptions write: what fits in 40 bytes
// next to the other options.
int SackBlocksThatFit(const Options& o, size_t other) {
  int n = o.sack_count > kMaxSackBlocks ? kMaxSackBlocks : o.sack_count;
  while (n > 0 && other + 4 + 8 * size_t(n) > kMaxTcpOptionBytes) --n;
  return n;
}

size_t OtherOptionsSize(const Options& o) {
  size_t n = 0;
  if (o.has_mss) n += 4;
  if (o.has_timestamps) n += 12;                  // SACK-permitted rides in its NOPs
  else if (o.sack_permitted) n += 4;
  if (o.has_wscale) n += 4;
  return n;
}

// The layout Linux uses, which RFC 7323 appendix A recommends: every option
// 4-byte aligned by NOPs, SACK-permitted in the two bytes before the
// timestamps when both are on a SYN.
size_t BuildOptions(const Options& o, uint8_t* p) {
  uint8_t* const start = p;
  if (o.has_mss) {
    p[0] = kOptMss;
    p[1] = 4;
    Put16(p + 2, o.mss);
    p += 4;
  }
  if (o.has_timestamps) {
    if (o.sack_permitted) {
      p[0] = kOptSackPermitted;
      p[1] = 2;
    } else {
      p[0] = kOptNop;
      p[1] = kOptNop;
    }
    p[2] = kOptTimestamps;
    p[3] = 10;
    Put32(p + 4, o.ts_val);
    Put32(p + 8, o.ts_ecr);
    p += 12;
  } else if (o.sack_permitted) {
    p[0] = kOptNop;
    p[1] = kOptNop;
    p[2] = kOptSackPermitted;
    p[3] = 2;
    p += 4;
  }
  if (o.has_wscale) {
    p[0] = kOptNop;
    p[1] = kOptWscale;
    p[2] = 3;
    p[3] = o.wscale;
    p += 4;
  }
  const int blocks = SackBlocksThatFit(o, static_cast<size_t>(p - start));
  if (blocks > 0) {
    p[0] = kOptNop;
    p[1] = kOptNop;
    p[2] = kOptSack;
    p[3] = static_cast<uint8_t>(2 + 8 * blocks);
    p += 4;
    for (int b = 0; b < blocks; ++b) {
      Put32(p, o.sack[b].left);
      Put32(p + 4, o.sack[b].right);
      p += 8;
    }
  }
  return static_cast<size_t>(p - start);
}

}  // namespace

uint64_t ChecksumAdd(uint64_t sum, const uint8_t* p, size_t n) {
  size_t i = 0;
  for (; i + 1 < n; i += 2) sum += (uint32_t(p[i]) << 8) | p[i + 1];
  if (i < n) sum += uint32_t(p[i]) << 8;
  return sum;
}

uint16_t ChecksumFold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

uint64_t PseudoHeaderSum(uint32_t src, uint32_t dst, size_t tcp_length) {
  return uint64_t(src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + 6u +
         uint64_t(tcp_length);
}

ParseError ParseIpv4Tcp(const uint8_t* packet, size_t len, bool verify_checksum,
                        Segment* out) {
  *out = Segment();
  if (len < kIpv4HeaderSize) return ParseError::kTruncated;
  const uint8_t* ip = packet;
  if ((ip[0] >> 4) != 4) return ParseError::kNotIpv4;
  const size_t ihl = size_t(ip[0] & 0x0F) * 4;
  if (ihl < kIpv4HeaderSize) return ParseError::kBadIpHeader;
  if (ihl > len) return ParseError::kTruncated;
  const size_t total = Get16(ip + 2);
  if (total > len) return ParseError::kTruncated;
  if (total < ihl) return ParseError::kBadIpHeader;
  const uint16_t frag = Get16(ip + 6);
  if ((frag & 0x2000) != 0 || (frag & 0x1FFF) != 0) return ParseError::kFragment;
  if (ip[9] != 6) return ParseError::kNotTcp;

  const uint8_t* tcp = ip + ihl;
  const size_t tcp_len = total - ihl;
  if (tcp_len < kTcpHeaderSize) return ParseError::kTruncated;
  const size_t data_offset = size_t(tcp[12] >> 4) * 4;
  if (data_offset < kTcpHeaderSize || data_offset > tcp_len) return ParseError::kBadTcpHeader;

  out->src.addr = Get32(ip + 12);
  out->dst.addr = Get32(ip + 16);
  if (verify_checksum) {
    uint64_t sum = PseudoHeaderSum(out->src.addr, out->dst.addr, tcp_len);
    sum = ChecksumAdd(sum, tcp, tcp_len);
    if (ChecksumFold(sum) != 0) return ParseError::kBadChecksum;
  }
  out->src.port = Get16(tcp);
  out->dst.port = Get16(tcp + 2);
  out->seq = Get32(tcp + 4);
  out->ack = Get32(tcp + 8);
  out->flags = tcp[13];
  out->window = Get16(tcp + 14);
  const ParseError oe =
      ParseOptions(tcp + kTcpHeaderSize, data_offset - kTcpHeaderSize, &out->options);
  if (oe != ParseError::kOk) return oe;
  out->payload = tcp + data_offset;
  out->payload_len = tcp_len - data_offset;
  return ParseError::kOk;
}

size_t OptionsSize(const Options& options) {
  const size_t other = OtherOptionsSize(options);
  const int blocks = SackBlocksThatFit(options, other);
  return other + (blocks > 0 ? 4 + 8 * size_t(blocks) : 0);
}

size_t BuiltSize(const OutSegment& seg, size_t payload_len) {
  return kIpv4HeaderSize + kTcpHeaderSize + OptionsSize(seg.options) + payload_len;
}

namespace {

// Both headers (the TCP checksum field 0) for payload_len bytes; the TCP
// header's size, 0 if it does not fit.
size_t WriteHeaders(const OutSegment& seg, size_t payload_len, uint16_t ip_id, uint8_t* out,
                    size_t cap) {
  const size_t total = BuiltSize(seg, payload_len);
  if (total > cap || total > 0xFFFF) return 0;
  uint8_t* ip = out;
  ip[0] = 0x45;
  ip[1] = 0;
  Put16(ip + 2, static_cast<uint16_t>(total));
  Put16(ip + 4, ip_id);
  Put16(ip + 6, 0x4000);   // DF: the path MTU is what the MSS came from
  ip[8] = 64;
  ip[9] = 6;
  Put16(ip + 10, 0);
  Put32(ip + 12, seg.src.addr);
  Put32(ip + 16, seg.dst.addr);
  Put16(ip + 10, ChecksumFold(ChecksumAdd(0, ip, kIpv4HeaderSize)));

  uint8_t* tcp = ip + kIpv4HeaderSize;
  const size_t opt_len = BuildOptions(seg.options, tcp + kTcpHeaderSize);
  const size_t header = kTcpHeaderSize + opt_len;
  Put16(tcp, seg.src.port);
  Put16(tcp + 2, seg.dst.port);
  Put32(tcp + 4, seg.seq);
  Put32(tcp + 8, seg.ack);
  tcp[12] = static_cast<uint8_t>((header / 4) << 4);
  tcp[13] = seg.flags;
  Put16(tcp + 14, seg.window);
  Put16(tcp + 16, 0);
  Put16(tcp + 18, 0);
  return header;
}

}  // namespace

size_t BuildIpv4Tcp(const OutSegment& seg, const uint8_t* payload, size_t payload_len,
                    uint16_t ip_id, uint8_t* out, size_t cap) {
  const size_t header = WriteHeaders(seg, payload_len, ip_id, out, cap);
  if (header == 0) return 0;
  uint8_t* tcp = out + kIpv4HeaderSize;
  if (payload_len > 0) std::memcpy(tcp + header, payload, payload_len);
  const size_t tcp_len = header + payload_len;
  uint64_t sum = PseudoHeaderSum(seg.src.addr, seg.dst.addr, tcp_len);
  sum = ChecksumAdd(sum, tcp, tcp_len);
  Put16(tcp + 16, ChecksumFold(sum));
  return kIpv4HeaderSize + tcp_len;
}

size_t BuildIpv4TcpHeaders(const OutSegment& seg, size_t payload_len, uint16_t ip_id,
                           uint8_t* out, size_t cap) {
  const size_t header = WriteHeaders(seg, payload_len, ip_id, out, cap);
  if (header == 0) return 0;
  const uint64_t pseudo = PseudoHeaderSum(seg.src.addr, seg.dst.addr, header + payload_len);
  // ChecksumFold complements; the partial field is the sum itself.
  Put16(out + kIpv4HeaderSize + 16, static_cast<uint16_t>(~ChecksumFold(pseudo)));
  return kIpv4HeaderSize + header;
}

}  // namespace tcp
}  // namespace rqcast

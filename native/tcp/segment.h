// rqcast — parse and build IPv4 + TCP segments (RFC 791, RFC 9293 §3.1,
// options RFC 7323 (WS, TS), RFC 2018 (SACK)), and the Internet checksum
// (RFC 1071) they share.
//
// The parser never trusts a length it has not checked against the bytes it
// was given: it is the first thing every packet off the wire meets.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rqcast {
namespace tcp {

// One's-complement sum (RFC 1071) of n bytes as big-endian 16-bit words, added
// to `sum` (unfolded, so that sums of several pieces can be chained; every
// piece but the last must have an even length). ChecksumFold folds it to 16
// bits and complements it: the value to put in a header, and 0 when the bytes
// summed include a correct checksum.
uint64_t ChecksumAdd(uint64_t sum, const uint8_t* p, size_t n);
uint16_t ChecksumFold(uint64_t sum);
// The TCP pseudo-header (RFC 9293 §3.1) for addresses in host byte order.
uint64_t PseudoHeaderSum(uint32_t src, uint32_t dst, size_t tcp_length);

constexpr size_t kIpv4HeaderSize = 20;   // what we build: no IP options
constexpr size_t kTcpHeaderSize = 20;    // without options
constexpr size_t kMaxTcpOptionBytes = 40;

enum Flag : uint8_t { kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10, kUrg = 0x20, kEce = 0x40, kCwr = 0x80 };
struct SackBlock { uint32_t left = 0, right = 0; };   // [left, right)
constexpr int kMaxSackBlocks = 4;
struct Options {
  bool has_mss = false;        uint16_t mss = 0;
  bool has_wscale = false;     uint8_t wscale = 0;     // as sent; > 14 is read as 14
  bool sack_permitted = false;
  bool has_timestamps = false; uint32_t ts_val = 0, ts_ecr = 0;
  uint8_t sack_count = 0;      SackBlock sack[kMaxSackBlocks];
};
// Addresses and ports in host byte order.
struct Endpoint4 { uint32_t addr = 0; uint16_t port = 0; };
// The link a segment arrived on, as the receive socket saw it: the shell fills
// it in (segment_train.h, UsableLink), the core only carries it from a SYN to
// every segment of its connection, so that they leave by the same link to the
// same next hop. ifindex 0: unknown, the routed path (IPPROTO_RAW).
struct LinkAddress {
  int32_t ifindex = 0;
  uint8_t mac[6] = {0, 0, 0, 0, 0, 0};   // the next hop's (the frame's source)
};
struct Segment {               // a parsed segment; payload points into the packet
  Endpoint4 src, dst;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;         // as on the wire (unscaled)
  Options options;
  const uint8_t* payload = nullptr;
  size_t payload_len = 0;
  LinkAddress link;            // set by the shell, not by the parser
  bool has(uint8_t f) const { return (flags & f) != 0; }
};
enum class ParseError { kOk, kTruncated, kNotIpv4, kNotTcp, kFragment, kBadIpHeader,
                        kBadTcpHeader, kBadOptions, kBadChecksum };
// Parses one IPv4 packet holding a TCP segment. Checks the IP header
// (version 4, IHL >= 5, total length <= len, no fragment: MF clear and offset 0),
// the TCP data offset, and (if verify_checksum) the TCP checksum. Malformed
// options: kBadOptions (a length < 2, running past the header, a known option
// of the wrong length). Unknown options are skipped. Never reads out of bounds.
ParseError ParseIpv4Tcp(const uint8_t* packet, size_t len, bool verify_checksum, Segment* out);
// What the connection hands the shell to put on the wire.
struct OutSegment {
  Endpoint4 src, dst;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;         // already scaled down
  Options options;             // mss/wscale/sack_permitted only on SYN-ACK
  LinkAddress link;            // the SYN's (a RST: the segment's it answers)
};
// Bytes BuildIpv4Tcp writes for `seg` with `payload_len` payload bytes.
size_t BuiltSize(const OutSegment& seg, size_t payload_len);
// Bytes of TCP options BuildIpv4Tcp writes for `options` (a multiple of 4, at
// most 40). SACK blocks that would not fit in 40 bytes are left out (with
// timestamps at most 3 fit).
size_t OptionsSize(const Options& options);
// Writes the IPv4 header (TTL 64, DF set, the given IP id), the TCP header with its
// options (NOP-padded to 4 bytes; SACK blocks and timestamps as RFC 7323
// appendix A lays them out) and the payload; both checksums computed.
// Returns the bytes written, 0 if cap is too small (or the packet would be
// longer than an IPv4 total length can say, 65535).
size_t BuildIpv4Tcp(const OutSegment& seg, const uint8_t* payload, size_t payload_len,
                    uint16_t ip_id, uint8_t* out, size_t cap);
// The same headers for `payload_len` bytes that the caller puts right after
// them, with the TCP checksum left to the kernel or the device
// (CHECKSUM_PARTIAL): the checksum field holds the pseudo-header sum (with
// the whole TCP length), folded and not complemented, and the device sums
// the TCP bytes into it. What a GSO packet carries; the kernel fixes the
// length in each segment's pseudo-header sum when it cuts. Returns the header
// bytes written (IPv4 + TCP with options), 0 if cap is too small or the
// packet would pass 65535 bytes.
size_t BuildIpv4TcpHeaders(const OutSegment& seg, size_t payload_len, uint16_t ip_id,
                           uint8_t* out, size_t cap);

}  // namespace tcp
}  // namespace rqcast

// libFuzzer harness: IPv4 + TCP segment parsing (native/tcp/segment.h).
//
// Properties:
//  - ParseIpv4Tcp of any bytes never reads out of bounds (ASan) and, when
//    it accepts, its payload lies inside the input;
//  - an accepted segment rebuilt with BuildIpv4Tcp parses back (checksum
//    verified) to the same fields, options and payload (SACK blocks beyond
//    what fits next to the other options are the builder's to drop);
//  - with verify_checksum the verdict differs from without only by
//    kBadChecksum.
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_check.h"
#include "tcp/segment.h"

using namespace rqcast::tcp;

namespace {

bool SameOptions(const Options& a, const Options& b) {
  if (a.has_mss != b.has_mss || (a.has_mss && a.mss != b.mss)) return false;
  if (a.has_wscale != b.has_wscale || (a.has_wscale && a.wscale != b.wscale)) return false;
  if (a.sack_permitted != b.sack_permitted) return false;
  if (a.has_timestamps != b.has_timestamps) return false;
  if (a.has_timestamps && (a.ts_val != b.ts_val || a.ts_ecr != b.ts_ecr)) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Segment s;
  const ParseError plain = ParseIpv4Tcp(data, size, false, &s);
  Segment v;
  const ParseError checked = ParseIpv4Tcp(data, size, true, &v);
  if (plain != ParseError::kOk) {
    FUZZ_CHECK(checked == plain || checked == ParseError::kBadChecksum);
    return 0;
  }
  FUZZ_CHECK(checked == ParseError::kOk || checked == ParseError::kBadChecksum);
  FUZZ_CHECK(s.payload >= data && s.payload + s.payload_len <= data + size);
  FUZZ_CHECK(s.options.sack_count <= kMaxSackBlocks);
  FUZZ_CHECK(!s.options.has_wscale || s.options.wscale <= 14);

  OutSegment o;
  o.src = s.src;
  o.dst = s.dst;
  o.seq = s.seq;
  o.ack = s.ack;
  o.flags = s.flags;
  o.window = s.window;
  o.options = s.options;
  std::vector<uint8_t> buf(BuiltSize(o, s.payload_len));
  const size_t n = BuildIpv4Tcp(o, s.payload, s.payload_len, 7, buf.data(), buf.size());
  if (buf.size() > 0xFFFF) {
    FUZZ_CHECK(n == 0);
    return 0;
  }
  FUZZ_CHECK(n == buf.size());
  Segment r;
  FUZZ_CHECK(ParseIpv4Tcp(buf.data(), n, true, &r) == ParseError::kOk);
  FUZZ_CHECK(r.src.addr == s.src.addr && r.src.port == s.src.port);
  FUZZ_CHECK(r.dst.addr == s.dst.addr && r.dst.port == s.dst.port);
  FUZZ_CHECK(r.seq == s.seq && r.ack == s.ack && r.flags == s.flags && r.window == s.window);
  FUZZ_CHECK(SameOptions(r.options, s.options));
  FUZZ_CHECK(r.options.sack_count <= s.options.sack_count);
  for (int b = 0; b < r.options.sack_count; ++b) {
    FUZZ_CHECK(r.options.sack[b].left == s.options.sack[b].left);
    FUZZ_CHECK(r.options.sack[b].right == s.options.sack[b].right);
  }
  FUZZ_CHECK(r.payload_len == s.payload_len);
  FUZZ_CHECK(s.payload_len == 0 || std::memcmp(r.payload, s.payload, s.payload_len) == 0);
  return 0;
}

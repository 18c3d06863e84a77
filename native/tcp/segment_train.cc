#include "tcp/segment_train.h"

#include <cstring>

namespace rqcast {
namespace tcp {

bool UsableLink(int ifindex, uint16_t link_type, uint8_t addr_len, const uint8_t* addr,
                LinkAddress* out) {
  if (ifindex <= 0 || addr_len != 6 || addr == nullptr || link_type != kLinkEthernet) return false;
  if (addr[0] & 0x01) return false;   // group bit: broadcast or multicast
  bool zero = true;
  for (int i = 0; i < 6; ++i) zero = zero && addr[i] == 0;
  if (zero) return false;
  out->ifindex = ifindex;
  std::memcpy(out->mac, addr, 6);
  return true;
}

namespace {

bool SameOptions(const Options& a, const Options& b) {
  return !a.has_mss && !b.has_mss && !a.has_wscale && !b.has_wscale && !a.sack_permitted &&
         !b.sack_permitted && a.sack_count == 0 && b.sack_count == 0 &&
         a.has_timestamps == b.has_timestamps &&
         (!a.has_timestamps || (a.ts_val == b.ts_val && a.ts_ecr == b.ts_ecr));
}

bool SameLink(const LinkAddress& a, const LinkAddress& b) {
  return a.ifindex == b.ifindex && std::memcmp(a.mac, b.mac, 6) == 0;
}

}  // namespace

SegmentTrain::SegmentTrain(uint32_t max_segments, size_t max_bytes)
    : max_segments_(max_segments == 0 ? 1 : max_segments),
      max_bytes_(max_bytes > 0xFFFF ? 0xFFFF : max_bytes) {}

bool SegmentTrain::Joins(const OutSegment& seg, size_t len) const {
  if (segments_ == 0 || last_ || segments_ >= max_segments_) return false;
  if (len == 0 || segment_len_ == 0 || len > segment_len_) return false;
  if (seg.flags != first_.flags || (seg.flags & (kSyn | kFin | kRst | kUrg)) != 0) return false;
  if (seg.src.addr != first_.src.addr || seg.src.port != first_.src.port ||
      seg.dst.addr != first_.dst.addr || seg.dst.port != first_.dst.port ||
      !SameLink(seg.link, first_.link)) {
    return false;
  }
  if (seg.seq != first_.seq + static_cast<uint32_t>(payload_)) return false;
  if (seg.ack != first_.ack || seg.window != first_.window) return false;
  if (!SameOptions(seg.options, first_.options)) return false;
  const size_t total = header_ + payload_ + len;
  return total <= max_bytes_ && total <= cap_;
}

bool SegmentTrain::Start(const OutSegment& seg, const uint8_t* payload, size_t len,
                         uint8_t* buf, size_t cap) {
  const size_t header = BuiltSize(seg, 0);
  if (header + len > cap || header + len > max_bytes_) return false;
  first_ = seg;
  buf_ = buf;
  cap_ = cap;
  header_ = header;
  if (len > 0) std::memcpy(buf_ + header_, payload, len);
  payload_ = len;
  segment_len_ = static_cast<uint32_t>(len);
  segments_ = 1;
  last_ = false;
  return true;
}

void SegmentTrain::Append(const uint8_t* payload, size_t len) {
  std::memcpy(buf_ + header_ + payload_, payload, len);
  payload_ += len;
  ++segments_;
  if (len < segment_len_) last_ = true;
}

size_t SegmentTrain::Finish(uint16_t ip_id, GsoLayout* layout) {
  if (segments_ == 0) return 0;
  const size_t header = BuildIpv4TcpHeaders(first_, payload_, ip_id, buf_, cap_);
  layout->segments = segments_;
  layout->gso_size = segments_ > 1 ? static_cast<uint16_t>(segment_len_) : 0;
  layout->csum_start = static_cast<uint16_t>(kIpv4HeaderSize);
  layout->csum_offset = 16;
  layout->header_len = static_cast<uint16_t>(header);
  const size_t total = header == 0 ? 0 : header + payload_;
  segments_ = 0;
  payload_ = 0;
  segment_len_ = 0;
  last_ = false;
  return total;
}

}  // namespace tcp
}  // namespace rqcast

// rqcast — trains of TCP segments sent as one GSO packet (generic
// segmentation offload): what the shell hands the kernel so that one
// syscall and one trip through the stack carry many segments, cut back into
// those same segments by the kernel or the device (docs/ARCHITECTURE.md,
// "How segments leave").
//
// A GSO packet is cut every gso_size payload bytes, whatever its contents:
// so a train only ever holds consecutive segments of one connection, all of
// one payload length (the last may be shorter: the cut leaves it whole),
// each of them made of whole frames by the connection. The cut then falls
// exactly on the connection's segment boundaries, which the fresh-symbol
// rule needs never to move (connection.h). Every segment of the train
// carries the first one's headers (the kernel copies them), so they must
// agree: same ACK, window, flags (ACK+PSH; the kernel leaves PSH on the
// last only) and options (timestamps; no SACK blocks, no SYN options).
//
// I/O-free: the train is built in a buffer the shell owns, and Finish says
// how the kernel's virtio_net_hdr must describe it (GsoLayout).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tcp/segment.h"

namespace rqcast {
namespace tcp {

// Link types (if_arp.h's ARPHRD_*).
constexpr uint16_t kLinkEthernet = 1;      // ARPHRD_ETHER: the only one addressed
constexpr uint16_t kLinkLoopback = 772;    // ARPHRD_LOOPBACK
// The link a segment came from, from what the receive socket said of it
// (interface index, link type, the frame's source address and its length).
// False (out untouched, ifindex 0: the routed path) unless the frame is an
// Ethernet one from a unicast, non-zero address: a hostile SYN must not
// turn the connection's segments into broadcasts or multicasts on the link.
// Loopback is refused too: a frame put on lo by a packet socket carries no
// route, and the kernel drops one to or from 127/8 as a martian (RFC 1122
// §3.2.1.3) where its own looped packets keep the route they went out by;
// the routed path is what works there.
bool UsableLink(int ifindex, uint16_t link_type, uint8_t addr_len, const uint8_t* addr,
                LinkAddress* out);

// How the packet Finish wrote is to be described to the kernel.
struct GsoLayout {
  uint32_t segments = 0;      // TCP segments the packet holds
  uint16_t gso_size = 0;      // payload bytes per segment; 0: one segment, nothing to cut
  uint16_t csum_start = 0;    // the TCP header's offset from the IPv4 header's start
  uint16_t csum_offset = 16;  // the checksum field's offset in the TCP header
  uint16_t header_len = 0;    // IPv4 + TCP header bytes (with options)
};

class SegmentTrain {
 public:
  // At most max_segments segments and max_bytes bytes (IPv4 total length,
  // at most 65535) per packet.
  explicit SegmentTrain(uint32_t max_segments = 64, size_t max_bytes = 65535);

  bool empty() const { return segments_ == 0; }
  uint32_t segments() const { return segments_; }
  // Whether seg (with len payload bytes) may ride in the open train: the
  // next bytes of the same connection and link, the same headers but for
  // the sequence number, a payload as long as the first segment's (or
  // shorter: then it is the last), within the limits.
  bool Joins(const OutSegment& seg, size_t len) const;
  // Opens a train in buf (cap bytes) with seg: room for its headers is left
  // at the front, the payload is copied after it. False (nothing opened) if
  // it does not fit in cap or in an IPv4 packet.
  bool Start(const OutSegment& seg, const uint8_t* payload, size_t len, uint8_t* buf, size_t cap);
  // Adds a segment Joins accepted.
  void Append(const uint8_t* payload, size_t len);
  // Writes the headers in front of the payloads (the IPv4 checksum whole, the
  // TCP one partial: segment.h, BuildIpv4TcpHeaders), empties the train, and
  // returns the packet's length from buf (0 if the train was empty).
  size_t Finish(uint16_t ip_id, GsoLayout* layout);

 private:
  uint32_t max_segments_;
  size_t max_bytes_;
  OutSegment first_;
  uint8_t* buf_ = nullptr;
  size_t cap_ = 0, header_ = 0, payload_ = 0;
  uint32_t segments_ = 0, segment_len_ = 0;
  bool last_ = false;   // a shorter segment ended it
};

}  // namespace tcp
}  // namespace rqcast

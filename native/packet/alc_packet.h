// rqcast — ALC packet assembly (RFC 5775 §4): the LCT header, then the
// RaptorQ FEC Payload ID (RFC 6330 §3.2), then one encoding symbol
// (PROTOCOL.md §8, G = 1 as every stream packet, §10.3).
//
// A channel builds one HeaderTemplate per (TSI, TOI, extensions) once; every
// packet of a run is then the template with its own sequence number stamped
// into EXT_RQSEQ, and its payload ID and symbol generated in place. Whoever
// sends packets — the JavaScript stream through the binding today, the
// replication thread or the TCP sender next (a retransmission rebuilds one
// packet for a given block, ESI and sequence number) — calls WritePackets,
// with no JavaScript in the loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fec/codec.h"
#include "packet/lct_header.h"

namespace rqcast {
namespace packet {

// The bytes every packet of a run starts with, and where in them the
// packet's 32-bit sequence number goes (or nowhere: a fresh-symbol
// replacement carries no EXT_RQSEQ, PROTOCOL.md §10).
class HeaderTemplate {
 public:
  static constexpr size_t kNoSequence = SIZE_MAX;

  // An empty header without a sequence number.
  HeaderTemplate() = default;
  // Copies `size` bytes; the sequence number is the 4 bytes at seq_at
  // (seq_at + 4 <= size) or kNoSequence. Any bytes are accepted, not only
  // an LCT header: the binding's packetsWithHeader has always taken the
  // caller's header as given. Because the bytes are copied, they may be a
  // view of the very buffer the packets are then written to.
  // kInvalidArgument (nothing kept) when seq_at does not fit.
  static fec::Status FromBytes(const uint8_t* bytes, size_t size,
                               size_t seq_at, HeaderTemplate* out);
  // The header rqcast sends for `fields` (lct_header.h); with
  // fields.has_sequence, EXT_RQSEQ's u32 is the sequence number.
  static fec::Status ForLct(const LctHeaderFields& fields,
                            HeaderTemplate* out);

  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  bool has_sequence() const { return seq_at_ != kNoSequence; }
  // kNoSequence when there is none.
  size_t sequence_offset() const { return seq_at_; }

 private:
  std::vector<uint8_t> bytes_;
  size_t seq_at_ = kNoSequence;
};

// Bytes of one packet: header, FEC Payload ID, a symbol of T bytes.
inline size_t PacketSize(const HeaderTemplate& header, uint16_t T) {
  return header.size() + fec::kPayloadIdSize + T;
}

// A run of packets of one source block with consecutive ESIs and
// consecutive sequence numbers.
struct PacketRun {
  uint32_t sbn = 0;
  uint32_t first_esi = 0;
  uint32_t count = 0;
  // Packet i carries (first_sequence + i) mod 2^32 (PROTOCOL.md §8.5: the
  // sequence number wraps); ignored when the header has no sequence.
  uint32_t first_sequence = 0;
};

// Writes run.count finished packets, packet i at out + i * stride: the
// header with its sequence number stamped big-endian, the FEC Payload ID
// (run.sbn, run.first_esi + i), the T-byte symbol of that ESI. The
// stride - PacketSize bytes after each packet are left alone (a ring's slot
// may be larger than the packet). Prepares the block if needed, as
// fec::ObjectEncoder::Packets does.
//
// Every bound is checked before anything is written, and nothing is
// written on error: kSbnOutOfRange (sbn >= Z), kEsiOutOfRange (an ESI of
// the run past 2^24 - 1), kInvalidArgument (stride < PacketSize, or `out`
// null or shorter than (count - 1) * stride + PacketSize); then whatever
// preparing the block returns (kIoError, kSourceTruncated, kOutOfMemory).
// An empty run writes nothing and `out` may then be null.
fec::Status WritePackets(fec::ObjectEncoder& encoder,
                         const HeaderTemplate& header, const PacketRun& run,
                         uint8_t* out, size_t out_size, size_t stride);

}  // namespace packet
}  // namespace rqcast

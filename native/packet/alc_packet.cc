// ALC packet assembly (see alc_packet.h).
#include "packet/alc_packet.h"

#include <cstring>

namespace rqcast {
namespace packet {

using fec::Status;

Status HeaderTemplate::FromBytes(const uint8_t* bytes, size_t size,
                                 size_t seq_at, HeaderTemplate* out) {
  if (size != 0 && bytes == nullptr) return Status::kInvalidArgument;
  if (seq_at != kNoSequence && (size < 4 || seq_at > size - 4)) {
    return Status::kInvalidArgument;
  }
  out->bytes_.assign(bytes, bytes + size);
  out->seq_at_ = seq_at;
  return Status::kOk;
}

Status HeaderTemplate::ForLct(const LctHeaderFields& fields,
                              HeaderTemplate* out) {
  std::vector<uint8_t> bytes(LctHeaderSize(fields));
  Status s = WriteLctHeader(fields, bytes.data(), bytes.size(), nullptr);
  if (s != Status::kOk) return s;
  out->bytes_ = std::move(bytes);
  out->seq_at_ =
      fields.has_sequence ? LctSequenceOffset(fields) : kNoSequence;
  return Status::kOk;
}

Status WritePackets(fec::ObjectEncoder& encoder, const HeaderTemplate& header,
                    const PacketRun& run, uint8_t* out, size_t out_size,
                    size_t stride) {
  const fec::ObjectLayout& layout = encoder.Layout();
  if (run.sbn >= layout.oti.Z) return Status::kSbnOutOfRange;
  // The last ESI of the run must fit the 24-bit field (RFC 6330 §3.2).
  if (run.first_esi > fec::kMaxEsi ||
      (run.count > 0 && run.count - 1 > fec::kMaxEsi - run.first_esi)) {
    return Status::kEsiOutOfRange;
  }
  if (run.count == 0) return Status::kOk;
  const size_t H = header.size();
  const size_t packet_size = PacketSize(header, layout.oti.T);
  // Room for (count - 1) strides and one whole packet, without overflow.
  if (out == nullptr || stride < packet_size || out_size < packet_size ||
      (run.count > 1 &&
       stride > (out_size - packet_size) / (run.count - 1))) {
    return Status::kInvalidArgument;
  }
  // Symbols first: if preparing the block fails, nothing has been written.
  Status s = encoder.Packets(run.sbn, run.first_esi, run.count, out + H,
                             stride);
  if (s != Status::kOk) return s;
  const uint8_t* h = header.data();
  const size_t seq_at = header.sequence_offset();
  const bool stamp = header.has_sequence();
  // uint32_t arithmetic: the sequence number wraps at 2^32 (§8.5).
  uint32_t seq = run.first_sequence;
  for (uint32_t i = 0; i < run.count; ++i, ++seq) {
    uint8_t* p = out + size_t(i) * stride;
    if (H != 0) std::memcpy(p, h, H);
    if (stamp) PutU32(p + seq_at, seq);
  }
  return Status::kOk;
}

}  // namespace packet
}  // namespace rqcast

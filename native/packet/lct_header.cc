// The LCT header rqcast sends (see lct_header.h for the layout).
#include "packet/lct_header.h"

#include <cstring>

namespace rqcast {
namespace packet {

size_t LctHeaderSize(const LctHeaderFields& f) {
  return (ShortIds(f) ? kLctShortFixedSize : kLctFixedSize) + (f.has_fdt ? kExtFdtSize : 0) +
         (f.has_fti ? kExtFtiSize : 0) + (f.has_sequence ? kExtRqseqSize : 0);
}

size_t LctSequenceOffset(const LctHeaderFields& f) {
  return LctHeaderSize(f) - 4;
}

fec::Status WriteLctHeader(const LctHeaderFields& f, uint8_t* out,
                           size_t out_size, size_t* written) {
  const size_t size = LctHeaderSize(f);
  if (out == nullptr || out_size < size) return fec::Status::kInvalidArgument;
  if (f.has_fdt && f.fdt_instance_id > kMaxFdtInstanceId) {
    return fec::Status::kInvalidArgument;
  }
  if (f.has_fti) {
    const fec::Status s = fec::oti_validate(f.oti);
    if (s != fec::Status::kOk) return s;
  }

  // First word (RFC 5651 §5.1). C = 0: one word of CCI. PSI = 0. H = 1,
  // S = O = 0: TSI and TOI of 16 bits each, when both fit; else S = 1,
  // O = 1, H = 0: of 32 bits each. Res = 0.
  constexpr uint8_t kC = 0, kPsi = 0;
  const bool short_ids = ShortIds(f);
  const uint8_t s = short_ids ? 0 : 1, o = short_ids ? 0 : 1, h = short_ids ? 1 : 0;
  out[0] = static_cast<uint8_t>((kLctVersion << 4) | (kC << 2) | kPsi);
  out[1] = static_cast<uint8_t>((s << 7) | (o << 5) | (h << 4) |
                                ((f.close_session ? 1 : 0) << 1) |
                                (f.close_object ? 1 : 0));
  // HDR_LEN counts 32-bit words of the whole header, extensions included.
  out[2] = static_cast<uint8_t>(size / 4);
  out[3] = kFecEncodingIdRaptorQ;
  PutU32(out + 4, 0);  // CCI: no congestion control information
  uint8_t* p = out + 8;
  if (short_ids) {
    p[0] = static_cast<uint8_t>(f.tsi >> 8);
    p[1] = static_cast<uint8_t>(f.tsi);
    p[2] = static_cast<uint8_t>(f.toi >> 8);
    p[3] = static_cast<uint8_t>(f.toi);
    p += 4;
  } else {
    PutU32(p, f.tsi);
    PutU32(p + 4, f.toi);
    p += 8;
  }

  if (f.has_fdt) {
    // HET 192 is a one-word type (HET >= 128, RFC 5651 §5.2): no HEL.
    p[0] = kHetExtFdt;
    p[1] = static_cast<uint8_t>((kFluteVersion << 4) |
                                (f.fdt_instance_id >> 16));
    p[2] = static_cast<uint8_t>(f.fdt_instance_id >> 8);
    p[3] = static_cast<uint8_t>(f.fdt_instance_id);
    p += kExtFdtSize;
  }
  if (f.has_fti) {
    // HEL counts the extension's words, HET and HEL included; the 12-byte
    // OTI leaves 2 bytes of zero padding to the word.
    p[0] = kHetExtFti;
    p[1] = static_cast<uint8_t>(kExtFtiSize / 4);
    fec::oti_encode(f.oti, p + 2);
    p[2 + fec::kOtiSize] = 0;
    p[3 + fec::kOtiSize] = 0;
    p += kExtFtiSize;
  }
  if (f.has_sequence) {
    p[0] = kHetExtRqseq;
    p[1] = static_cast<uint8_t>(kExtRqseqSize / 4);
    p[2] = 0;  // reserved (PROTOCOL.md §8.5)
    p[3] = 0;
    PutU32(p + 4, f.sequence);
    p += kExtRqseqSize;
  }
  if (written != nullptr) *written = size;
  return fec::Status::kOk;
}

}  // namespace packet
}  // namespace rqcast

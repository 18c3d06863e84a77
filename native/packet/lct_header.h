// rqcast — the LCT header (RFC 5651 §5.1) rqcast puts on every ALC packet,
// with the header extensions it sends (RFC 5651 §5.2): EXT_FDT, EXT_FTI and
// EXT_RQSEQ. docs/PROTOCOL.md §8 is the contract; lib/protocol/lct.ts
// (writeLctHeader and its extension helpers) writes the same bytes.
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-------+---+---+-+---+-+---+-+-+---------------+---------------+
//   |   V   | C |PSI|S| O |H|Res|A|B|   HDR_LEN     | Codepoint (CP)|
//   +-------+---+---+-+---+-+---+-+-+---------------+---------------+
//   | CCI (32 bits, zero)                                           |
//   | TSI (16 or 32 bits)           | TOI (16 or 32 bits) ...         |
//   | EXT_FDT (4 bytes) | EXT_FTI (16 bytes) | EXT_RQSEQ (8 bytes)    |
//
// Only the layout rqcast sends is expressible (PROTOCOL.md §8.1): V = 1,
// C = 0 with a zero CCI, PSI = 0; S = 0, O = 0, H = 1 (TSI and TOI of 16
// bits) when both fit in 16 bits, else S = 1, O = 1, H = 0 (both of 32
// bits; one H bit widens both, RFC 5651 §5.1); Codepoint = FEC Encoding ID 6 (RaptorQ, RFC 6330), extensions in
// the order EXT_FDT, EXT_FTI, EXT_RQSEQ. Reading any legal LCT layout is
// the receiver's job (lib/protocol/lct.ts), not this file's.
#pragma once

#include <cstddef>
#include <cstdint>

#include "fec/codec.h"

namespace rqcast {
namespace packet {

constexpr uint8_t kLctVersion = 1;                // RFC 5651 §5.1
// The Codepoint carries the FEC Encoding ID (RFC 5775 §4.1); RaptorQ is 6
// (RFC 6330 §3.1).
constexpr uint8_t kFecEncodingIdRaptorQ = 6;
// Fixed part rqcast sends: first word and CCI, 32 bits each, then TSI and
// TOI of 16 bits each (H = 1) or of 32 bits each (S = O = 1).
constexpr size_t kLctFixedSize = 16;
constexpr size_t kLctShortFixedSize = 12;
// The largest TSI and TOI of the 16-bit form.
constexpr uint32_t kMaxShortId = 0xFFFF;

constexpr uint8_t kHetExtFti = 64;    // RFC 5775 §4.2
// rqcast's packet sequence number (PROTOCOL.md §8.5): variable-length type
// (6 bytes of content need HEL), unassigned in IANA's 64..127 range, so
// other receivers skip it (RFC 5651 §5.2).
constexpr uint8_t kHetExtRqseq = 120;
constexpr uint8_t kHetExtFdt = 192;   // RFC 6726 §3.4.1
constexpr uint8_t kFluteVersion = 2;  // V in EXT_FDT for RFC 6726

constexpr size_t kExtFdtSize = 4;     // HET | V (4 bits) | Instance ID (20)
constexpr size_t kExtFtiSize = 16;    // HET | HEL=4 | OTI (12) | 2 zero
constexpr size_t kExtRqseqSize = 8;   // HET | HEL=2 | 2 zero | u32
constexpr uint32_t kMaxFdtInstanceId = (1u << 20) - 1;  // RFC 6726 §3.4.1

// The largest header these fields describe: every extension present.
constexpr size_t kMaxLctHeaderSize =
    kLctFixedSize + kExtFdtSize + kExtFtiSize + kExtRqseqSize;
// HDR_LEN is 8 bits of 32-bit words (RFC 5651 §5.1).
static_assert(kMaxLctHeaderSize <= 255 * 4, "HDR_LEN is 8 bits of words");

// Writes v at p in network byte order, as every 32-bit field of the header
// goes on the wire (TSI, TOI, EXT_RQSEQ's sequence number).
inline void PutU32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// What varies between the headers rqcast sends.
struct LctHeaderFields {
  uint32_t tsi = 0;             // the channel (PROTOCOL.md §10)
  uint32_t toi = 0;             // 0: FDT instance, 1..: objects
  bool close_session = false;   // A (RFC 5651 §5.1); streams never set it
  bool close_object = false;    // B
  // EXT_FDT (RFC 6726 §3.4.1), required on TOI 0 packets.
  bool has_fdt = false;
  uint32_t fdt_instance_id = 0; // 0 ..= kMaxFdtInstanceId
  // EXT_FTI with the RaptorQ OTI (RFC 5775 §4.2, RFC 6330 §3.3).
  bool has_fti = false;
  fec::Oti oti;
  // EXT_RQSEQ, always last so its u32 ends the header.
  bool has_sequence = false;
  uint32_t sequence = 0;
};

// Whether the header of `fields` takes the 16-bit TSI and TOI (H = 1).
inline bool ShortIds(const LctHeaderFields& f) {
  return f.tsi <= kMaxShortId && f.toi <= kMaxShortId;
}

// Bytes of the header the fields describe (a multiple of 4).
size_t LctHeaderSize(const LctHeaderFields& fields);

// Offset of EXT_RQSEQ's 32-bit sequence number inside the header
// (LctHeaderSize - 4); only meaningful when fields.has_sequence.
size_t LctSequenceOffset(const LctHeaderFields& fields);

// Writes the header at out[0, LctHeaderSize(fields)) and sets *written
// (unless null).
// Checks everything first and writes nothing on error: kInvalidArgument
// for a null or too small `out` or an FDT Instance ID over 20 bits; the
// first oti_validate failure for an out-of-bounds OTI (as lct.ts refuses
// it in ftiExtension, PROTOCOL.md §8.4).
fec::Status WriteLctHeader(const LctHeaderFields& fields, uint8_t* out,
                           size_t out_size, size_t* written);

}  // namespace packet
}  // namespace rqcast

// libFuzzer harness: FEC Payload ID (RFC 6330 §3.2) and the packet checks
// an ObjectDecoder makes before it trusts a packet.
//
// Properties:
//  - payload_id_decode / payload_id_encode round trip any 4 bytes.
//  - ObjectDecoder::AddPacket on arbitrary bytes: a length other than
//    4 + T is kBadPacketLength; an SBN >= Z is kSbnOutOfRange; anything
//    else is accepted (any 24-bit ESI is a valid ESI). Never a crash.
#include <cstdint>
#include <cstring>
#include <memory>

#include "fec/codec.h"
#include "fuzz_check.h"

namespace fec = rqcast::fec;
using fec::Status;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= 4) {
    uint8_t sbn;
    uint32_t esi;
    fec::payload_id_decode(data, &sbn, &esi);
    FUZZ_CHECK(esi <= fec::kMaxEsi);
    uint8_t again[4];
    fec::payload_id_encode(sbn, esi, again);
    FUZZ_CHECK(std::memcmp(again, data, 4) == 0);
  }

  // First bytes pick a small object; the rest is a stream of packets,
  // each prefixed by a 1-byte length.
  FuzzInput in(data, size);
  fec::Oti oti;
  oti.Al = static_cast<uint8_t>(1u << (in.u8() % 3));          // 1, 2, 4
  oti.T = static_cast<uint16_t>(oti.Al * (1 + in.u8() % 16));  // <= 64
  oti.N = static_cast<uint16_t>(1 + in.u8() % 2);
  oti.Z = static_cast<uint16_t>(1 + in.u8() % 4);
  oti.F = 1 + in.u16() % 2048;
  if (fec::oti_validate(oti) != Status::kOk) return 0;
  std::unique_ptr<fec::ObjectDecoder> dec;
  FUZZ_CHECK(fec::ObjectDecoder::Create(oti, &dec) == Status::kOk);

  while (!in.empty()) {
    const size_t want = in.u8();
    size_t len;
    const uint8_t* pkt = in.bytes(want, &len);
    bool done = false;
    const Status st = dec->AddPacket(pkt, len, &done);
    if (len != fec::kPayloadIdSize + oti.T) {
      FUZZ_CHECK(st == Status::kBadPacketLength);
    } else if (pkt[0] >= oti.Z) {
      FUZZ_CHECK(st == Status::kSbnOutOfRange);
    } else {
      FUZZ_CHECK(st == Status::kOk);
    }
    uint32_t sbn = 0;
    const Status st2 = dec->AddPacketNoDecode(pkt, len, &sbn);
    FUZZ_CHECK(st2 == st);
    if (st2 == Status::kOk) FUZZ_CHECK(sbn == pkt[0]);
  }
  // Asking about any block never crashes; counts stay within bounds.
  for (uint32_t sbn = 0; sbn < oti.Z; ++sbn) {
    const fec::ObjectLayout& lay = dec->Layout();
    if (!dec->BlockDecoded(sbn)) FUZZ_CHECK(dec->Received(sbn) <= size);
    (void)lay;
  }
  FUZZ_CHECK(dec->BlocksDecoded() <= oti.Z);
  return 0;
}

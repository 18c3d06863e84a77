// libFuzzer harness: RFC 6330 OTI parsing and everything derived from it.
//
// Properties:
//  - oti_decode of any 12..N bytes never crashes; if it accepts, the
//    decoded OTI validates, re-encodes to bytes that decode to the same OTI,
//    and its object layout is consistent (blocks tile [0, F), each block
//    holds at most K'max symbols, Kt = ceil(F/T)).
//  - oti_validate on raw field values agrees with object_layout.
//  - oti_derive (RFC 6330 §4.3) either fails or yields a valid OTI for F.
//  - For small valid layouts, interleave_block / deinterleave_block round
//    trip every block's bytes (the sub-block rules of §4.4.1.2).
#include <cstdint>
#include <cstring>
#include <vector>

#include "fec/codec.h"
#include "fuzz_check.h"

using rqcast::fec::ObjectLayout;
using rqcast::fec::Oti;
using rqcast::fec::Status;
namespace fec = rqcast::fec;

namespace {

bool same(const Oti& a, const Oti& b) {
  return a.F == b.F && a.T == b.T && a.Z == b.Z && a.N == b.N && a.Al == b.Al;
}

void check_layout(const ObjectLayout& lay, const uint8_t* seed, size_t seed_len) {
  const Oti& o = lay.oti;
  FUZZ_CHECK(lay.Kt == (o.F + o.T - 1) / o.T);
  uint64_t offset = 0;
  uint64_t symbols = 0;
  for (uint32_t sbn = 0; sbn < o.Z; ++sbn) {
    const uint32_t K = lay.source_symbols(sbn);
    FUZZ_CHECK(K >= 1);
    FUZZ_CHECK(K <= fec::kMaxKPrime);
    FUZZ_CHECK(lay.block_offset(sbn) == offset);
    const uint64_t len = lay.block_length(sbn);
    FUZZ_CHECK(len <= uint64_t(K) * o.T);
    // Only the last block may be short (zero padding up to Kt*T).
    if (sbn + 1 < o.Z) FUZZ_CHECK(len == uint64_t(K) * o.T);
    offset += len;
    symbols += K;
  }
  FUZZ_CHECK(offset == o.F);
  FUZZ_CHECK(symbols == lay.Kt);

  // Interleave round trip, only where it is cheap.
  if (uint64_t(lay.source_symbols(0)) * o.T > (1u << 16)) return;
  for (uint32_t sbn = 0; sbn < o.Z && sbn < 4; ++sbn) {
    const uint32_t K = lay.source_symbols(sbn);
    const uint64_t len = lay.block_length(sbn);
    std::vector<uint8_t> block(len), symbols_buf(size_t(K) * o.T, 0xA5), back(len);
    for (uint64_t i = 0; i < len; ++i)
      block[i] = seed_len ? seed[i % seed_len] ^ uint8_t(i * 131 + sbn) : uint8_t(i);
    fec::interleave_block(lay, K, block.data(), len, symbols_buf.data());
    // Padding beyond the real bytes is zero (RFC 6330 §4.4.1.2).
    uint64_t nonzero = 0;
    for (uint8_t b : symbols_buf) nonzero += b != 0;
    uint64_t nonzero_in = 0;
    for (uint8_t b : block) nonzero_in += b != 0;
    FUZZ_CHECK(nonzero == nonzero_in);
    fec::deinterleave_block(lay, K, symbols_buf.data(), back.data(), len);
    FUZZ_CHECK(std::memcmp(block.data(), back.data(), len) == 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // 1. Wire parsing.
  Oti parsed;
  const Status st = fec::oti_decode(data, size, &parsed);
  if (size < fec::kOtiSize) FUZZ_CHECK(st != Status::kOk);
  if (st == Status::kOk) {
    FUZZ_CHECK(fec::oti_validate(parsed) == Status::kOk);
    uint8_t again[fec::kOtiSize];
    fec::oti_encode(parsed, again);
    Oti reparsed;
    FUZZ_CHECK(fec::oti_decode(again, sizeof again, &reparsed) == Status::kOk);
    FUZZ_CHECK(same(parsed, reparsed));
    // Fields other than the reserved byte are carried bit for bit.
    FUZZ_CHECK(std::memcmp(again, data, 5) == 0);
    FUZZ_CHECK(std::memcmp(again + 6, data + 6, 6) == 0);
    ObjectLayout lay;
    FUZZ_CHECK(fec::object_layout(parsed, &lay) == Status::kOk);
    check_layout(lay, data, size);
  }

  // 2. Raw field values straight into validate / layout.
  FuzzInput in(data, size);
  Oti raw;
  raw.F = in.u40();
  raw.T = static_cast<uint16_t>(in.u16());
  raw.Z = static_cast<uint16_t>(in.u16() % 300);
  raw.N = static_cast<uint16_t>(in.u16());
  raw.Al = in.u8();
  ObjectLayout lay;
  const Status vs = fec::oti_validate(raw);
  const Status ls = fec::object_layout(raw, &lay);
  FUZZ_CHECK((vs == Status::kOk) == (ls == Status::kOk));
  if (ls == Status::kOk) check_layout(lay, data, size);

  // 3. Parameter derivation (RFC 6330 §4.3).
  const uint64_t F = in.u40() % (fec::kMaxTransferLength + 2);
  const uint32_t P = in.u16();
  const uint8_t Al = in.u8();
  const uint32_t SS = in.u8();
  const uint64_t WS = (uint64_t(in.u24()) << 8) | in.u8();
  Oti derived;
  if (fec::oti_derive(F, P, Al, SS, WS, &derived) == Status::kOk) {
    FUZZ_CHECK(derived.F == F);
    FUZZ_CHECK(derived.T <= P);
    FUZZ_CHECK(fec::oti_validate(derived) == Status::kOk);
    ObjectLayout dl;
    FUZZ_CHECK(fec::object_layout(derived, &dl) == Status::kOk);
    check_layout(dl, data, size);
  }
  return 0;
}

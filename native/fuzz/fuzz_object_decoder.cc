// libFuzzer harness: an ObjectDecoder fed a hostile mix of packets.
//
// A handful of small objects are encoded once (ObjectEncoder). The fuzz
// input is a program of packet events:
//   - a genuine packet (any SBN < Z, any ESI: source or repair);
//   - bytes of the wrong length, or an SBN >= Z: must be rejected;
//   - a genuine header with a corrupted payload for a symbol the decoder
//     already holds, or for a block it already decoded: must be ignored
//     (RFC 6330 gives a receiver no way to check a symbol, so these are the
//     only corruptions a correct decoder can survive; they are exactly the
//     duplicates and late packets every multi-source client sees).
// Whenever the decoder says a block or the object is complete, its bytes
// must equal the original. At the end every source packet is delivered:
// the object must then be complete and equal to the original.
#include <cstdint>
#include <cstring>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "fec/codec.h"
#include "fuzz_check.h"

namespace fec = rqcast::fec;
using fec::Status;

namespace {

struct Fixture {
  fec::Oti oti;
  std::vector<uint8_t> data;
  std::unique_ptr<fec::ObjectEncoder> enc;
};

// (F, T, Z, N, Al): single and multi block, sub-blocks, K' != K and K' = K
// (K = 10 and 18 are Table 2 rows; K = 11 and 37 are not).
constexpr struct {
  uint32_t F;
  uint16_t T, Z, N;
  uint8_t Al;
} kShapes[] = {
    {1, 8, 1, 1, 1},     {160, 16, 1, 1, 4},  {170, 16, 1, 1, 1},
    {576, 32, 1, 2, 4},  {1180, 32, 1, 1, 4}, {1000, 16, 3, 1, 8},
    {2049, 24, 2, 3, 4}, {700, 64, 1, 4, 4},
};
constexpr size_t kNumShapes = sizeof kShapes / sizeof kShapes[0];

Fixture& fixture(size_t i) {
  static Fixture fixtures[kNumShapes];
  Fixture& f = fixtures[i];
  if (!f.enc) {
    f.oti.F = kShapes[i].F;
    f.oti.T = kShapes[i].T;
    f.oti.Z = kShapes[i].Z;
    f.oti.N = kShapes[i].N;
    f.oti.Al = kShapes[i].Al;
    FUZZ_CHECK(fec::oti_validate(f.oti) == Status::kOk);
    f.data.resize(f.oti.F);
    uint32_t x = 0x9E3779B9u * uint32_t(i + 1);
    for (auto& b : f.data) {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      b = static_cast<uint8_t>(x);
    }
    FUZZ_CHECK(fec::ObjectEncoder::Create(f.data.data(), f.data.size(), f.oti,
                                          &f.enc) == Status::kOk);
  }
  return f;
}

void check_block(const Fixture& f, const fec::ObjectDecoder& dec,
                 uint32_t sbn) {
  const fec::ObjectLayout& lay = dec.Layout();
  const uint64_t len = lay.block_length(sbn);
  std::vector<uint8_t> out(len);
  FUZZ_CHECK(dec.CopyBlock(sbn, out.data()) == Status::kOk);
  FUZZ_CHECK(std::memcmp(out.data(), f.data.data() + lay.block_offset(sbn),
                         len) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  Fixture& f = fixture(in.u8() % kNumShapes);
  const uint16_t T = f.oti.T;
  const size_t plen = fec::kPayloadIdSize + T;
  std::unique_ptr<fec::ObjectDecoder> dec;
  FUZZ_CHECK(fec::ObjectDecoder::Create(f.oti, &dec) == Status::kOk);
  const fec::ObjectLayout& lay = dec->Layout();
  const uint32_t Z = f.oti.Z;

  std::set<std::pair<uint32_t, uint32_t>> held;  // (sbn, esi) delivered
  std::vector<uint8_t> pkt(plen + 64);
  auto deliver = [&](uint32_t sbn, uint32_t esi) {
    FUZZ_CHECK(f.enc->Packet(sbn, esi, pkt.data()) == Status::kOk);
    bool done = false;
    FUZZ_CHECK(dec->AddPacket(pkt.data(), plen, &done) == Status::kOk);
    held.insert({sbn, esi});
    if (done) FUZZ_CHECK(dec->BlockDecoded(sbn));
    if (dec->BlockDecoded(sbn)) check_block(f, *dec, sbn);
  };

  while (!in.empty()) {
    const unsigned op = in.u8() % 6;
    const uint32_t sbn = in.u8() % Z;
    const uint32_t K = lay.source_symbols(sbn);
    switch (op) {
      case 0:  // genuine source symbol
        deliver(sbn, in.u8() % K);
        break;
      case 1:  // genuine repair symbol, ESI anywhere up to 2^24 - 1
      case 2: {
        uint32_t esi = op == 1 ? K + in.u8() : in.u24();
        deliver(sbn, esi % (fec::kMaxEsi + 1));
        break;
      }
      case 3: {  // wrong length (shorter, longer, or empty)
        size_t len = in.u8() % (plen + 64);
        if (len == plen) len = plen + 1;
        FUZZ_CHECK(f.enc->Packet(sbn, 0, pkt.data()) == Status::kOk);
        bool done = false;
        FUZZ_CHECK(dec->AddPacket(pkt.data(), len, &done) ==
                   Status::kBadPacketLength);
        FUZZ_CHECK(!done);
        break;
      }
      case 4: {  // SBN out of range
        FUZZ_CHECK(f.enc->Packet(sbn, in.u8(), pkt.data()) == Status::kOk);
        pkt[0] = static_cast<uint8_t>(Z + in.u8() % (256 - Z));
        bool done = false;
        FUZZ_CHECK(dec->AddPacket(pkt.data(), plen, &done) ==
                   Status::kSbnOutOfRange);
        break;
      }
      case 5: {  // corrupted duplicate, or corrupted late packet
        uint32_t esi;
        if (dec->BlockDecoded(sbn)) {
          esi = in.u24() % (fec::kMaxEsi + 1);
        } else {
          if (held.empty()) break;
          auto it = held.begin();
          std::advance(it, in.u8() % held.size());
          if (it->first != sbn) break;
          esi = it->second;
        }
        FUZZ_CHECK(f.enc->Packet(sbn, esi, pkt.data()) == Status::kOk);
        size_t n;
        const uint8_t* noise = in.bytes(T, &n);
        pkt[4] ^= 0x5A;  // always differs from the genuine symbol
        for (size_t i = 0; i < n; ++i) pkt[4 + i] ^= noise[i];
        bool done = false;
        FUZZ_CHECK(dec->AddPacket(pkt.data(), plen, &done) == Status::kOk);
        FUZZ_CHECK(!done);
        if (dec->BlockDecoded(sbn)) check_block(f, *dec, sbn);
        break;
      }
    }
  }

  // Every source symbol of every block: the object must now be complete.
  for (uint32_t sbn = 0; sbn < Z; ++sbn)
    for (uint32_t esi = 0; esi < lay.source_symbols(sbn); ++esi)
      if (!dec->BlockDecoded(sbn)) deliver(sbn, esi);
  FUZZ_CHECK(dec->Complete());
  FUZZ_CHECK(dec->BlocksDecoded() == Z);
  for (uint32_t sbn = 0; sbn < Z; ++sbn) check_block(f, *dec, sbn);
  return 0;
}

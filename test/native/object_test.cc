// Tests of the RFC 6330 object layer: OTI (§3.3.2, §3.3.3), the §4.3
// parameter derivation, Partition and sub-block interleaving (§4.4.1.2),
// and whole objects through ObjectEncoder / ObjectDecoder with loss.
//
// Expected values in the derivation and partition tests were worked out by
// hand from the RFC formulas and Table 2, not by running this code.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fec/codec.h"
#include "fec/encoding_plan.h"

#include "check.h"
#include "codec_fixtures.h"

using namespace rqcast::fec;

namespace {

bool same_oti(const Oti& a, const Oti& b) {
  return a.F == b.F && a.T == b.T && a.Z == b.Z && a.N == b.N && a.Al == b.Al;
}

// ------------------------------------------------------------- status --

void test_status_texts() {
  std::set<std::string> codes;
  for (int i = 0; i <= static_cast<int>(kLastStatus); ++i) {
    Status s = static_cast<Status>(i);
    std::string code = status_code(s);
    CHECK(!code.empty());
    CHECK(std::strlen(status_message(s)) > 0);
    if (s != Status::kOk) CHECK(code.rfind("ERR_RQ_", 0) == 0);
    codes.insert(code);
  }
  // Every status has its own code.
  CHECK(codes.size() == static_cast<size_t>(kLastStatus) + 1);
  CHECK(std::string(status_code(Status::kBadPacketLength)) ==
        "ERR_RQ_BAD_PACKET_LENGTH");
}

// ---------------------------------------------------------------- OTI --

void test_oti_wire_layout() {
  // F = 0x0102030405, T = 0x0608, Z = 0x80, N = 0x010A, Al = 4:
  // Kt = 2803575, ceil(Kt/128) = 21903 <= 56403, N <= T/Al = 386.
  Oti o = make_oti(0x0102030405ULL, 0x0608, 0x80, 0x010A, 4);
  CHECK_STATUS(oti_validate(o), Status::kOk);
  uint8_t b[kOtiSize];
  std::memset(b, 0xEE, sizeof b);
  oti_encode(o, b);
  const uint8_t want[kOtiSize] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x00,
                                  0x06, 0x08, 0x80, 0x01, 0x0A, 0x04};
  CHECK(std::memcmp(b, want, kOtiSize) == 0);
  Oti back;
  CHECK_STATUS(oti_decode(b, sizeof b, &back), Status::kOk);
  CHECK(same_oti(o, back));

  // The reserved octet is ignored on receipt (§3.3.2).
  b[5] = 0xFF;
  CHECK_STATUS(oti_decode(b, sizeof b, &back), Status::kOk);
  CHECK(same_oti(o, back));
}

void test_oti_round_trips() {
  const Oti cases[] = {
      make_oti(1, 1, 1, 1, 1),
      make_oti(1048576, 1280, 1, 5, 4),
      make_oti(100000000, 1024, 3, 32, 4),
      make_oti(12345, 64, 7, 16, 4),
      make_oti(kMaxTransferLength, 65535, 256, 1, 1),
      make_oti(999999, 65520, 2, 65520, 1),
      make_oti(5000, 255 * 2, 3, 2, 255),
  };
  for (const Oti& o : cases) {
    CHECK_STATUS(oti_validate(o), Status::kOk);
    uint8_t b[kOtiSize];
    oti_encode(o, b);
    CHECK(b[5] == 0);
    Oti back;
    CHECK_STATUS(oti_decode(b, sizeof b, &back), Status::kOk);
    CHECK(same_oti(o, back));
  }
}

void test_oti_z_256() {
  // Z = 256 is sent as 0 in the 8-bit field (see oti.cc): the largest F
  // of the RFC needs all 256 blocks of 56403 symbols of 65535 bytes.
  Oti o = make_oti(kMaxTransferLength, 65535, 256, 1, 1);
  uint8_t b[kOtiSize];
  oti_encode(o, b);
  CHECK(b[8] == 0);
  Oti back;
  CHECK_STATUS(oti_decode(b, sizeof b, &back), Status::kOk);
  CHECK(back.Z == 256);
  // One block fewer cannot carry it: ceil(14439168 / 255) = 56624 > 56403.
  o.Z = 255;
  CHECK_STATUS(oti_validate(o), Status::kTooManySourceSymbols);
}

void test_oti_bounds() {
  const Oti good = make_oti(100000, 1024, 4, 8, 4);
  CHECK_STATUS(oti_validate(good), Status::kOk);
  Oti o;

  o = good; o.F = 0;
  CHECK_STATUS(oti_validate(o), Status::kOtiOutOfBounds);
  o = good; o.F = kMaxTransferLength + 1; o.T = 65532; o.Z = 256;
  CHECK_STATUS(oti_validate(o), Status::kTransferTooLong);
  o = good; o.Al = 0;
  CHECK_STATUS(oti_validate(o), Status::kOtiOutOfBounds);
  o = good; o.T = 0;
  CHECK_STATUS(oti_validate(o), Status::kOtiOutOfBounds);
  o = good; o.T = 1026;
  CHECK_STATUS(oti_validate(o), Status::kSymbolSizeNotAligned);
  o = good; o.Z = 0;
  CHECK_STATUS(oti_validate(o), Status::kOtiOutOfBounds);
  o = good; o.Z = 257;
  CHECK_STATUS(oti_validate(o), Status::kOtiOutOfBounds);
  o = good; o.N = 0;
  CHECK_STATUS(oti_validate(o), Status::kOtiOutOfBounds);
  // T/Al = 256 sub-symbol units: N = 256 is fine, 257 leaves one empty.
  o = good; o.N = 256;
  CHECK_STATUS(oti_validate(o), Status::kOk);
  o = good; o.N = 257;
  CHECK_STATUS(oti_validate(o), Status::kSubSymbolTooSmall);
  // Kt = ceil(100000/1024) = 98: 98 blocks of one symbol, not 99.
  o = good; o.Z = 98;
  CHECK_STATUS(oti_validate(o), Status::kOk);
  o = good; o.Z = 99;
  CHECK_STATUS(oti_validate(o), Status::kOtiOutOfBounds);
  // One block of exactly K'max = 56403 symbols, then one symbol more.
  o = make_oti(56403ULL * 16, 16, 1, 1, 1);
  CHECK_STATUS(oti_validate(o), Status::kOk);
  o.F += 1;
  CHECK_STATUS(oti_validate(o), Status::kTooManySourceSymbols);
  o.Z = 2;
  CHECK_STATUS(oti_validate(o), Status::kOk);

  // Decoding checks the same bounds and the length.
  uint8_t b[kOtiSize + 1] = {};
  oti_encode(good, b);
  Oti back;
  CHECK_STATUS(oti_decode(b, kOtiSize - 1, &back), Status::kInvalidArgument);
  CHECK_STATUS(oti_decode(b, kOtiSize + 1, &back), Status::kInvalidArgument);
  CHECK_STATUS(oti_decode(nullptr, kOtiSize, &back), Status::kInvalidArgument);
  uint8_t bad[kOtiSize];
  std::memcpy(bad, b, kOtiSize);
  bad[11] = 0;  // Al = 0
  CHECK_STATUS(oti_decode(bad, kOtiSize, &back), Status::kOtiOutOfBounds);
  std::memcpy(bad, b, kOtiSize);
  bad[11] = 3;  // 1024 % 3 != 0
  CHECK_STATUS(oti_decode(bad, kOtiSize, &back), Status::kSymbolSizeNotAligned);
  std::memcpy(bad, b, kOtiSize);
  bad[0] = 0xFF;  // F > 946270874880
  CHECK_STATUS(oti_decode(bad, kOtiSize, &back), Status::kTransferTooLong);
  std::memcpy(bad, b, kOtiSize);
  bad[6] = bad[7] = 0;  // T = 0
  CHECK_STATUS(oti_decode(bad, kOtiSize, &back), Status::kOtiOutOfBounds);
  // A failed decode leaves *out alone.
  Oti untouched = make_oti(7, 7, 7, 7, 7);
  CHECK_STATUS(oti_decode(bad, kOtiSize, &untouched), Status::kOtiOutOfBounds);
  CHECK(untouched.F == 7 && untouched.T == 7);

  // Fuzz: any 12 bytes either decode to an OTI that validates and
  // re-encodes to the same bytes (reserved octet aside), or are refused.
  std::mt19937 rng(12);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    uint8_t r[kOtiSize];
    for (auto& x : r) x = static_cast<uint8_t>(rng());
    if (i % 2) r[0] = 0;  // keep F in range half the time
    if (i % 4 == 1) r[11] = 1;  // Al = 1 so T is aligned
    Oti f;
    if (oti_decode(r, kOtiSize, &f) == Status::kOk) {
      ++accepted;
      CHECK_STATUS(oti_validate(f), Status::kOk);
      uint8_t again[kOtiSize];
      oti_encode(f, again);
      r[5] = 0;
      CHECK(std::memcmp(r, again, kOtiSize) == 0);
    }
  }
  CHECK(accepted > 0);
}

// --------------------------------------------------------- derivation --

void test_oti_derive() {
  Oti o;
  // F = 1 MiB, P' = 1280, Al = 4, SS = 1, WS = 16 MiB:
  // T = 1280, Kt = 820, N_max = 320, KL(320) = 56403 -> Z = 1;
  // KL(1) = max K' <= 16777216/1280 = 13107, which is >= 820 -> N = 1.
  CHECK_STATUS(oti_derive(1048576, 1280, 4, 1, 16777216, &o), Status::kOk);
  CHECK(same_oti(o, make_oti(1048576, 1280, 1, 1, 4)));

  // Same with WS = 256 KiB: n = 4 gives 320-byte sub-symbols, K' <= 819
  // -> 811 < 820; n = 5 gives 256-byte sub-symbols, K' <= 1024 -> 1020.
  // So N = 5.
  CHECK_STATUS(oti_derive(1048576, 1280, 4, 1, 262144, &o), Status::kOk);
  CHECK(same_oti(o, make_oti(1048576, 1280, 1, 5, 4)));
  // P' = 1283 is not a multiple of Al: T = 1280, same result.
  CHECK_STATUS(oti_derive(1048576, 1283, 4, 1, 262144, &o), Status::kOk);
  CHECK(same_oti(o, make_oti(1048576, 1280, 1, 5, 4)));

  // F = 10^8, P' = 1024, Al = 4, SS = 8, WS = 1 MiB: T = 1024,
  // Kt = 97657, N_max = 32, KL(32) = max K' <= 2^20/32 = 32768 -> 32601,
  // Z = ceil(97657/32601) = 3, ceil(Kt/Z) = 32553; KL(31) = max K' <=
  // 2^20/36 = 29127 -> 28845 < 32553, so N = 32.
  CHECK_STATUS(oti_derive(100000000, 1024, 4, 8, 1048576, &o), Status::kOk);
  CHECK(same_oti(o, make_oti(100000000, 1024, 3, 32, 4)));
  ObjectLayout l;
  CHECK_STATUS(object_layout(o, &l), Status::kOk);
  CHECK(l.Kt == 97657);
  CHECK(l.blocks.IL == 32553 && l.blocks.IS == 32552);
  CHECK(l.blocks.JL == 1 && l.blocks.JS == 2);
  CHECK(l.subblocks.IL == 8 && l.subblocks.IS == 8);
  CHECK(l.subblocks.JL == 0 && l.subblocks.JS == 32);

  // A tiny object: one symbol.
  CHECK_STATUS(oti_derive(1, 1280, 4, 1, 1 << 20, &o), Status::kOk);
  CHECK(same_oti(o, make_oti(1, 1280, 1, 1, 4)));

  // Failures.
  CHECK_STATUS(oti_derive(0, 1280, 4, 1, 1 << 20, &o), Status::kOtiOutOfBounds);
  CHECK_STATUS(oti_derive(kMaxTransferLength + 1, 65532, 4, 1, 1ULL << 40, &o),
               Status::kTransferTooLong);
  CHECK_STATUS(oti_derive(1000, 1280, 0, 1, 1 << 20, &o),
               Status::kInvalidArgument);
  CHECK_STATUS(oti_derive(1000, 3, 4, 1, 1 << 20, &o),
               Status::kInvalidArgument);  // T would be 0
  CHECK_STATUS(oti_derive(1000, 70000, 4, 1, 1 << 20, &o),
               Status::kOtiOutOfBounds);  // T beyond 16 bits
  // SS*Al = 2048 > T: not even one sub-symbol of the wanted size.
  CHECK_STATUS(oti_derive(1000, 1280, 4, 512, 1 << 20, &o),
               Status::kSubSymbolTooSmall);
  // WS = 32 bytes: K' = 10 sub-symbols of 4 bytes do not fit.
  CHECK_STATUS(oti_derive(1000, 1280, 4, 1, 32, &o), Status::kInvalidArgument);
  // 1 GB in 16-byte symbols with WS = 64 KiB: KL(N_max) = max K' <= 16384
  // = 16331 -> Z = ceil(62500000/16331) > 256.
  CHECK_STATUS(oti_derive(1000000000, 16, 4, 1, 65536, &o),
               Status::kTooManySourceSymbols);
}

// ---------------------------------------------------------- partition --

void test_partition() {
  Partition p = rfc_partition(10, 3);  // 4 + 3 + 3
  CHECK(p.IL == 4 && p.IS == 3 && p.JL == 1 && p.JS == 2);
  p = rfc_partition(9, 3);  // 3 + 3 + 3
  CHECK(p.IL == 3 && p.IS == 3 && p.JL == 0 && p.JS == 3);
  p = rfc_partition(820, 1);
  CHECK(p.IL == 820 && p.IS == 820 && p.JL == 0 && p.JS == 1);
  p = rfc_partition(63, 4);  // 16 + 16 + 16 + 15
  CHECK(p.IL == 16 && p.IS == 15 && p.JL == 3 && p.JS == 1);
  p = rfc_partition(2, 5);  // degenerate: 1, 1, 0, 0, 0
  CHECK(p.IL == 1 && p.IS == 0 && p.JL == 2 && p.JS == 3);

  // F = 1000, T = 16, Al = 4, Z = 4, N = 3: Kt = 63,
  // blocks (16, 15, 3, 1), sub-blocks Partition[4, 3] = (2, 1, 1, 2).
  ObjectLayout l;
  CHECK_STATUS(object_layout(make_oti(1000, 16, 4, 3, 4), &l), Status::kOk);
  CHECK(l.Kt == 63);
  CHECK(l.blocks.IL == 16 && l.blocks.IS == 15);
  CHECK(l.blocks.JL == 3 && l.blocks.JS == 1);
  CHECK(l.subblocks.IL == 2 && l.subblocks.IS == 1);
  CHECK(l.subblocks.JL == 1 && l.subblocks.JS == 2);
  CHECK(l.source_symbols(0) == 16 && l.source_symbols(2) == 16);
  CHECK(l.source_symbols(3) == 15 && l.source_symbols(4) == 0);
  CHECK(l.block_offset(0) == 0 && l.block_offset(1) == 256);
  CHECK(l.block_offset(3) == 768);
  CHECK(l.block_length(0) == 256 && l.block_length(2) == 256);
  CHECK(l.block_length(3) == 232);  // 15*16 = 240, object ends at 1000
  CHECK(l.block_length(4) == 0);
  uint64_t total = 0;
  for (uint32_t b = 0; b < 4; ++b) total += l.block_length(b);
  CHECK(total == 1000);

  CHECK_STATUS(object_layout(make_oti(1000, 16, 4, 5, 4), &l),
               Status::kSubSymbolTooSmall);
}

// --------------------------------------------------------- interleave --

// Reference: where byte `b` of a block of K symbols goes in the
// symbol-major buffer, straight from the §4.4.1.2 wording.
uint64_t reference_position(const ObjectLayout& l, uint32_t K, uint64_t b) {
  const uint64_t Al = l.oti.Al;
  uint64_t start = 0, column = 0;
  for (uint32_t n = 0;; ++n) {
    const uint64_t t = (n < l.subblocks.JL ? l.subblocks.IL
                                            : l.subblocks.IS) * Al;
    if (b < start + K * t) {
      const uint64_t m = (b - start) / t;  // sub-symbol index = symbol
      return m * l.oti.T + column + (b - start) % t;
    }
    start += K * t;
    column += t;
  }
}

void test_interleave_by_hand() {
  // T = 3, Al = 1, N = 2: Partition[3, 2] = (2, 1, 1, 1). K = 2, block
  // "abcdef": sub-block 0 = "abcd" (2-byte sub-symbols "ab", "cd"),
  // sub-block 1 = "ef". Symbols: "ab"+"e", "cd"+"f".
  ObjectLayout l;
  CHECK_STATUS(object_layout(make_oti(6, 3, 1, 2, 1), &l), Status::kOk);
  const uint8_t block[] = {'a', 'b', 'c', 'd', 'e', 'f'};
  uint8_t sym[6];
  interleave_block(l, 2, block, 6, sym);
  CHECK(std::memcmp(sym, "abecdf", 6) == 0);
  // Only 5 real bytes: the last one is padding.
  interleave_block(l, 2, block, 5, sym);
  CHECK(std::memcmp(sym, "abecd\0", 6) == 0);
  uint8_t back[6] = {'x', 'x', 'x', 'x', 'x', 'x'};
  deinterleave_block(l, 2, sym, back, 5);
  CHECK(std::memcmp(back, "abcdex", 6) == 0);  // writes only block_len
}

void test_interleave_inverse() {
  std::mt19937 rng(7);
  struct Case {
    uint16_t T;
    uint8_t Al;
    uint16_t N;
    uint32_t K;
  };
  const Case cases[] = {
      {16, 4, 1, 5},   {16, 4, 2, 7},    {24, 4, 3, 11},  {28, 4, 7, 9},
      {13, 1, 7, 17},  {13, 1, 2, 1},    {99, 3, 3, 31},  {255, 1, 7, 13},
      {40, 2, 7, 3},   {1280, 4, 5, 20}, {7, 1, 7, 50},   {96, 4, 5, 53},
  };
  for (const Case& c : cases) {
    const uint64_t size = uint64_t(c.K) * c.T;
    ObjectLayout l;
    CHECK_STATUS(object_layout(make_oti(size, c.T, 1, c.N, c.Al), &l),
                 Status::kOk);
    std::vector<uint8_t> block(size);
    for (auto& x : block) x = static_cast<uint8_t>(rng() | 1);  // nonzero
    // Full blocks and blocks whose object ends early (odd lengths).
    const uint64_t lens[] = {size, size - 1, size - c.T + 1, size / 2 + 1};
    for (uint64_t len : lens) {
      if (len == 0 || len > size) continue;
      std::vector<uint8_t> sym(size, 0xAA);
      interleave_block(l, c.K, block.data(), len, sym.data());
      std::vector<uint8_t> want(size, 0);  // padding is zero
      for (uint64_t b = 0; b < len; ++b) {
        want[reference_position(l, c.K, b)] = block[b];
      }
      CHECK(sym == want);
      std::vector<uint8_t> back(size, 0x55);
      deinterleave_block(l, c.K, sym.data(), back.data(), len);
      CHECK(std::equal(back.begin(), back.begin() + len, block.begin()));
      CHECK(std::all_of(back.begin() + len, back.end(),
                        [](uint8_t x) { return x == 0x55; }));
    }
  }
}

// ------------------------------------------------------------- objects --

std::vector<uint8_t> random_bytes(std::mt19937& rng, uint64_t n) {
  std::vector<uint8_t> v(n);
  for (auto& x : v) x = static_cast<uint8_t>(rng());
  return v;
}

// Sends every block's packets in random interleaved order, dropping each
// with probability `loss`, ESIs counting up from first_esi(K); checks the
// decoder recovers the object with a bounded overhead.
void round_trip(const Oti& oti, double loss, uint32_t seed,
                bool repair_only, uint32_t esi_offset = 0) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> data = random_bytes(rng, oti.F);
  std::unique_ptr<ObjectEncoder> enc;
  CHECK_STATUS(ObjectEncoder::Create(data.data(), data.size(), oti, &enc),
               Status::kOk);
  std::unique_ptr<ObjectDecoder> dec;
  CHECK_STATUS(ObjectDecoder::Create(oti, &dec), Status::kOk);
  if (!enc || !dec) return;
  const ObjectLayout& l = enc->Layout();
  const uint32_t Z = l.oti.Z;
  const size_t plen = kPayloadIdSize + l.oti.T;

  std::vector<uint32_t> next_esi(Z), sent(Z, 0), done_count(Z, 0);
  for (uint32_t b = 0; b < Z; ++b) {
    next_esi[b] = esi_offset + (repair_only ? l.source_symbols(b) : 0);
  }
  std::uniform_real_distribution<double> coin(0, 1);
  std::vector<uint8_t> pkt(plen);
  uint32_t remaining = Z;
  uint64_t guard = 0;
  while (remaining > 0 && guard++ < 2000000) {
    const uint32_t b = rng() % Z;
    if (dec->BlockDecoded(b)) continue;
    const uint32_t K = l.source_symbols(b);
    if (sent[b] > 2 * K + 200) break;  // far beyond any sane overhead
    CHECK_STATUS(enc->Packet(b, next_esi[b]++, pkt.data()), Status::kOk);
    ++sent[b];
    if (coin(rng) < loss) continue;
    bool done = false;
    CHECK_STATUS(dec->AddPacket(pkt.data(), pkt.size(), &done), Status::kOk);
    if (done) {
      ++done_count[b];
      --remaining;
      CHECK(dec->BlockDecoded(b));
      CHECK(dec->Received(b) >= K);
    }
  }
  CHECK(remaining == 0);
  CHECK(dec->Complete());
  CHECK(dec->BlocksDecoded() == Z);
  for (uint32_t b = 0; b < Z; ++b) CHECK(done_count[b] == 1);

  // Packets for decoded blocks are ignored and never report done again.
  CHECK_STATUS(enc->Packet(0, 3, pkt.data()), Status::kOk);
  bool done = true;
  CHECK_STATUS(dec->AddPacket(pkt.data(), pkt.size(), &done), Status::kOk);
  CHECK(!done);

  std::vector<uint8_t> out(oti.F, 0);
  for (uint32_t b = 0; b < Z; ++b) {
    CHECK_STATUS(dec->CopyBlock(b, out.data() + l.block_offset(b)),
                 Status::kOk);
    dec->ReleaseBlock(b);
    CHECK(dec->BlockDecoded(b));  // stays decoded, bytes are gone
    CHECK_STATUS(dec->CopyBlock(b, out.data() + l.block_offset(b)),
                 Status::kInvalidArgument);
  }
  const bool same = out == data;
  CHECK(same);
  if (!same) {
    std::fprintf(stderr, "  round trip F=%llu T=%u Z=%u N=%u Al=%u seed=%u\n",
                 (unsigned long long)oti.F, oti.T, oti.Z, oti.N, oti.Al, seed);
  }
}

void test_object_round_trips() {
  // Z > 1 and N > 1, odd lengths, uneven blocks and sub-blocks.
  round_trip(make_oti(10007, 64, 3, 1, 4), 0.3, 1, false);
  round_trip(make_oti(20011, 96, 4, 5, 4), 0.3, 2, false);   // (5,4,4,1)
  round_trip(make_oti(5000, 28, 2, 7, 4), 0.25, 3, false);
  round_trip(make_oti(999, 13, 2, 2, 1), 0.3, 4, false);
  round_trip(make_oti(3000, 8, 20, 3, 1), 0.4, 5, false);
  round_trip(make_oti(1, 16, 1, 1, 1), 0.5, 6, false);       // K = 1
  round_trip(make_oti(65536, 256, 2, 16, 4), 0.1, 7, false);
  // Only repair symbols, and ESIs from a server's own range.
  round_trip(make_oti(20011, 96, 4, 5, 4), 0.2, 8, true);
  round_trip(make_oti(7777, 40, 3, 3, 2), 0.2, 9, false, 1u << 20);
  // Derived parameters: N = 5 sub-blocks (see test_oti_derive) on a
  // smaller object.
  Oti o;
  CHECK_STATUS(oti_derive(70001, 1280, 4, 1, 262144, &o), Status::kOk);
  CHECK(o.N == 1 && o.Z == 1);  // Kt = 55 fits KL(1) = 200
  CHECK_STATUS(oti_derive(70001, 1280, 4, 1, 16384, &o), Status::kOk);
  CHECK(o.N > 1);
  round_trip(o, 0.2, 10, false);
  // Full-size blocks: 1 MiB with the §4.3 parameters of test_oti_derive
  // (T = 1280, Z = 1, N = 5, K = 820), and a multi-block object with
  // hundreds of symbols per block.
  CHECK_STATUS(oti_derive(1048576, 1280, 4, 1, 262144, &o), Status::kOk);
  round_trip(o, 0.2, 11, false);
  round_trip(make_oti(300001, 256, 3, 4, 4), 0.15, 12, false);
}

void test_encoder_blocks_and_threads() {
  std::mt19937 rng(21);
  const Oti oti = make_oti(50000, 64, 8, 4, 4);
  std::vector<uint8_t> data = random_bytes(rng, oti.F);
  std::unique_ptr<ObjectEncoder> enc;
  CHECK_STATUS(ObjectEncoder::Create(data.data(), data.size(), oti, &enc),
               Status::kOk);
  if (!enc) return;
  const ObjectLayout& l = enc->Layout();
  // Prepare all blocks from several threads at once (distinct sbn, and
  // the same sbn twice), as the async API does.
  std::vector<Status> results(16, Status::kInvalidArgument);
  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] { results[i] = enc->PrepareBlock(i % 8); });
  }
  for (auto& t : threads) t.join();
  for (Status s : results) CHECK_STATUS(s, Status::kOk);

  // Source ESIs give the block's bytes back, sub-blocks interleaved.
  std::vector<uint8_t> pkt(kPayloadIdSize + l.oti.T);
  for (uint32_t b = 0; b < l.oti.Z; ++b) {
    const uint32_t K = l.source_symbols(b);
    std::vector<uint8_t> sym(uint64_t(K) * l.oti.T);
    for (uint32_t m = 0; m < K; ++m) {
      CHECK_STATUS(enc->Packet(b, m, pkt.data()), Status::kOk);
      uint8_t sbn;
      uint32_t esi;
      payload_id_decode(pkt.data(), &sbn, &esi);
      CHECK(sbn == b && esi == m);
      std::memcpy(sym.data() + uint64_t(m) * l.oti.T,
                  pkt.data() + kPayloadIdSize, l.oti.T);
    }
    std::vector<uint8_t> back(l.block_length(b));
    deinterleave_block(l, K, sym.data(), back.data(), back.size());
    CHECK(std::equal(back.begin(), back.end(),
                     data.begin() + l.block_offset(b)));
  }

  // A released block is prepared again on demand, with the same symbols.
  std::vector<uint8_t> before(pkt.size()), after(pkt.size());
  CHECK_STATUS(enc->Packet(5, 1000, before.data()), Status::kOk);
  enc->ReleaseBlock(5);
  CHECK_STATUS(enc->Packet(5, 1000, after.data()), Status::kOk);
  CHECK(before == after);

  // Packets from several threads while another releases blocks.
  std::vector<int> bad(4, 0);
  threads.clear();
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<uint8_t> p(kPayloadIdSize + l.oti.T);
      for (uint32_t i = 0; i < 300; ++i) {
        if (t == 3 && i % 10 == 0) enc->ReleaseBlock(i % 8);
        if (enc->Packet(i % 8, i, p.data()) != Status::kOk) ++bad[t];
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int b : bad) CHECK(b == 0);
}

void test_malformed() {
  const Oti oti = make_oti(3000, 32, 3, 2, 4);
  std::mt19937 rng(33);
  std::vector<uint8_t> data = random_bytes(rng, oti.F);
  std::unique_ptr<ObjectEncoder> enc;
  std::unique_ptr<ObjectDecoder> dec;
  // The data must be the object the OTI describes.
  CHECK_STATUS(ObjectEncoder::Create(data.data(), data.size() - 1, oti, &enc),
               Status::kInvalidArgument);
  CHECK_STATUS(ObjectEncoder::Create(nullptr, data.size(), oti, &enc),
               Status::kInvalidArgument);
  CHECK_STATUS(ObjectEncoder::Create(data.data(), data.size(),
                                     make_oti(3000, 30, 3, 2, 4), &enc),
               Status::kSymbolSizeNotAligned);
  CHECK_STATUS(ObjectDecoder::Create(make_oti(3000, 32, 0, 2, 4), &dec),
               Status::kOtiOutOfBounds);
  CHECK_STATUS(ObjectEncoder::Create(data.data(), data.size(), oti, &enc),
               Status::kOk);
  CHECK_STATUS(ObjectDecoder::Create(oti, &dec), Status::kOk);
  if (!enc || !dec) return;
  const size_t plen = kPayloadIdSize + oti.T;
  std::vector<uint8_t> pkt(plen + 8, 0);

  // Encoder side.
  CHECK_STATUS(enc->Packet(3, 0, pkt.data()), Status::kSbnOutOfRange);
  CHECK_STATUS(enc->Packet(255, 0, pkt.data()), Status::kSbnOutOfRange);
  CHECK_STATUS(enc->Packet(0, kMaxEsi + 1, pkt.data()),
               Status::kEsiOutOfRange);
  CHECK_STATUS(enc->Packet(0, kMaxEsi, pkt.data()), Status::kOk);
  CHECK_STATUS(enc->Packet(0, 0, nullptr), Status::kInvalidArgument);
  // An empty run is fine with no buffer at all (an empty JS Buffer);
  // its SBN and ESI are still checked.
  CHECK_STATUS(enc->Packets(0, 5, 0, nullptr, 0), Status::kOk);
  CHECK_STATUS(enc->Packets(3, 5, 0, nullptr, 0), Status::kSbnOutOfRange);
  CHECK_STATUS(enc->Packets(0, kMaxEsi + 1, 0, nullptr, 0),
               Status::kEsiOutOfRange);
  CHECK_STATUS(enc->Packets(0, kMaxEsi, 2, pkt.data(), plen),
               Status::kEsiOutOfRange);
  CHECK_STATUS(enc->Packets(0, 0, 1, pkt.data(), plen - 1),
               Status::kInvalidArgument);
  CHECK_STATUS(enc->PrepareBlock(3), Status::kSbnOutOfRange);
  enc->ReleaseBlock(200);  // out of range: no effect, no crash

  // Decoder side: lengths.
  CHECK_STATUS(enc->Packet(0, 0, pkt.data()), Status::kOk);
  bool done = true;
  const size_t bad_lengths[] = {0, 1, 3, 4, plen - 1, plen + 1, plen + 8};
  for (size_t len : bad_lengths) {
    CHECK_STATUS(dec->AddPacket(pkt.data(), len, &done),
                 Status::kBadPacketLength);
    CHECK(!done);
    uint32_t sbn = 77;
    CHECK_STATUS(dec->AddPacketNoDecode(pkt.data(), len, &sbn),
                 Status::kBadPacketLength);
  }
  CHECK_STATUS(dec->AddPacket(nullptr, plen, &done), Status::kInvalidArgument);
  // SBN >= Z.
  pkt[0] = 3;
  CHECK_STATUS(dec->AddPacket(pkt.data(), plen, &done), Status::kSbnOutOfRange);
  pkt[0] = 255;
  CHECK_STATUS(dec->AddPacket(pkt.data(), plen, &done), Status::kSbnOutOfRange);
  CHECK(dec->Received(0) == 0 && dec->BlocksDecoded() == 0);

  // Queries on blocks that are out of range or not decoded.
  std::vector<uint8_t> out(dec->Layout().block_length(0));
  CHECK_STATUS(dec->CopyBlock(0, out.data()), Status::kNeedMoreSymbols);
  CHECK_STATUS(dec->CopyBlock(3, out.data()), Status::kSbnOutOfRange);
  CHECK_STATUS(dec->TryDecodeBlock(0), Status::kNeedMoreSymbols);
  CHECK_STATUS(dec->TryDecodeBlock(9), Status::kSbnOutOfRange);
  CHECK(!dec->BlockDecoded(9) && dec->Received(9) == 0);
  dec->ReleaseBlock(9);

  // Random garbage of every length up to 2*plen never crashes and is
  // refused unless it is exactly a packet for a block that exists.
  for (int i = 0; i < 20000; ++i) {
    const size_t len = rng() % (2 * plen + 1);
    std::vector<uint8_t> g(len + 1);
    for (auto& x : g) x = static_cast<uint8_t>(rng());
    if (len > 0 && i % 2) g[0] %= 4;  // SBN in or just past range
    Status s = dec->AddPacket(g.data(), len, &done);
    if (len != plen) {
      CHECK_STATUS(s, Status::kBadPacketLength);
    } else if (g[0] >= oti.Z) {
      CHECK_STATUS(s, Status::kSbnOutOfRange);
    } else {
      CHECK_STATUS(s, Status::kOk);
    }
  }
}

// The async path: add without decoding, then decode explicitly.
void test_no_decode_path() {
  const Oti oti = make_oti(4321, 48, 2, 3, 4);
  std::mt19937 rng(44);
  std::vector<uint8_t> data = random_bytes(rng, oti.F);
  std::unique_ptr<ObjectEncoder> enc;
  std::unique_ptr<ObjectDecoder> dec;
  CHECK_STATUS(ObjectEncoder::Create(data.data(), data.size(), oti, &enc),
               Status::kOk);
  CHECK_STATUS(ObjectDecoder::Create(oti, &dec), Status::kOk);
  if (!enc || !dec) return;
  const ObjectLayout& l = dec->Layout();
  std::vector<uint8_t> pkt(kPayloadIdSize + oti.T);
  for (uint32_t b = 0; b < oti.Z; ++b) {
    const uint32_t K = l.source_symbols(b);
    // Repair symbols only, K + 4 of them, in reverse order.
    for (uint32_t i = 0; i < K + 4; ++i) {
      CHECK_STATUS(enc->Packet(b, 2 * K + 4 - i, pkt.data()), Status::kOk);
      uint32_t sbn = 99;
      CHECK_STATUS(dec->AddPacketNoDecode(pkt.data(), pkt.size(), &sbn),
                   Status::kOk);
      CHECK(sbn == b);
      if (i + 1 < K) {
        CHECK_STATUS(dec->TryDecodeBlock(b), Status::kNeedMoreSymbols);
      }
    }
    // Duplicates do not count.
    CHECK_STATUS(dec->AddPacketNoDecode(pkt.data(), pkt.size(), nullptr),
                 Status::kOk);
    CHECK(dec->Received(b) == K + 4);
    CHECK(!dec->BlockDecoded(b));
    CHECK_STATUS(dec->TryDecodeBlock(b), Status::kOk);
    CHECK(dec->BlockDecoded(b));
    CHECK_STATUS(dec->TryDecodeBlock(b), Status::kOk);  // idempotent
  }
  CHECK(dec->Complete());
  std::vector<uint8_t> out(oti.F);
  for (uint32_t b = 0; b < oti.Z; ++b) {
    CHECK_STATUS(dec->CopyBlock(b, out.data() + l.block_offset(b)),
                 Status::kOk);
  }
  CHECK(out == data);
}

// ------------------------------------------------- file-backed encoder --

// The packets of a file-backed encoder equal those of a memory-backed one
// for every source ESI and a run of repair ESIs of every block, with the
// memory of each block accounted for as it is prepared and released.
void file_matches_memory(const Oti& oti, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> data = random_bytes(rng, oti.F);
  TempFile file(data);
  std::unique_ptr<ObjectEncoder> mem, disk;
  CHECK_STATUS(ObjectEncoder::Create(data.data(), data.size(), oti, &mem),
               Status::kOk);
  CHECK_STATUS(ObjectEncoder::CreateFromFile(file.fd, oti, &disk),
               Status::kOk);
  if (!mem || !disk) return;
  const ObjectLayout& l = disk->Layout();
  const size_t plen = kPayloadIdSize + l.oti.T;
  // The last block is the zero-padded tail in every case used here.
  CHECK(l.block_length(l.oti.Z - 1) <
        uint64_t(l.source_symbols(l.oti.Z - 1)) * l.oti.T);
  std::vector<uint8_t> a(plen), b(plen);
  int mismatches = 0;
  for (uint32_t sbn = 0; sbn < l.oti.Z; ++sbn) {
    const uint32_t K = l.source_symbols(sbn);
    // The L + 1 work slots: the source copy is dropped after the solve.
    SystematicParams p;
    CHECK(systematic_params(K, &p));
    const uint64_t want = (uint64_t(p.L) + 1) * l.oti.T;
    CHECK(!disk->Prepared(sbn));
    const uint64_t predicted = disk->BlockMemory(sbn);
    CHECK(predicted == want);
    CHECK_STATUS(disk->PrepareBlock(sbn), Status::kOk);
    CHECK(disk->Prepared(sbn));
    CHECK(disk->BlockMemory(sbn) == predicted);  // the estimate is exact
    // A memory-backed block holds the same: its work buffer (it reads the
    // caller's bytes in place, or drops its copy of the padded tail).
    const uint64_t mem_predicted = mem->BlockMemory(sbn);
    CHECK_STATUS(mem->PrepareBlock(sbn), Status::kOk);
    CHECK(mem->BlockMemory(sbn) == mem_predicted);
    CHECK(mem_predicted == predicted);
    for (uint32_t esi = 0; esi < K + 40; ++esi) {
      CHECK_STATUS(mem->Packet(sbn, esi, a.data()), Status::kOk);
      CHECK_STATUS(disk->Packet(sbn, esi, b.data()), Status::kOk);
      if (a != b) ++mismatches;
    }
    // A high repair ESI too.
    CHECK_STATUS(mem->Packet(sbn, kMaxEsi, a.data()), Status::kOk);
    CHECK_STATUS(disk->Packet(sbn, kMaxEsi, b.data()), Status::kOk);
    if (a != b) ++mismatches;
    disk->ReleaseBlock(sbn);
    CHECK(!disk->Prepared(sbn));
    CHECK(disk->BlockMemory(sbn) == predicted);
  }
  CHECK(mismatches == 0);
  // Packets prepares on demand and honours the stride: a 7-byte gap per
  // packet, left as the caller wrote it.
  const uint32_t sbn = l.oti.Z - 1, count = l.source_symbols(sbn) + 3;
  const size_t stride = plen + 7;
  std::vector<uint8_t> run(size_t(count) * stride, 0xA5);
  CHECK(!disk->Prepared(sbn));
  CHECK_STATUS(disk->Packets(sbn, 0, count, run.data() + 7, stride),
               Status::kOk);
  CHECK(disk->Prepared(sbn));
  for (uint32_t i = 0; i < count; ++i) {
    CHECK_STATUS(mem->Packet(sbn, i, a.data()), Status::kOk);
    const uint8_t* p = run.data() + size_t(i) * stride;
    CHECK(std::equal(a.begin(), a.end(), p + 7));
    CHECK(std::all_of(p, p + 7, [](uint8_t x) { return x == 0xA5; }));
  }
}

void test_file_encoder() {
  // N = 1, several blocks, last one padded.
  file_matches_memory(make_oti(10007, 64, 3, 1, 4), 51);
  // N > 1 with uneven sub-blocks, Z > 1.
  file_matches_memory(make_oti(20011, 96, 4, 5, 4), 52);
  file_matches_memory(make_oti(999, 13, 2, 2, 1), 53);
  // One block, K = 1.
  file_matches_memory(make_oti(5, 16, 1, 1, 1), 54);
  // Derived parameters with N > 1 on a larger block.
  Oti o;
  CHECK_STATUS(oti_derive(300001, 1280, 4, 1, 65536, &o), Status::kOk);
  CHECK(o.N > 1);
  file_matches_memory(o, 55);
}

// PrepareIsReplay: true once the block's K' plan is cached (the binding
// then prepares small blocks inline). Runs first, on a K' no other test
// here uses, so the cache starts without it.
void test_prepare_is_replay() {
  const uint32_t K = 4243, T = 16;
  SystematicParams p;
  CHECK(systematic_params(K, &p));
  CHECK(!encoding_plan_cached(p));
  std::vector<uint8_t> data(size_t(K) * T, 7);
  std::unique_ptr<ObjectEncoder> enc;
  CHECK_STATUS(ObjectEncoder::Create(data.data(), data.size(),
                                     make_oti(data.size(), T, 1, 1, 4), &enc),
               Status::kOk);
  CHECK(!enc->PrepareIsReplay(0));
  CHECK(!enc->PrepareIsReplay(1));  // sbn >= Z
  CHECK_STATUS(enc->PrepareBlock(0), Status::kOk);
  CHECK(encoding_plan_cached(p));
  CHECK(enc->PrepareIsReplay(0));
  CHECK(!enc->PrepareIsReplay(1));
  // Another K' is still not cached.
  SystematicParams q;
  CHECK(systematic_params(p.K_prime + 1, &q));
  CHECK(!encoding_plan_cached(q));
}

void test_file_encoder_errors() {
  const Oti oti = make_oti(5000, 32, 3, 2, 4);
  std::mt19937 rng(61);
  std::vector<uint8_t> data = random_bytes(rng, oti.F);
  std::unique_ptr<ObjectEncoder> enc;
  CHECK_STATUS(ObjectEncoder::CreateFromFile(-1, oti, &enc),
               Status::kInvalidArgument);
  CHECK_STATUS(ObjectEncoder::CreateFromFile(0, oti, nullptr),
               Status::kInvalidArgument);
  {
    // Shorter than F from the start; a bad OTI is named first.
    std::vector<uint8_t> short_data(data.begin(), data.end() - 1);
    TempFile f(short_data);
    CHECK_STATUS(ObjectEncoder::CreateFromFile(f.fd, oti, &enc),
                 Status::kSourceTruncated);
    CHECK_STATUS(
        ObjectEncoder::CreateFromFile(f.fd, make_oti(5000, 30, 3, 2, 4), &enc),
        Status::kSymbolSizeNotAligned);
  }
  {
    // A longer file: the object is its first F bytes.
    std::vector<uint8_t> longer(data);
    longer.resize(data.size() + 100, 0x77);
    TempFile f(longer);
    std::unique_ptr<ObjectEncoder> mem;
    CHECK_STATUS(ObjectEncoder::Create(data.data(), data.size(), oti, &mem),
                 Status::kOk);
    CHECK_STATUS(ObjectEncoder::CreateFromFile(f.fd, oti, &enc), Status::kOk);
    if (enc && mem) {
      const uint32_t last = oti.Z - 1;
      std::vector<uint8_t> a(kPayloadIdSize + oti.T), b(a.size());
      for (uint32_t esi = 0; esi < mem->Layout().source_symbols(last) + 5;
           ++esi) {
        CHECK_STATUS(mem->Packet(last, esi, a.data()), Status::kOk);
        CHECK_STATUS(enc->Packet(last, esi, b.data()), Status::kOk);
        CHECK(a == b);
      }
    }
  }
  {
    // Truncated after the encoder was created: blocks that still lie in
    // the file work, the others fail with kSourceTruncated, repeatedly,
    // and are never marked prepared.
    TempFile f(data);
    CHECK_STATUS(ObjectEncoder::CreateFromFile(f.fd, oti, &enc), Status::kOk);
    if (!enc) return;
    const ObjectLayout& l = enc->Layout();
    CHECK(ftruncate(f.fd, static_cast<off_t>(l.block_offset(1) + 10)) == 0);
    std::vector<uint8_t> pkt(kPayloadIdSize + oti.T);
    CHECK_STATUS(enc->Packet(0, 0, pkt.data()), Status::kOk);
    for (uint32_t sbn = 1; sbn < oti.Z; ++sbn) {
      CHECK_STATUS(enc->PrepareBlock(sbn), Status::kSourceTruncated);
      CHECK_STATUS(enc->Packet(sbn, 0, pkt.data()), Status::kSourceTruncated);
      CHECK_STATUS(enc->Packets(sbn, 0, 4, pkt.data(), pkt.size()),
                   Status::kSourceTruncated);
      CHECK(!enc->Prepared(sbn));
    }
    CHECK(enc->LastIoErrno() == 0);
  }
  {
    // A descriptor that cannot be read: kIoError, errno kept.
    TempFile f(data);
    int wfd = open(f.path.c_str(), O_WRONLY);
    CHECK(wfd >= 0);
    CHECK_STATUS(ObjectEncoder::CreateFromFile(wfd, oti, &enc), Status::kOk);
    if (enc) {
      CHECK_STATUS(enc->PrepareBlock(0), Status::kIoError);
      CHECK(enc->LastIoErrno() == EBADF);
      CHECK(!enc->Prepared(0));
    }
    close(wfd);
    // fstat of a closed descriptor.
    CHECK_STATUS(ObjectEncoder::CreateFromFile(wfd, oti, &enc),
                 Status::kIoError);
  }
}

}  // namespace

int main() {
  test_prepare_is_replay();
  test_status_texts();
  test_oti_wire_layout();
  test_oti_round_trips();
  test_oti_z_256();
  test_oti_bounds();
  test_oti_derive();
  test_partition();
  test_interleave_by_hand();
  test_interleave_inverse();
  test_object_round_trips();
  test_encoder_blocks_and_threads();
  test_malformed();
  test_no_decode_path();
  test_file_encoder();
  test_file_encoder_errors();
  if (g_failures) {
    std::fprintf(stderr, "object_test: %d of %d checks failed\n",
                 g_failures.load(), g_checks.load());
    return 1;
  }
  std::printf("object_test: %d checks passed\n", g_checks.load());
  return 0;
}

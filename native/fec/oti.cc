// Object Transmission Information (RFC 6330 §3.3.2, §3.3.3) and the
// example parameter derivation of §4.3.
//
// Wire layout, 12 bytes, network byte order:
//   [0..5)   F, transfer length (40 bits)
//   [5]      reserved: sent as 0, ignored on receipt (§3.3.2)
//   [6..8)   T, symbol size (16 bits)
//   [8]      Z, number of source blocks (8 bits)
//   [9..11)  N, number of sub-blocks (16 bits)
//   [11]     Al, symbol alignment (8 bits)
//
// Z = 256 and the 8-bit field: §3.3.3 gives Z 8 bits, yet the SBN is 8 bits
// (so blocks 0..255 exist) and the largest transfer length the RFC allows,
// 946270874880, is exactly 56403 * 256 * 65535: K'max symbols of the largest
// T in each of 256 blocks. Z = 256 must therefore be expressible, and the
// only free value of the 8-bit field is 0 (Z = 0 means no block, which no
// valid object has). So Z = 256 is sent as 0 and a received 0 reads as 256.
// Senders that never need 256 blocks (Z <= 255) are unaffected.
#include <algorithm>
#include <vector>

#include "fec/codec.h"

namespace rqcast {
namespace fec {
namespace {

constexpr uint32_t kMaxSourceBlocks = 256;  // 8-bit SBN (§3.2)
constexpr uint32_t kMaxSymbolSize = 65535;  // 16-bit T (§3.3.2)

uint64_t ceil_div(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

// The K' column of Table 2 (§5.6), ascending, built once from
// systematic_params so that the table lives in exactly one place.
const std::vector<uint32_t>& table2_k_primes() {
  static const std::vector<uint32_t> k_primes = [] {
    std::vector<uint32_t> v;
    SystematicParams p;
    uint32_t k = 1;
    while (k <= kMaxKPrime && systematic_params(k, &p)) {
      v.push_back(p.K_prime);
      k = p.K_prime + 1;
    }
    return v;
  }();
  return k_primes;
}

// Largest K' of Table 2 with K' <= x; 0 if there is none (x < 10).
uint32_t max_k_prime_at_most(uint64_t x) {
  const std::vector<uint32_t>& ks = table2_k_primes();
  auto it = std::upper_bound(ks.begin(), ks.end(),
                             static_cast<uint32_t>(std::min<uint64_t>(
                                 x, kMaxKPrime)));
  return it == ks.begin() ? 0 : *(it - 1);
}

}  // namespace

Status oti_validate(const Oti& oti) {
  if (oti.F == 0) return Status::kOtiOutOfBounds;
  if (oti.F > kMaxTransferLength) return Status::kTransferTooLong;
  if (oti.Al == 0) return Status::kOtiOutOfBounds;
  if (oti.T == 0) return Status::kOtiOutOfBounds;
  if (oti.T % oti.Al != 0) return Status::kSymbolSizeNotAligned;
  if (oti.Z == 0 || oti.Z > kMaxSourceBlocks) return Status::kOtiOutOfBounds;
  if (oti.N == 0) return Status::kOtiOutOfBounds;
  // §4.4.1.2: Partition[T/Al, N] gives every sub-symbol TS*Al bytes with
  // TS = floor(T/(Al*N)); TS = 0 would be an empty sub-symbol.
  if (oti.N > oti.T / oti.Al) return Status::kSubSymbolTooSmall;
  const uint64_t Kt = ceil_div(oti.F, oti.T);
  // Partition[Kt, Z] with Z > Kt would give blocks of 0 symbols.
  if (oti.Z > Kt) return Status::kOtiOutOfBounds;
  // The larger blocks hold KL = ceil(Kt/Z) symbols; Table 2 ends at 56403.
  // (systematic_params(K) fails exactly when K > kMaxKPrime.)
  if (ceil_div(Kt, oti.Z) > kMaxKPrime) return Status::kTooManySourceSymbols;
  return Status::kOk;
}

void oti_encode(const Oti& oti, uint8_t out[kOtiSize]) {
  out[0] = static_cast<uint8_t>(oti.F >> 32);
  out[1] = static_cast<uint8_t>(oti.F >> 24);
  out[2] = static_cast<uint8_t>(oti.F >> 16);
  out[3] = static_cast<uint8_t>(oti.F >> 8);
  out[4] = static_cast<uint8_t>(oti.F);
  out[5] = 0;  // reserved
  out[6] = static_cast<uint8_t>(oti.T >> 8);
  out[7] = static_cast<uint8_t>(oti.T);
  out[8] = static_cast<uint8_t>(oti.Z);  // 256 -> 0, see the file comment
  out[9] = static_cast<uint8_t>(oti.N >> 8);
  out[10] = static_cast<uint8_t>(oti.N);
  out[11] = oti.Al;
}

Status oti_decode(const uint8_t* in, size_t len, Oti* out) {
  if (in == nullptr || out == nullptr || len != kOtiSize) {
    return Status::kInvalidArgument;
  }
  Oti o;
  o.F = (uint64_t(in[0]) << 32) | (uint64_t(in[1]) << 24) |
        (uint64_t(in[2]) << 16) | (uint64_t(in[3]) << 8) | uint64_t(in[4]);
  // in[5] is reserved: ignored on receipt (§3.3.2).
  o.T = static_cast<uint16_t>((in[6] << 8) | in[7]);
  o.Z = in[8] == 0 ? kMaxSourceBlocks : in[8];
  o.N = static_cast<uint16_t>((in[9] << 8) | in[10]);
  o.Al = in[11];
  Status s = oti_validate(o);
  if (s != Status::kOk) return s;
  *out = o;
  return Status::kOk;
}

// §4.3, with P' = payload_size. The RFC assumes P' is a multiple of Al and
// sets T = P'; here T is P' rounded down to a multiple of Al so that any
// payload budget can be passed. A T beyond the 16-bit field is refused
// rather than silently shrunk.
Status oti_derive(uint64_t F, uint32_t payload_size, uint8_t Al, uint32_t SS,
                  uint64_t WS, Oti* out) {
  if (out == nullptr || Al == 0 || SS == 0 || WS == 0) {
    return Status::kInvalidArgument;
  }
  if (F == 0) return Status::kOtiOutOfBounds;
  if (F > kMaxTransferLength) return Status::kTransferTooLong;
  const uint64_t T = payload_size / Al * uint64_t(Al);
  if (T == 0) return Status::kInvalidArgument;
  if (T > kMaxSymbolSize) return Status::kOtiOutOfBounds;

  const uint64_t Kt = ceil_div(F, T);
  const uint64_t N_max = T / (uint64_t(SS) * Al);
  if (N_max == 0) return Status::kSubSymbolTooSmall;

  // KL(n): the largest K' whose sub-block, K' sub-symbols of the largest
  // sub-symbol size ceil(T/(Al*n))*Al, fits in WS bytes.
  auto KL = [&](uint64_t n) {
    return max_k_prime_at_most(WS / (Al * ceil_div(T, Al * n)));
  };
  const uint32_t KL_max = KL(N_max);
  // Even the smallest K' (10) of the thinnest sub-symbols exceeds WS.
  if (KL_max == 0) return Status::kInvalidArgument;
  const uint64_t Z = ceil_div(Kt, KL_max);
  if (Z > kMaxSourceBlocks) return Status::kTooManySourceSymbols;

  // KL(n) does not decrease with n and KL(N_max) >= ceil(Kt/Z), so the
  // minimum exists.
  const uint64_t K_block = ceil_div(Kt, Z);
  uint64_t N = N_max;
  for (uint64_t n = 1; n <= N_max; ++n) {
    if (K_block <= KL(n)) {
      N = n;
      break;
    }
  }

  Oti o;
  o.F = F;
  o.T = static_cast<uint16_t>(T);
  o.Z = static_cast<uint16_t>(Z);
  o.N = static_cast<uint16_t>(N);
  o.Al = Al;
  Status s = oti_validate(o);
  if (s != Status::kOk) return s;
  *out = o;
  return Status::kOk;
}

}  // namespace fec
}  // namespace rqcast

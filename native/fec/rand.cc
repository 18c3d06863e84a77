// RFC 6330 §5.3.5.1 Rand, §5.3.5.2 Deg and §5.3.5.4 Tuple.
#include "fec/codec.h"
#include "fec/tables.h"

namespace rqcast {
namespace fec {

uint32_t rfc_rand(uint32_t y, uint8_t i, uint32_t m) {
  // Rand[y, i, m] = (V0[(y + i) % 2^8] ^ V1[(y/2^8 + i) % 2^8]
  //                 ^ V2[(y/2^16 + i) % 2^8] ^ V3[(y/2^24 + i) % 2^8]) % m
  const uint32_t x0 = (y + i) & 0xFF;
  const uint32_t x1 = ((y >> 8) + i) & 0xFF;
  const uint32_t x2 = ((y >> 16) + i) & 0xFF;
  const uint32_t x3 = ((y >> 24) + i) & 0xFF;
  const uint32_t v = tables::kV0[x0] ^ tables::kV1[x1] ^ tables::kV2[x2] ^
                     tables::kV3[x3];
  return m == 0 ? v : v % m;  // m == 0 never occurs in the RFC's uses
}

uint32_t rfc_deg(uint32_t v, uint32_t W) {
  // Smallest d with f[d-1] <= v < f[d], then min(d, W - 2). v < 2^20.
  uint32_t d = 1;
  while (d < 30 && v >= tables::kDegF[d]) ++d;
  const uint32_t cap = W >= 2 ? W - 2 : 0;
  return d < cap ? d : cap;
}

Tuple rfc_tuple(const SystematicParams& p, uint32_t X) {
  // §5.3.5.4; every product and sum is taken modulo 2^32.
  uint32_t A = 53591u + p.J * 997u;
  if (A % 2 == 0) A += 1;
  const uint32_t B = 10267u * (p.J + 1u);
  const uint32_t y = B + X * A;
  const uint32_t v = rfc_rand(y, 0, 1u << 20);
  Tuple t;
  t.d = rfc_deg(v, p.W);
  t.a = 1 + rfc_rand(y, 1, p.W - 1);
  t.b = rfc_rand(y, 2, p.W);
  t.d1 = t.d < 4 ? 2 + rfc_rand(X, 3, 2) : 2;
  t.a1 = 1 + rfc_rand(X, 4, p.P1 - 1);
  t.b1 = rfc_rand(X, 5, p.P1);
  return t;
}

}  // namespace fec
}  // namespace rqcast

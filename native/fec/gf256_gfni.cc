// GFNI kernels. Multiplication by a constant c is GF(2)-linear on the bits
// of an octet, so it is an 8x8 bit matrix and one GF2P8AFFINEQB per vector
// computes it (matrices in gf256_simd.h). GF2P8MULB would be shorter but
// reduces by the AES polynomial 0x11B, not RFC 6330's 0x11D.
#include "fec/gf256_simd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <cstring>

#define RQCAST_TARGET_256 __attribute__((target("gfni,avx2")))
#define RQCAST_TARGET_512 __attribute__((target("gfni,avx512f,avx512bw")))

namespace rqcast {
namespace fec {
namespace gf256 {
namespace kernels {
namespace {

RQCAST_TARGET_256 inline __m256i mul32(__m256i matrix, __m256i x) {
  return _mm256_gf2p8affine_epi64_epi8(x, matrix, 0);
}
RQCAST_TARGET_256 inline __m256i load32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
RQCAST_TARGET_256 inline void store32(uint8_t* p, __m256i v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
}

RQCAST_TARGET_512 inline __m512i mul64(__m512i matrix, __m512i x) {
  return _mm512_gf2p8affine_epi64_epi8(x, matrix, 0);
}
RQCAST_TARGET_512 inline __m512i load64(const uint8_t* p) {
  return _mm512_loadu_si512(p);
}
RQCAST_TARGET_512 inline void store64(uint8_t* p, __m512i v) {
  _mm512_storeu_si512(p, v);
}
inline __mmask64 head_mask(size_t r) {  // the first r < 64 bytes
  return static_cast<__mmask64>((uint64_t{1} << r) - 1);
}

}  // namespace

RQCAST_TARGET_256 void gfni_avx2_addmul(uint8_t* dst, const uint8_t* src,
                                        uint8_t c, size_t n) {
  const __m256i a =
      _mm256_set1_epi64x(static_cast<long long>(kSimdTables.affine[c]));
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    const __m256i r0 = _mm256_xor_si256(load32(dst + i), mul32(a, load32(src + i)));
    const __m256i r1 =
        _mm256_xor_si256(load32(dst + i + 32), mul32(a, load32(src + i + 32)));
    const __m256i r2 =
        _mm256_xor_si256(load32(dst + i + 64), mul32(a, load32(src + i + 64)));
    const __m256i r3 =
        _mm256_xor_si256(load32(dst + i + 96), mul32(a, load32(src + i + 96)));
    store32(dst + i, r0);
    store32(dst + i + 32, r1);
    store32(dst + i + 64, r2);
    store32(dst + i + 96, r3);
  }
  for (; i + 32 <= n; i += 32) {
    store32(dst + i,
            _mm256_xor_si256(load32(dst + i), mul32(a, load32(src + i))));
  }
  if (i < n) {  // via a zero-padded copy on the stack
    uint8_t d[32] = {}, s[32] = {};
    std::memcpy(d, dst + i, n - i);
    std::memcpy(s, src + i, n - i);
    store32(d, _mm256_xor_si256(load32(d), mul32(a, load32(s))));
    std::memcpy(dst + i, d, n - i);
  }
}

RQCAST_TARGET_256 void gfni_avx2_scale(uint8_t* dst, uint8_t c, size_t n) {
  const __m256i a =
      _mm256_set1_epi64x(static_cast<long long>(kSimdTables.affine[c]));
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    const __m256i r0 = mul32(a, load32(dst + i));
    const __m256i r1 = mul32(a, load32(dst + i + 32));
    const __m256i r2 = mul32(a, load32(dst + i + 64));
    const __m256i r3 = mul32(a, load32(dst + i + 96));
    store32(dst + i, r0);
    store32(dst + i + 32, r1);
    store32(dst + i + 64, r2);
    store32(dst + i + 96, r3);
  }
  for (; i + 32 <= n; i += 32) store32(dst + i, mul32(a, load32(dst + i)));
  if (i < n) {
    uint8_t d[32] = {};
    std::memcpy(d, dst + i, n - i);
    store32(d, mul32(a, load32(d)));
    std::memcpy(dst + i, d, n - i);
  }
}

RQCAST_TARGET_512 void gfni_avx512_addmul(uint8_t* dst, const uint8_t* src,
                                          uint8_t c, size_t n) {
  const __m512i a =
      _mm512_set1_epi64(static_cast<long long>(kSimdTables.affine[c]));
  size_t i = 0;
  for (; i + 256 <= n; i += 256) {
    const __m512i r0 = _mm512_xor_si512(load64(dst + i), mul64(a, load64(src + i)));
    const __m512i r1 =
        _mm512_xor_si512(load64(dst + i + 64), mul64(a, load64(src + i + 64)));
    const __m512i r2 = _mm512_xor_si512(load64(dst + i + 128),
                                        mul64(a, load64(src + i + 128)));
    const __m512i r3 = _mm512_xor_si512(load64(dst + i + 192),
                                        mul64(a, load64(src + i + 192)));
    store64(dst + i, r0);
    store64(dst + i + 64, r1);
    store64(dst + i + 128, r2);
    store64(dst + i + 192, r3);
  }
  for (; i + 64 <= n; i += 64) {
    store64(dst + i,
            _mm512_xor_si512(load64(dst + i), mul64(a, load64(src + i))));
  }
  if (i < n) {
    const __mmask64 k = head_mask(n - i);
    const __m512i d = _mm512_maskz_loadu_epi8(k, dst + i);
    const __m512i s = _mm512_maskz_loadu_epi8(k, src + i);
    _mm512_mask_storeu_epi8(dst + i, k, _mm512_xor_si512(d, mul64(a, s)));
  }
}

RQCAST_TARGET_512 void gfni_avx512_scale(uint8_t* dst, uint8_t c, size_t n) {
  const __m512i a =
      _mm512_set1_epi64(static_cast<long long>(kSimdTables.affine[c]));
  size_t i = 0;
  for (; i + 256 <= n; i += 256) {
    const __m512i r0 = mul64(a, load64(dst + i));
    const __m512i r1 = mul64(a, load64(dst + i + 64));
    const __m512i r2 = mul64(a, load64(dst + i + 128));
    const __m512i r3 = mul64(a, load64(dst + i + 192));
    store64(dst + i, r0);
    store64(dst + i + 64, r1);
    store64(dst + i + 128, r2);
    store64(dst + i + 192, r3);
  }
  for (; i + 64 <= n; i += 64) store64(dst + i, mul64(a, load64(dst + i)));
  if (i < n) {
    const __mmask64 k = head_mask(n - i);
    const __m512i d = _mm512_maskz_loadu_epi8(k, dst + i);
    _mm512_mask_storeu_epi8(dst + i, k, mul64(a, d));
  }
}

// One pass over dst: 128 (256) bytes of it stay in registers while every
// source is multiplied into them.
RQCAST_TARGET_256 void gfni_avx2_addmul_multi(uint8_t* dst,
                                              const uint8_t* const* srcs,
                                              const uint8_t* coeffs,
                                              size_t count, size_t n) {
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    __m256i a0 = load32(dst + i), a1 = load32(dst + i + 32);
    __m256i a2 = load32(dst + i + 64), a3 = load32(dst + i + 96);
    for (size_t j = 0; j < count; ++j) {
      const __m256i m = _mm256_set1_epi64x(
          static_cast<long long>(kSimdTables.affine[coeffs[j]]));
      const uint8_t* s = srcs[j] + i;
      a0 = _mm256_xor_si256(a0, mul32(m, load32(s)));
      a1 = _mm256_xor_si256(a1, mul32(m, load32(s + 32)));
      a2 = _mm256_xor_si256(a2, mul32(m, load32(s + 64)));
      a3 = _mm256_xor_si256(a3, mul32(m, load32(s + 96)));
    }
    store32(dst + i, a0);
    store32(dst + i + 32, a1);
    store32(dst + i + 64, a2);
    store32(dst + i + 96, a3);
  }
  for (; i + 32 <= n; i += 32) {
    __m256i a = load32(dst + i);
    for (size_t j = 0; j < count; ++j) {
      const __m256i m = _mm256_set1_epi64x(
          static_cast<long long>(kSimdTables.affine[coeffs[j]]));
      a = _mm256_xor_si256(a, mul32(m, load32(srcs[j] + i)));
    }
    store32(dst + i, a);
  }
  if (i < n) {  // via zero-padded copies on the stack
    uint8_t d[32] = {}, s[32] = {};
    std::memcpy(d, dst + i, n - i);
    __m256i a = load32(d);
    for (size_t j = 0; j < count; ++j) {
      const __m256i m = _mm256_set1_epi64x(
          static_cast<long long>(kSimdTables.affine[coeffs[j]]));
      std::memcpy(s, srcs[j] + i, n - i);
      a = _mm256_xor_si256(a, mul32(m, load32(s)));
    }
    store32(d, a);
    std::memcpy(dst + i, d, n - i);
  }
}

RQCAST_TARGET_512 void gfni_avx512_addmul_multi(uint8_t* dst,
                                                const uint8_t* const* srcs,
                                                const uint8_t* coeffs,
                                                size_t count, size_t n) {
  size_t i = 0;
  for (; i + 256 <= n; i += 256) {
    __m512i a0 = load64(dst + i), a1 = load64(dst + i + 64);
    __m512i a2 = load64(dst + i + 128), a3 = load64(dst + i + 192);
    for (size_t j = 0; j < count; ++j) {
      const __m512i m = _mm512_set1_epi64(
          static_cast<long long>(kSimdTables.affine[coeffs[j]]));
      const uint8_t* s = srcs[j] + i;
      a0 = _mm512_xor_si512(a0, mul64(m, load64(s)));
      a1 = _mm512_xor_si512(a1, mul64(m, load64(s + 64)));
      a2 = _mm512_xor_si512(a2, mul64(m, load64(s + 128)));
      a3 = _mm512_xor_si512(a3, mul64(m, load64(s + 192)));
    }
    store64(dst + i, a0);
    store64(dst + i + 64, a1);
    store64(dst + i + 128, a2);
    store64(dst + i + 192, a3);
  }
  for (; i + 64 <= n; i += 64) {
    __m512i a = load64(dst + i);
    for (size_t j = 0; j < count; ++j) {
      const __m512i m = _mm512_set1_epi64(
          static_cast<long long>(kSimdTables.affine[coeffs[j]]));
      a = _mm512_xor_si512(a, mul64(m, load64(srcs[j] + i)));
    }
    store64(dst + i, a);
  }
  if (i < n) {
    const __mmask64 k = head_mask(n - i);
    __m512i a = _mm512_maskz_loadu_epi8(k, dst + i);
    for (size_t j = 0; j < count; ++j) {
      const __m512i m = _mm512_set1_epi64(
          static_cast<long long>(kSimdTables.affine[coeffs[j]]));
      a = _mm512_xor_si512(a, mul64(m, _mm512_maskz_loadu_epi8(k, srcs[j] + i)));
    }
    _mm512_mask_storeu_epi8(dst + i, k, a);
  }
}

}  // namespace kernels
}  // namespace gf256
}  // namespace fec
}  // namespace rqcast

#endif  // x86

// SSSE3 kernels: 16 bytes at a time, multiplication by the split-nibble
// PSHUFB technique (two 16-entry tables per constant, gf256_simd.h).
#include "fec/gf256_simd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <cstring>

#define RQCAST_TARGET __attribute__((target("ssse3")))

namespace rqcast {
namespace fec {
namespace gf256 {
namespace kernels {
namespace {

struct Mul16 {
  __m128i lo, hi, mask;
};

RQCAST_TARGET inline Mul16 mul16_for(uint8_t c) {
  const NibbleTable& t = kSimdTables.nibble[c];
  return {_mm_loadu_si128(reinterpret_cast<const __m128i*>(t.lo)),
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(t.hi)),
          _mm_set1_epi8(0x0F)};
}

RQCAST_TARGET inline __m128i mul16(const Mul16& m, __m128i x) {
  // No byte shift exists: shift 64-bit lanes, then mask off what crossed
  // in from the neighbouring byte.
  const __m128i lo = _mm_and_si128(x, m.mask);
  const __m128i hi = _mm_and_si128(_mm_srli_epi64(x, 4), m.mask);
  return _mm_xor_si128(_mm_shuffle_epi8(m.lo, lo), _mm_shuffle_epi8(m.hi, hi));
}

RQCAST_TARGET inline __m128i load(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}
RQCAST_TARGET inline void store(uint8_t* p, __m128i v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v);
}

}  // namespace

// Tails shorter than a vector go through a zero-padded copy on the stack,
// so every byte is computed by the same code and nothing past n is touched.

RQCAST_TARGET void ssse3_add(uint8_t* dst, const uint8_t* src, size_t n) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m128i a = _mm_xor_si128(load(dst + i), load(src + i));
    const __m128i b = _mm_xor_si128(load(dst + i + 16), load(src + i + 16));
    const __m128i c = _mm_xor_si128(load(dst + i + 32), load(src + i + 32));
    const __m128i d = _mm_xor_si128(load(dst + i + 48), load(src + i + 48));
    store(dst + i, a);
    store(dst + i + 16, b);
    store(dst + i + 32, c);
    store(dst + i + 48, d);
  }
  for (; i + 16 <= n; i += 16) {
    store(dst + i, _mm_xor_si128(load(dst + i), load(src + i)));
  }
  if (i < n) {
    uint8_t d[16] = {}, s[16] = {};
    std::memcpy(d, dst + i, n - i);
    std::memcpy(s, src + i, n - i);
    store(d, _mm_xor_si128(load(d), load(s)));
    std::memcpy(dst + i, d, n - i);
  }
}

RQCAST_TARGET void ssse3_addmul(uint8_t* dst, const uint8_t* src, uint8_t c,
                                size_t n) {
  const Mul16 m = mul16_for(c);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m128i a = _mm_xor_si128(load(dst + i), mul16(m, load(src + i)));
    const __m128i b =
        _mm_xor_si128(load(dst + i + 16), mul16(m, load(src + i + 16)));
    store(dst + i, a);
    store(dst + i + 16, b);
  }
  for (; i + 16 <= n; i += 16) {
    store(dst + i, _mm_xor_si128(load(dst + i), mul16(m, load(src + i))));
  }
  if (i < n) {
    uint8_t d[16] = {}, s[16] = {};
    std::memcpy(d, dst + i, n - i);
    std::memcpy(s, src + i, n - i);
    store(d, _mm_xor_si128(load(d), mul16(m, load(s))));
    std::memcpy(dst + i, d, n - i);
  }
}

RQCAST_TARGET void ssse3_scale(uint8_t* dst, uint8_t c, size_t n) {
  const Mul16 m = mul16_for(c);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m128i a = mul16(m, load(dst + i));
    const __m128i b = mul16(m, load(dst + i + 16));
    store(dst + i, a);
    store(dst + i + 16, b);
  }
  for (; i + 16 <= n; i += 16) store(dst + i, mul16(m, load(dst + i)));
  if (i < n) {
    uint8_t d[16] = {};
    std::memcpy(d, dst + i, n - i);
    store(d, mul16(m, load(d)));
    std::memcpy(dst + i, d, n - i);
  }
}

// One pass over dst: 64 bytes of it stay in registers while every source
// is multiplied into them.
RQCAST_TARGET void ssse3_addmul_multi(uint8_t* dst, const uint8_t* const* srcs,
                                      const uint8_t* coeffs, size_t count,
                                      size_t n) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m128i a0 = load(dst + i), a1 = load(dst + i + 16);
    __m128i a2 = load(dst + i + 32), a3 = load(dst + i + 48);
    for (size_t j = 0; j < count; ++j) {
      const Mul16 m = mul16_for(coeffs[j]);
      const uint8_t* s = srcs[j] + i;
      a0 = _mm_xor_si128(a0, mul16(m, load(s)));
      a1 = _mm_xor_si128(a1, mul16(m, load(s + 16)));
      a2 = _mm_xor_si128(a2, mul16(m, load(s + 32)));
      a3 = _mm_xor_si128(a3, mul16(m, load(s + 48)));
    }
    store(dst + i, a0);
    store(dst + i + 16, a1);
    store(dst + i + 32, a2);
    store(dst + i + 48, a3);
  }
  for (; i + 16 <= n; i += 16) {
    __m128i a = load(dst + i);
    for (size_t j = 0; j < count; ++j) {
      a = _mm_xor_si128(a, mul16(mul16_for(coeffs[j]), load(srcs[j] + i)));
    }
    store(dst + i, a);
  }
  if (i < n) {
    uint8_t d[16] = {}, s[16] = {};
    std::memcpy(d, dst + i, n - i);
    __m128i a = load(d);
    for (size_t j = 0; j < count; ++j) {
      std::memcpy(s, srcs[j] + i, n - i);
      a = _mm_xor_si128(a, mul16(mul16_for(coeffs[j]), load(s)));
    }
    store(d, a);
    std::memcpy(dst + i, d, n - i);
  }
}

// One pass over dst: 64 bytes of it stay in registers while every source
// is XORed in (binary rows: no multiplication).
RQCAST_TARGET void ssse3_add_multi(uint8_t* dst, const uint8_t* const* srcs,
                                   size_t count, size_t n, bool assign) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m128i a0, a1, a2, a3;
    size_t j = 0;
    if (assign) {
      const uint8_t* s = srcs[0] + i;
      a0 = load(s);
      a1 = load(s + 16);
      a2 = load(s + 32);
      a3 = load(s + 48);
      j = 1;
    } else {
      a0 = load(dst + i);
      a1 = load(dst + i + 16);
      a2 = load(dst + i + 32);
      a3 = load(dst + i + 48);
    }
    for (; j < count; ++j) {
      const uint8_t* s = srcs[j] + i;
      a0 = _mm_xor_si128(a0, load(s));
      a1 = _mm_xor_si128(a1, load(s + 16));
      a2 = _mm_xor_si128(a2, load(s + 32));
      a3 = _mm_xor_si128(a3, load(s + 48));
    }
    store(dst + i, a0);
    store(dst + i + 16, a1);
    store(dst + i + 32, a2);
    store(dst + i + 48, a3);
  }
  for (; i + 16 <= n; i += 16) {
    __m128i a = assign ? _mm_setzero_si128() : load(dst + i);
    for (size_t j = 0; j < count; ++j) a = _mm_xor_si128(a, load(srcs[j] + i));
    store(dst + i, a);
  }
  if (i < n) {
    uint8_t d[16] = {}, s[16] = {};
    if (!assign) std::memcpy(d, dst + i, n - i);
    __m128i a = load(d);
    for (size_t j = 0; j < count; ++j) {
      std::memcpy(s, srcs[j] + i, n - i);
      a = _mm_xor_si128(a, load(s));
    }
    store(d, a);
    std::memcpy(dst + i, d, n - i);
  }
}

}  // namespace kernels
}  // namespace gf256
}  // namespace fec
}  // namespace rqcast

#endif  // x86

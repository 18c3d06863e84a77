// AVX2 kernels: 32 bytes at a time, split-nibble VPSHUFB (which shuffles
// within each 128-bit lane, so the 16-entry tables are broadcast to both).
#include "fec/gf256_simd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <cstring>
#include <vector>

#define RQCAST_TARGET __attribute__((target("avx2")))

#pragma GCC push_options
#pragma GCC target("avx2")
#include "fec/gf256_hdpc_strip.h"
#pragma GCC pop_options

namespace rqcast {
namespace fec {
namespace gf256 {
namespace kernels {
namespace {

struct Mul32 {
  __m256i lo, hi, mask;
};

RQCAST_TARGET inline Mul32 mul32_for(uint8_t c) {
  const NibbleTable& t = kSimdTables.nibble[c];
  return {_mm256_broadcastsi128_si256(
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(t.lo))),
          _mm256_broadcastsi128_si256(
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(t.hi))),
          _mm256_set1_epi8(0x0F)};
}

RQCAST_TARGET inline __m256i mul32(const Mul32& m, __m256i x) {
  const __m256i lo = _mm256_and_si256(x, m.mask);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi64(x, 4), m.mask);
  return _mm256_xor_si256(_mm256_shuffle_epi8(m.lo, lo),
                          _mm256_shuffle_epi8(m.hi, hi));
}

RQCAST_TARGET inline __m256i load(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
RQCAST_TARGET inline void store(uint8_t* p, __m256i v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
}

}  // namespace

// Tails shorter than a vector go through a zero-padded copy on the stack.

RQCAST_TARGET void avx2_add(uint8_t* dst, const uint8_t* src, size_t n) {
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    const __m256i a = _mm256_xor_si256(load(dst + i), load(src + i));
    const __m256i b = _mm256_xor_si256(load(dst + i + 32), load(src + i + 32));
    const __m256i c = _mm256_xor_si256(load(dst + i + 64), load(src + i + 64));
    const __m256i d = _mm256_xor_si256(load(dst + i + 96), load(src + i + 96));
    store(dst + i, a);
    store(dst + i + 32, b);
    store(dst + i + 64, c);
    store(dst + i + 96, d);
  }
  for (; i + 32 <= n; i += 32) {
    store(dst + i, _mm256_xor_si256(load(dst + i), load(src + i)));
  }
  if (i < n) {
    uint8_t d[32] = {}, s[32] = {};
    std::memcpy(d, dst + i, n - i);
    std::memcpy(s, src + i, n - i);
    store(d, _mm256_xor_si256(load(d), load(s)));
    std::memcpy(dst + i, d, n - i);
  }
}

RQCAST_TARGET void avx2_addmul(uint8_t* dst, const uint8_t* src, uint8_t c,
                               size_t n) {
  const Mul32 m = mul32_for(c);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m256i a = _mm256_xor_si256(load(dst + i), mul32(m, load(src + i)));
    const __m256i b =
        _mm256_xor_si256(load(dst + i + 32), mul32(m, load(src + i + 32)));
    store(dst + i, a);
    store(dst + i + 32, b);
  }
  for (; i + 32 <= n; i += 32) {
    store(dst + i, _mm256_xor_si256(load(dst + i), mul32(m, load(src + i))));
  }
  if (i < n) {
    uint8_t d[32] = {}, s[32] = {};
    std::memcpy(d, dst + i, n - i);
    std::memcpy(s, src + i, n - i);
    store(d, _mm256_xor_si256(load(d), mul32(m, load(s))));
    std::memcpy(dst + i, d, n - i);
  }
}

RQCAST_TARGET void avx2_scale(uint8_t* dst, uint8_t c, size_t n) {
  const Mul32 m = mul32_for(c);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m256i a = mul32(m, load(dst + i));
    const __m256i b = mul32(m, load(dst + i + 32));
    store(dst + i, a);
    store(dst + i + 32, b);
  }
  for (; i + 32 <= n; i += 32) store(dst + i, mul32(m, load(dst + i)));
  if (i < n) {
    uint8_t d[32] = {};
    std::memcpy(d, dst + i, n - i);
    store(d, mul32(m, load(d)));
    std::memcpy(dst + i, d, n - i);
  }
}

// One pass over dst: 128 bytes of it stay in registers while every source
// is multiplied into them.
RQCAST_TARGET void avx2_addmul_multi(uint8_t* dst, const uint8_t* const* srcs,
                                     const uint8_t* coeffs, size_t count,
                                     size_t n) {
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    __m256i a0 = load(dst + i), a1 = load(dst + i + 32);
    __m256i a2 = load(dst + i + 64), a3 = load(dst + i + 96);
    for (size_t j = 0; j < count; ++j) {
      const Mul32 m = mul32_for(coeffs[j]);
      const uint8_t* s = srcs[j] + i;
      a0 = _mm256_xor_si256(a0, mul32(m, load(s)));
      a1 = _mm256_xor_si256(a1, mul32(m, load(s + 32)));
      a2 = _mm256_xor_si256(a2, mul32(m, load(s + 64)));
      a3 = _mm256_xor_si256(a3, mul32(m, load(s + 96)));
    }
    store(dst + i, a0);
    store(dst + i + 32, a1);
    store(dst + i + 64, a2);
    store(dst + i + 96, a3);
  }
  for (; i + 32 <= n; i += 32) {
    __m256i a = load(dst + i);
    for (size_t j = 0; j < count; ++j) {
      a = _mm256_xor_si256(a, mul32(mul32_for(coeffs[j]), load(srcs[j] + i)));
    }
    store(dst + i, a);
  }
  if (i < n) {
    uint8_t d[32] = {}, s[32] = {};
    std::memcpy(d, dst + i, n - i);
    __m256i a = load(d);
    for (size_t j = 0; j < count; ++j) {
      std::memcpy(s, srcs[j] + i, n - i);
      a = _mm256_xor_si256(a, mul32(mul32_for(coeffs[j]), load(s)));
    }
    store(d, a);
    std::memcpy(dst + i, d, n - i);
  }
}

// One pass over dst: 128 bytes of it stay in registers while every source
// is XORed in (binary rows: no multiplication).
RQCAST_TARGET void avx2_add_multi(uint8_t* dst, const uint8_t* const* srcs,
                                 size_t count, size_t n, bool assign) {
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    __m256i a0, a1, a2, a3;
    size_t j = 0;
    if (assign) {
      const uint8_t* s = srcs[0] + i;
      a0 = load(s);
      a1 = load(s + 32);
      a2 = load(s + 64);
      a3 = load(s + 96);
      j = 1;
    } else {
      a0 = load(dst + i);
      a1 = load(dst + i + 32);
      a2 = load(dst + i + 64);
      a3 = load(dst + i + 96);
    }
    for (; j < count; ++j) {
      const uint8_t* s = srcs[j] + i;
      a0 = _mm256_xor_si256(a0, load(s));
      a1 = _mm256_xor_si256(a1, load(s + 32));
      a2 = _mm256_xor_si256(a2, load(s + 64));
      a3 = _mm256_xor_si256(a3, load(s + 96));
    }
    store(dst + i, a0);
    store(dst + i + 32, a1);
    store(dst + i + 64, a2);
    store(dst + i + 96, a3);
  }
  for (; i + 32 <= n; i += 32) {
    __m256i a = assign ? _mm256_setzero_si256() : load(dst + i);
    for (size_t j = 0; j < count; ++j) {
      a = _mm256_xor_si256(a, load(srcs[j] + i));
    }
    store(dst + i, a);
  }
  if (i < n) {
    uint8_t d[32] = {}, s[32] = {};
    if (!assign) std::memcpy(d, dst + i, n - i);
    __m256i a = load(d);
    for (size_t j = 0; j < count; ++j) {
      std::memcpy(s, srcs[j] + i, n - i);
      a = _mm256_xor_si256(a, load(s));
    }
    store(d, a);
    std::memcpy(dst + i, d, n - i);
  }
}

namespace {

struct Avx2Vec {
  using Vec = __m256i;
  using Mul = Mul32;
  static constexpr size_t kBytes = 32;
  static RQCAST_TARGET Vec Zero() { return _mm256_setzero_si256(); }
  static RQCAST_TARGET Vec Load(const uint8_t* p) { return load(p); }
  static RQCAST_TARGET void Store(uint8_t* p, Vec v) { store(p, v); }
  static RQCAST_TARGET Vec Xor(Vec a, Vec b) { return _mm256_xor_si256(a, b); }
  // A byte shift, and the reduction polynomial's low byte 0x1D where the
  // top bit was set.
  static RQCAST_TARGET Vec TimesAlpha(Vec a) {
    const Vec zero = _mm256_setzero_si256();
    return _mm256_xor_si256(
        _mm256_add_epi8(a, a),
        _mm256_and_si256(_mm256_cmpgt_epi8(zero, a), _mm256_set1_epi8(0x1D)));
  }
  static RQCAST_TARGET Mul MulFor(uint8_t c) { return mul32_for(c); }
  static RQCAST_TARGET Vec AddMul(const Mul& m, Vec acc, Vec x) {
    return _mm256_xor_si256(acc, mul32(m, x));
  }
};

}  // namespace

// HDPC rows by strips of 256 bytes (hdpc_strip).
RQCAST_TARGET void avx2_hdpc(uint8_t* const* rows, size_t H, uint8_t* acc,
                             const uint8_t* const* srcs, const uint32_t* h12,
                             size_t columns, const uint8_t* last, size_t n) {
  hdpc_rows<Avx2Vec, 8, 8>(rows, H, acc, srcs, h12, columns, last, n);
}

}  // namespace kernels
}  // namespace gf256
}  // namespace fec
}  // namespace rqcast

#endif  // x86

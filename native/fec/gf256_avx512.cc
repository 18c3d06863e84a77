// AVX-512BW kernels: 64 bytes at a time, split-nibble VPSHUFB, tails with
// masked loads and stores (which suppress faults on the masked-off bytes).
#include "fec/gf256_simd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define RQCAST_TARGET __attribute__((target("avx512f,avx512bw")))

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw")
#include "fec/gf256_hdpc_strip.h"
#pragma GCC pop_options

// GCC 12's AVX-512 headers fill "undefined" operands with a self-initialised
// variable, which -Wuninitialized flags once inlined into a target("avx512")
// function (GCC PR 105593, fixed in GCC 13). The values are never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace rqcast {
namespace fec {
namespace gf256 {
namespace kernels {
namespace {

// 0x96 = a ^ b ^ c as a VPTERNLOG truth table.
constexpr int kXor3 = 0x96;

struct Mul64 {
  __m512i lo, hi, mask;
};

RQCAST_TARGET inline Mul64 mul64_for(uint8_t c) {
  const NibbleTable& t = kSimdTables.nibble[c];
  return {_mm512_broadcast_i32x4(
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(t.lo))),
          _mm512_broadcast_i32x4(
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(t.hi))),
          _mm512_set1_epi8(0x0F)};
}

// acc ^ c * x
RQCAST_TARGET inline __m512i addmul64(const Mul64& m, __m512i acc, __m512i x) {
  const __m512i lo = _mm512_and_si512(x, m.mask);
  const __m512i hi = _mm512_and_si512(_mm512_srli_epi64(x, 4), m.mask);
  return _mm512_ternarylogic_epi32(acc, _mm512_shuffle_epi8(m.lo, lo),
                                   _mm512_shuffle_epi8(m.hi, hi), kXor3);
}

RQCAST_TARGET inline __m512i load(const uint8_t* p) {
  return _mm512_loadu_si512(p);
}
RQCAST_TARGET inline void store(uint8_t* p, __m512i v) {
  _mm512_storeu_si512(p, v);
}
// The first r < 64 bytes.
inline __mmask64 head_mask(size_t r) {
  return static_cast<__mmask64>((uint64_t{1} << r) - 1);
}

}  // namespace

RQCAST_TARGET void avx512_add(uint8_t* dst, const uint8_t* src, size_t n) {
  size_t i = 0;
  for (; i + 256 <= n; i += 256) {
    const __m512i a = _mm512_xor_si512(load(dst + i), load(src + i));
    const __m512i b = _mm512_xor_si512(load(dst + i + 64), load(src + i + 64));
    const __m512i c =
        _mm512_xor_si512(load(dst + i + 128), load(src + i + 128));
    const __m512i d =
        _mm512_xor_si512(load(dst + i + 192), load(src + i + 192));
    store(dst + i, a);
    store(dst + i + 64, b);
    store(dst + i + 128, c);
    store(dst + i + 192, d);
  }
  for (; i + 64 <= n; i += 64) {
    store(dst + i, _mm512_xor_si512(load(dst + i), load(src + i)));
  }
  if (i < n) {
    const __mmask64 k = head_mask(n - i);
    const __m512i d = _mm512_maskz_loadu_epi8(k, dst + i);
    const __m512i s = _mm512_maskz_loadu_epi8(k, src + i);
    _mm512_mask_storeu_epi8(dst + i, k, _mm512_xor_si512(d, s));
  }
}

RQCAST_TARGET void avx512_addmul(uint8_t* dst, const uint8_t* src, uint8_t c,
                                 size_t n) {
  const Mul64 m = mul64_for(c);
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    const __m512i a = addmul64(m, load(dst + i), load(src + i));
    const __m512i b = addmul64(m, load(dst + i + 64), load(src + i + 64));
    store(dst + i, a);
    store(dst + i + 64, b);
  }
  for (; i + 64 <= n; i += 64) {
    store(dst + i, addmul64(m, load(dst + i), load(src + i)));
  }
  if (i < n) {
    const __mmask64 k = head_mask(n - i);
    const __m512i d = _mm512_maskz_loadu_epi8(k, dst + i);
    const __m512i s = _mm512_maskz_loadu_epi8(k, src + i);
    _mm512_mask_storeu_epi8(dst + i, k, addmul64(m, d, s));
  }
}

RQCAST_TARGET void avx512_scale(uint8_t* dst, uint8_t c, size_t n) {
  const Mul64 m = mul64_for(c);
  const __m512i zero = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    const __m512i a = addmul64(m, zero, load(dst + i));
    const __m512i b = addmul64(m, zero, load(dst + i + 64));
    store(dst + i, a);
    store(dst + i + 64, b);
  }
  for (; i + 64 <= n; i += 64) store(dst + i, addmul64(m, zero, load(dst + i)));
  if (i < n) {
    const __mmask64 k = head_mask(n - i);
    const __m512i d = _mm512_maskz_loadu_epi8(k, dst + i);
    _mm512_mask_storeu_epi8(dst + i, k, addmul64(m, zero, d));
  }
}

// One pass over dst: 256 bytes of it stay in registers while every source
// is multiplied into them.
RQCAST_TARGET void avx512_addmul_multi(uint8_t* dst, const uint8_t* const* srcs,
                                       const uint8_t* coeffs, size_t count,
                                       size_t n) {
  size_t i = 0;
  for (; i + 256 <= n; i += 256) {
    __m512i a0 = load(dst + i), a1 = load(dst + i + 64);
    __m512i a2 = load(dst + i + 128), a3 = load(dst + i + 192);
    for (size_t j = 0; j < count; ++j) {
      const Mul64 m = mul64_for(coeffs[j]);
      const uint8_t* s = srcs[j] + i;
      a0 = addmul64(m, a0, load(s));
      a1 = addmul64(m, a1, load(s + 64));
      a2 = addmul64(m, a2, load(s + 128));
      a3 = addmul64(m, a3, load(s + 192));
    }
    store(dst + i, a0);
    store(dst + i + 64, a1);
    store(dst + i + 128, a2);
    store(dst + i + 192, a3);
  }
  for (; i + 64 <= n; i += 64) {
    __m512i a = load(dst + i);
    for (size_t j = 0; j < count; ++j) {
      a = addmul64(mul64_for(coeffs[j]), a, load(srcs[j] + i));
    }
    store(dst + i, a);
  }
  if (i < n) {
    const __mmask64 k = head_mask(n - i);
    __m512i a = _mm512_maskz_loadu_epi8(k, dst + i);
    for (size_t j = 0; j < count; ++j) {
      a = addmul64(mul64_for(coeffs[j]), a,
                   _mm512_maskz_loadu_epi8(k, srcs[j] + i));
    }
    _mm512_mask_storeu_epi8(dst + i, k, a);
  }
}

// One pass over dst: 256 bytes of it stay in registers while every source
// is XORed in (binary rows: no multiplication).
RQCAST_TARGET void avx512_add_multi(uint8_t* dst, const uint8_t* const* srcs,
                                   size_t count, size_t n, bool assign) {
  size_t i = 0;
  // 1 KiB per pass over the sources, in 16 of the 32 vector registers:
  // each source is read as one 1 KiB run, and a T = 1280 symbol takes two
  // passes over the pointers instead of five. The encoding plan's replay
  // at K = 1 000 (17 000 sources in sums of about 8) ran 13-17% faster
  // than with 256-byte passes alone; 18 or more accumulators spill.
  constexpr int kWide = 16;
  for (; i + 64 * kWide <= n; i += 64 * kWide) {
    __m512i a[kWide];
    size_t j = 0;
    const uint8_t* first = assign ? srcs[0] + i : dst + i;
#pragma GCC unroll 16
    for (int w = 0; w < kWide; ++w) a[w] = load(first + 64 * w);
    if (assign) j = 1;
    for (; j < count; ++j) {
      const uint8_t* s = srcs[j] + i;
#pragma GCC unroll 16
      for (int w = 0; w < kWide; ++w) {
        a[w] = _mm512_xor_si512(a[w], load(s + 64 * w));
      }
    }
#pragma GCC unroll 16
    for (int w = 0; w < kWide; ++w) store(dst + i + 64 * w, a[w]);
  }
  for (; i + 256 <= n; i += 256) {
    __m512i a0, a1, a2, a3;
    size_t j = 0;
    if (assign) {
      const uint8_t* s = srcs[0] + i;
      a0 = load(s);
      a1 = load(s + 64);
      a2 = load(s + 128);
      a3 = load(s + 192);
      j = 1;
    } else {
      a0 = load(dst + i);
      a1 = load(dst + i + 64);
      a2 = load(dst + i + 128);
      a3 = load(dst + i + 192);
    }
    for (; j < count; ++j) {
      const uint8_t* s = srcs[j] + i;
      a0 = _mm512_xor_si512(a0, load(s));
      a1 = _mm512_xor_si512(a1, load(s + 64));
      a2 = _mm512_xor_si512(a2, load(s + 128));
      a3 = _mm512_xor_si512(a3, load(s + 192));
    }
    store(dst + i, a0);
    store(dst + i + 64, a1);
    store(dst + i + 128, a2);
    store(dst + i + 192, a3);
  }
  for (; i + 64 <= n; i += 64) {
    __m512i a = assign ? _mm512_setzero_si512() : load(dst + i);
    for (size_t j = 0; j < count; ++j) {
      a = _mm512_xor_si512(a, load(srcs[j] + i));
    }
    store(dst + i, a);
  }
  if (i < n) {
    const __mmask64 k = head_mask(n - i);
    __m512i a = assign ? _mm512_setzero_si512()
                       : _mm512_maskz_loadu_epi8(k, dst + i);
    for (size_t j = 0; j < count; ++j) {
      a = _mm512_xor_si512(a, _mm512_maskz_loadu_epi8(k, srcs[j] + i));
    }
    _mm512_mask_storeu_epi8(dst + i, k, a);
  }
}

namespace {

struct Avx512Vec {
  using Vec = __m512i;
  using Mul = Mul64;
  static constexpr size_t kBytes = 64;
  static RQCAST_TARGET Vec Zero() { return _mm512_setzero_si512(); }
  static RQCAST_TARGET Vec Load(const uint8_t* p) { return load(p); }
  static RQCAST_TARGET void Store(uint8_t* p, Vec v) { store(p, v); }
  static RQCAST_TARGET Vec Xor(Vec a, Vec b) { return _mm512_xor_si512(a, b); }
  // A byte shift, and the reduction polynomial's low byte 0x1D where the
  // top bit was set.
  static RQCAST_TARGET Vec TimesAlpha(Vec a) {
    const __mmask64 top = _mm512_movepi8_mask(a);
    return _mm512_xor_si512(_mm512_add_epi8(a, a),
                            _mm512_maskz_mov_epi8(top, _mm512_set1_epi8(0x1D)));
  }
  static RQCAST_TARGET Mul MulFor(uint8_t c) { return mul64_for(c); }
  static RQCAST_TARGET Vec AddMul(const Mul& m, Vec acc, Vec x) {
    return addmul64(m, acc, x);
  }
};

}  // namespace

// HDPC rows as avx2_hdpc does (hdpc_strip) on 512-bit vectors: half the
// loads and stores of the row strips per column, and strips of 512 bytes
// (then 256) so that a T = 1 280 symbol takes 3 passes over the columns
// instead of 5.
RQCAST_TARGET void avx512_hdpc(uint8_t* const* rows, size_t H, uint8_t* acc,
                               const uint8_t* const* srcs,
                               const uint32_t* h12, size_t columns,
                               const uint8_t* last, size_t n) {
  hdpc_rows<Avx512Vec, 8, 4>(rows, H, acc, srcs, h12, columns, last, n);
}

}  // namespace kernels
}  // namespace gf256
}  // namespace fec
}  // namespace rqcast

#endif  // x86

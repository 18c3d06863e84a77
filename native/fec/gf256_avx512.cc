// AVX-512BW kernels: 64 bytes at a time, split-nibble VPSHUFB, tails with
// masked loads and stores (which suppress faults on the masked-off bytes).
#include "fec/gf256_simd.h"

#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define RQCAST_TARGET __attribute__((target("avx512f,avx512bw")))

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

// alpha * a (§5.7): a byte shift, and the reduction polynomial's low byte
// 0x1D where the top bit was set.
RQCAST_TARGET inline __m512i times_alpha(__m512i a, __m512i poly) {
  const __mmask64 top = _mm512_movepi8_mask(a);
  return _mm512_xor_si512(_mm512_add_epi8(a, a),
                          _mm512_maskz_mov_epi8(top, poly));
}

// One strip of kVec * 64 bytes at offset i of every symbol (avx512_hdpc).
template <size_t kVec>
RQCAST_TARGET inline void hdpc_strip(uint8_t* const* rows, size_t H,
                                     uint8_t* acc, const uint8_t* const* srcs,
                                     const uint32_t* h12, size_t columns,
                                     const uint8_t* last, size_t i,
                                     uint8_t (*hb)[512]) {
  constexpr size_t kStrip = 64 * kVec;
  constexpr size_t kAhead = 12;  // prefetch distance, in columns
  const __m512i zero = _mm512_setzero_si512();
  const __m512i poly = _mm512_set1_epi8(0x1D);
  for (size_t h = 0; h < H; ++h) {
    for (size_t k = 0; k < kStrip; k += 64) store(&hb[h][k], zero);
  }
  __m512i a[kVec];
  for (size_t v = 0; v < kVec; ++v) a[v] = zero;
  for (size_t c = 0; c < columns; ++c) {
    if (c + kAhead < columns && srcs[c + kAhead]) {
      const char* f = reinterpret_cast<const char*>(srcs[c + kAhead] + i);
      for (size_t k = 0; k < kStrip; k += 64) {
        _mm_prefetch(f + k, _MM_HINT_T0);
      }
    }
    // acc = alpha * acc (zero at c = 0: no special case)
    for (size_t v = 0; v < kVec; ++v) a[v] = times_alpha(a[v], poly);
    if (const uint8_t* s = srcs[c]) {
      s += i;
      for (size_t v = 0; v < kVec; ++v) {
        a[v] = _mm512_xor_si512(a[v], load(s + 64 * v));
      }
    }
    if (c + 1 < columns) {
      uint8_t* r1 = hb[h12[2 * c]];
      uint8_t* r2 = hb[h12[2 * c + 1]];
      for (size_t v = 0; v < kVec; ++v) {
        store(r1 + 64 * v, _mm512_xor_si512(load(r1 + 64 * v), a[v]));
        store(r2 + 64 * v, _mm512_xor_si512(load(r2 + 64 * v), a[v]));
      }
    }
  }
  for (size_t h = 0; h < H; ++h) {
    const Mul64 m = mul64_for(last[h]);
    uint8_t* r = rows[h] + i;
    for (size_t v = 0; v < kVec; ++v) {
      store(r + 64 * v, addmul64(m, load(hb[h] + 64 * v), a[v]));
    }
  }
  for (size_t v = 0; v < kVec; ++v) store(acc + i + 64 * v, a[v]);
}

}  // namespace

// HDPC rows as avx2_hdpc does (acc in registers, the H rows' strips in an
// L1 buffer, each source read once per strip), on 512-bit vectors: half
// the loads and stores of the row strips per column, and strips of 512
// bytes (then 256) so that a T = 1 280 symbol takes 3 passes over the
// columns instead of 5.
RQCAST_TARGET void avx512_hdpc(uint8_t* const* rows, size_t H, uint8_t* acc,
                               const uint8_t* const* srcs,
                               const uint32_t* h12, size_t columns,
                               const uint8_t* last, size_t n) {
  constexpr size_t kMaxH = 32;  // Table 2: H <= 16
  if (H > kMaxH || columns == 0) {
    scalar_hdpc(rows, H, acc, srcs, h12, columns, last, n);
    return;
  }
  alignas(64) uint8_t hb[kMaxH][512];
  size_t i = 0;
  for (; i + 512 <= n; i += 512) {
    hdpc_strip<8>(rows, H, acc, srcs, h12, columns, last, i, hb);
  }
  for (; i + 256 <= n; i += 256) {
    hdpc_strip<4>(rows, H, acc, srcs, h12, columns, last, i, hb);
  }
  if (i < n) {  // the last n % 256 bytes
    std::vector<uint8_t*> r(H);
    std::vector<const uint8_t*> sv(columns);
    for (size_t h = 0; h < H; ++h) r[h] = rows[h] + i;
    for (size_t c = 0; c < columns; ++c) {
      sv[c] = srcs[c] ? srcs[c] + i : nullptr;
    }
    scalar_hdpc(r.data(), H, acc + i, sv.data(), h12, columns, last, n - i);
  }
}

}  // namespace kernels
}  // namespace gf256
}  // namespace fec
}  // namespace rqcast

#endif  // x86

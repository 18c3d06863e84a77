// Internal: one strip of the SIMD hdpc kernels (gf256::hdpc), written once
// for any vector width. A kernel file defines RQCAST_TARGET (its target
// attribute, e.g. __attribute__((target("avx2")))) before it includes this
// header, so the templates compile for that file's instructions (clang
// refuses vector arguments in a function without the target: the fuzz
// build), and passes a vector type V with: Vec, kBytes, Zero, Load, Store,
// Xor, TimesAlpha (multiplication by alpha = 2, §5.7), Mul, MulFor and
// AddMul (acc ^ c * x).
#pragma once

#ifndef RQCAST_TARGET
#error "define RQCAST_TARGET (the kernel file's target attribute) before including gf256_hdpc_strip.h"
#endif

#include <cstddef>
#include <cstdint>
#include <immintrin.h>  // x86 kernel files only

#include "fec/gf256_kernels.h"

namespace rqcast {
namespace fec {
namespace gf256 {
namespace kernels {

// The largest H hdpc_rows takes (Table 2: H <= 16).
constexpr size_t kHdpcMaxH = 32;

// Bytes [i, i + kVec * V::kBytes) of the HDPC rows: acc lives in
// registers, the H rows' strips in hb (an L1 buffer, kVec * V::kBytes per
// row), and each source symbol is read once (prefetched a few columns
// ahead: the sources are scattered).
template <class V, size_t kVec>
RQCAST_TARGET inline void hdpc_strip(uint8_t* const* rows, size_t H, uint8_t* acc,
                       const uint8_t* const* srcs, const uint32_t* h12,
                       size_t columns, const uint8_t* last, size_t i,
                       uint8_t* hb) {
  constexpr size_t kStrip = V::kBytes * kVec;
  constexpr size_t kAhead = 12;  // prefetch distance, in columns
  for (size_t h = 0; h < H; ++h) {
    for (size_t k = 0; k < kStrip; k += V::kBytes) {
      V::Store(hb + h * kStrip + k, V::Zero());
    }
  }
  typename V::Vec a[kVec];
  for (size_t v = 0; v < kVec; ++v) a[v] = V::Zero();
  for (size_t c = 0; c < columns; ++c) {
    if (c + kAhead < columns && srcs[c + kAhead]) {
      const char* f = reinterpret_cast<const char*>(srcs[c + kAhead] + i);
      for (size_t k = 0; k < kStrip; k += 64) {
        _mm_prefetch(f + k, _MM_HINT_T0);
      }
    }
    // acc = alpha * acc (zero at c = 0: no special case)
    for (size_t v = 0; v < kVec; ++v) a[v] = V::TimesAlpha(a[v]);
    if (const uint8_t* s = srcs[c]) {
      s += i;
      for (size_t v = 0; v < kVec; ++v) {
        a[v] = V::Xor(a[v], V::Load(s + V::kBytes * v));
      }
    }
    if (c + 1 < columns) {
      uint8_t* r1 = hb + h12[2 * c] * kStrip;
      uint8_t* r2 = hb + h12[2 * c + 1] * kStrip;
      for (size_t v = 0; v < kVec; ++v) {
        const size_t o = V::kBytes * v;
        V::Store(r1 + o, V::Xor(V::Load(r1 + o), a[v]));
        V::Store(r2 + o, V::Xor(V::Load(r2 + o), a[v]));
      }
    }
  }
  for (size_t h = 0; h < H; ++h) {
    const typename V::Mul m = V::MulFor(last[h]);
    uint8_t* r = rows[h] + i;
    for (size_t v = 0; v < kVec; ++v) {
      const size_t o = V::kBytes * v;
      V::Store(r + o, V::AddMul(m, V::Load(hb + h * kStrip + o), a[v]));
    }
  }
  for (size_t v = 0; v < kVec; ++v) V::Store(acc + i + V::kBytes * v, a[v]);
}

// The whole hdpc (gf256::hdpc) by strips of kWide vectors, then of
// kNarrow, then the scalar kernel for the last bytes.
template <class V, size_t kWide, size_t kNarrow>
RQCAST_TARGET inline void hdpc_rows(uint8_t* const* rows, size_t H, uint8_t* acc,
                      const uint8_t* const* srcs, const uint32_t* h12,
                      size_t columns, const uint8_t* last, size_t n) {
  if (H > kHdpcMaxH || columns == 0) {
    scalar_hdpc(rows, H, acc, srcs, h12, columns, last, n);
    return;
  }
  alignas(64) uint8_t hb[kHdpcMaxH * kWide * V::kBytes];
  size_t i = 0;
  for (; i + kWide * V::kBytes <= n; i += kWide * V::kBytes) {
    hdpc_strip<V, kWide>(rows, H, acc, srcs, h12, columns, last, i, hb);
  }
  for (; i + kNarrow * V::kBytes <= n; i += kNarrow * V::kBytes) {
    hdpc_strip<V, kNarrow>(rows, H, acc, srcs, h12, columns, last, i, hb);
  }
  if (i < n) scalar_hdpc_from(i, rows, H, acc, srcs, h12, columns, last, n);
}

}  // namespace kernels
}  // namespace gf256
}  // namespace fec
}  // namespace rqcast

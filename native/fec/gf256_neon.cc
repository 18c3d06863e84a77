// AArch64 Advanced SIMD kernels: 16 bytes at a time, split-nibble TBL
// (vqtbl1q_u8), the NEON form of the PSHUFB technique.
#include "fec/gf256_simd.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

namespace rqcast {
namespace fec {
namespace gf256 {
namespace kernels {
namespace {

struct Mul16 {
  uint8x16_t lo, hi, mask;
};

inline Mul16 mul16_for(uint8_t c) {
  const NibbleTable& t = kSimdTables.nibble[c];
  return {vld1q_u8(t.lo), vld1q_u8(t.hi), vdupq_n_u8(0x0F)};
}

inline uint8x16_t mul16(const Mul16& m, uint8x16_t x) {
  // TBL yields 0 for indices >= 16, but masking keeps lo in range anyway;
  // the byte shift needs no mask.
  return veorq_u8(vqtbl1q_u8(m.lo, vandq_u8(x, m.mask)),
                  vqtbl1q_u8(m.hi, vshrq_n_u8(x, 4)));
}

}  // namespace

// Tails shorter than a vector go through a zero-padded copy on the stack.

void neon_add(uint8_t* dst, const uint8_t* src, size_t n) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const uint8x16_t a = veorq_u8(vld1q_u8(dst + i), vld1q_u8(src + i));
    const uint8x16_t b =
        veorq_u8(vld1q_u8(dst + i + 16), vld1q_u8(src + i + 16));
    const uint8x16_t c =
        veorq_u8(vld1q_u8(dst + i + 32), vld1q_u8(src + i + 32));
    const uint8x16_t d =
        veorq_u8(vld1q_u8(dst + i + 48), vld1q_u8(src + i + 48));
    vst1q_u8(dst + i, a);
    vst1q_u8(dst + i + 16, b);
    vst1q_u8(dst + i + 32, c);
    vst1q_u8(dst + i + 48, d);
  }
  for (; i + 16 <= n; i += 16) {
    vst1q_u8(dst + i, veorq_u8(vld1q_u8(dst + i), vld1q_u8(src + i)));
  }
  if (i < n) {
    uint8_t d[16] = {}, s[16] = {};
    std::memcpy(d, dst + i, n - i);
    std::memcpy(s, src + i, n - i);
    vst1q_u8(d, veorq_u8(vld1q_u8(d), vld1q_u8(s)));
    std::memcpy(dst + i, d, n - i);
  }
}

void neon_addmul(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n) {
  const Mul16 m = mul16_for(c);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const uint8x16_t a =
        veorq_u8(vld1q_u8(dst + i), mul16(m, vld1q_u8(src + i)));
    const uint8x16_t b =
        veorq_u8(vld1q_u8(dst + i + 16), mul16(m, vld1q_u8(src + i + 16)));
    vst1q_u8(dst + i, a);
    vst1q_u8(dst + i + 16, b);
  }
  for (; i + 16 <= n; i += 16) {
    vst1q_u8(dst + i, veorq_u8(vld1q_u8(dst + i), mul16(m, vld1q_u8(src + i))));
  }
  if (i < n) {
    uint8_t d[16] = {}, s[16] = {};
    std::memcpy(d, dst + i, n - i);
    std::memcpy(s, src + i, n - i);
    vst1q_u8(d, veorq_u8(vld1q_u8(d), mul16(m, vld1q_u8(s))));
    std::memcpy(dst + i, d, n - i);
  }
}

void neon_scale(uint8_t* dst, uint8_t c, size_t n) {
  const Mul16 m = mul16_for(c);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const uint8x16_t a = mul16(m, vld1q_u8(dst + i));
    const uint8x16_t b = mul16(m, vld1q_u8(dst + i + 16));
    vst1q_u8(dst + i, a);
    vst1q_u8(dst + i + 16, b);
  }
  for (; i + 16 <= n; i += 16) vst1q_u8(dst + i, mul16(m, vld1q_u8(dst + i)));
  if (i < n) {
    uint8_t d[16] = {};
    std::memcpy(d, dst + i, n - i);
    vst1q_u8(d, mul16(m, vld1q_u8(d)));
    std::memcpy(dst + i, d, n - i);
  }
}

// One pass over dst: 64 bytes of it stay in registers while every source
// is multiplied into them.
void neon_addmul_multi(uint8_t* dst, const uint8_t* const* srcs,
                       const uint8_t* coeffs, size_t count, size_t n) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    uint8x16_t a0 = vld1q_u8(dst + i), a1 = vld1q_u8(dst + i + 16);
    uint8x16_t a2 = vld1q_u8(dst + i + 32), a3 = vld1q_u8(dst + i + 48);
    for (size_t j = 0; j < count; ++j) {
      const Mul16 m = mul16_for(coeffs[j]);
      const uint8_t* s = srcs[j] + i;
      a0 = veorq_u8(a0, mul16(m, vld1q_u8(s)));
      a1 = veorq_u8(a1, mul16(m, vld1q_u8(s + 16)));
      a2 = veorq_u8(a2, mul16(m, vld1q_u8(s + 32)));
      a3 = veorq_u8(a3, mul16(m, vld1q_u8(s + 48)));
    }
    vst1q_u8(dst + i, a0);
    vst1q_u8(dst + i + 16, a1);
    vst1q_u8(dst + i + 32, a2);
    vst1q_u8(dst + i + 48, a3);
  }
  for (; i + 16 <= n; i += 16) {
    uint8x16_t a = vld1q_u8(dst + i);
    for (size_t j = 0; j < count; ++j) {
      a = veorq_u8(a, mul16(mul16_for(coeffs[j]), vld1q_u8(srcs[j] + i)));
    }
    vst1q_u8(dst + i, a);
  }
  if (i < n) {
    uint8_t d[16] = {}, s[16] = {};
    std::memcpy(d, dst + i, n - i);
    uint8x16_t a = vld1q_u8(d);
    for (size_t j = 0; j < count; ++j) {
      std::memcpy(s, srcs[j] + i, n - i);
      a = veorq_u8(a, mul16(mul16_for(coeffs[j]), vld1q_u8(s)));
    }
    vst1q_u8(d, a);
    std::memcpy(dst + i, d, n - i);
  }
}

// One pass over dst: 64 bytes of it stay in registers while every source
// is XORed in (binary rows: no multiplication).
void neon_add_multi(uint8_t* dst, const uint8_t* const* srcs,
                   size_t count, size_t n, bool assign) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    uint8x16_t a0, a1, a2, a3;
    size_t j = 0;
    if (assign) {
      const uint8_t* s = srcs[0] + i;
      a0 = vld1q_u8(s);
      a1 = vld1q_u8(s + 16);
      a2 = vld1q_u8(s + 32);
      a3 = vld1q_u8(s + 48);
      j = 1;
    } else {
      a0 = vld1q_u8(dst + i);
      a1 = vld1q_u8(dst + i + 16);
      a2 = vld1q_u8(dst + i + 32);
      a3 = vld1q_u8(dst + i + 48);
    }
    for (; j < count; ++j) {
      const uint8_t* s = srcs[j] + i;
      a0 = veorq_u8(a0, vld1q_u8(s));
      a1 = veorq_u8(a1, vld1q_u8(s + 16));
      a2 = veorq_u8(a2, vld1q_u8(s + 32));
      a3 = veorq_u8(a3, vld1q_u8(s + 48));
    }
    vst1q_u8(dst + i, a0);
    vst1q_u8(dst + i + 16, a1);
    vst1q_u8(dst + i + 32, a2);
    vst1q_u8(dst + i + 48, a3);
  }
  for (; i + 16 <= n; i += 16) {
    uint8x16_t a = assign ? vdupq_n_u8(0) : vld1q_u8(dst + i);
    for (size_t j = 0; j < count; ++j) a = veorq_u8(a, vld1q_u8(srcs[j] + i));
    vst1q_u8(dst + i, a);
  }
  if (i < n) {
    uint8_t d[16] = {}, s[16] = {};
    if (!assign) std::memcpy(d, dst + i, n - i);
    uint8x16_t a = vld1q_u8(d);
    for (size_t j = 0; j < count; ++j) {
      std::memcpy(s, srcs[j] + i, n - i);
      a = veorq_u8(a, vld1q_u8(s));
    }
    vst1q_u8(d, a);
    std::memcpy(dst + i, d, n - i);
  }
}

}  // namespace kernels
}  // namespace gf256
}  // namespace fec
}  // namespace rqcast

#endif  // __aarch64__

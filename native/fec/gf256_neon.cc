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

}  // namespace kernels
}  // namespace gf256
}  // namespace fec
}  // namespace rqcast

#endif  // __aarch64__

// Internal to the SIMD kernels (gf256_simd.cc and gf256_<isa>.cc): the
// per-constant lookup data they share and the kernels each file defines.
#pragma once

#include <cstddef>
#include <cstdint>

#include "fec/gf256_kernels.h"

namespace rqcast {
namespace fec {
namespace gf256 {
namespace kernels {

// Split-nibble tables for multiplication by c (pshufb / tbl technique):
// c * x == lo[x & 15] ^ hi[x >> 4], since multiplication by c is linear
// over GF(2) and x == (x & 15) ^ (x & 0xF0).
struct NibbleTable {
  uint8_t lo[16];  // lo[i] = c * i
  uint8_t hi[16];  // hi[i] = c * (i << 4)
};

struct SimdTables {
  alignas(64) NibbleTable nibble[256];
  // affine[c]: multiplication by c in the 0x11D field as the 8x8 bit
  // matrix that GF2P8AFFINEQB takes (byte 7 - i holds the input bits that
  // feed output bit i). GF2P8MULB is no use: it reduces by 0x11B (AES).
  uint64_t affine[256];
};

// Constant-initialised (computed by a constexpr function), so it is ready
// before any static constructor runs.
extern const SimdTables kSimdTables;

#if defined(__x86_64__) || defined(__i386__)
void ssse3_add(uint8_t* dst, const uint8_t* src, size_t n);
void ssse3_addmul(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n);
void ssse3_scale(uint8_t* dst, uint8_t c, size_t n);
void ssse3_add_multi(uint8_t* dst, const uint8_t* const* srcs, size_t count,
                    size_t n, bool assign);
void ssse3_addmul_multi(uint8_t* dst, const uint8_t* const* srcs,
                        const uint8_t* coeffs, size_t count, size_t n);

void avx2_add(uint8_t* dst, const uint8_t* src, size_t n);
void avx2_addmul(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n);
void avx2_scale(uint8_t* dst, uint8_t c, size_t n);
void avx2_add_multi(uint8_t* dst, const uint8_t* const* srcs, size_t count,
                   size_t n, bool assign);
void avx2_hdpc(uint8_t* const* rows, size_t H, uint8_t* acc,
               const uint8_t* const* srcs, const uint32_t* h12,
               size_t columns, const uint8_t* last, size_t n);
void avx2_addmul_multi(uint8_t* dst, const uint8_t* const* srcs,
                       const uint8_t* coeffs, size_t count, size_t n);

void avx512_add(uint8_t* dst, const uint8_t* src, size_t n);
void avx512_addmul(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n);
void avx512_scale(uint8_t* dst, uint8_t c, size_t n);
void avx512_add_multi(uint8_t* dst, const uint8_t* const* srcs, size_t count,
                     size_t n, bool assign);
void avx512_addmul_multi(uint8_t* dst, const uint8_t* const* srcs,
                         const uint8_t* coeffs, size_t count, size_t n);
void avx512_hdpc(uint8_t* const* rows, size_t H, uint8_t* acc,
                 const uint8_t* const* srcs, const uint32_t* h12,
                 size_t columns, const uint8_t* last, size_t n);

// GFNI with 256-bit vectors (CPUs with GFNI but no AVX-512, e.g. Alder
// Lake) and with 512-bit vectors. XOR is the AVX2/AVX-512 one.
void gfni_avx2_addmul(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n);
void gfni_avx2_scale(uint8_t* dst, uint8_t c, size_t n);
void gfni_avx2_addmul_multi(uint8_t* dst, const uint8_t* const* srcs,
                            const uint8_t* coeffs, size_t count, size_t n);
void gfni_avx512_addmul(uint8_t* dst, const uint8_t* src, uint8_t c,
                        size_t n);
void gfni_avx512_scale(uint8_t* dst, uint8_t c, size_t n);
void gfni_avx512_addmul_multi(uint8_t* dst, const uint8_t* const* srcs,
                              const uint8_t* coeffs, size_t count, size_t n);
#endif

#if defined(__aarch64__)
void neon_add(uint8_t* dst, const uint8_t* src, size_t n);
void neon_addmul(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n);
void neon_scale(uint8_t* dst, uint8_t c, size_t n);
void neon_add_multi(uint8_t* dst, const uint8_t* const* srcs, size_t count,
                   size_t n, bool assign);
void neon_addmul_multi(uint8_t* dst, const uint8_t* const* srcs,
                       const uint8_t* coeffs, size_t count, size_t n);
#endif

}  // namespace kernels
}  // namespace gf256
}  // namespace fec
}  // namespace rqcast

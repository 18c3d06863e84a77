// GF(256) arithmetic of RFC 6330 §5.7: the octet field with reducing
// polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D), generator alpha = 2.
//
// Scalar helpers are inline; the bulk operations on symbols (add, addmul,
// scale) dispatch at run time to the best kernel the CPU offers (scalar,
// SSSE3, AVX2, AVX-512BW, GFNI). The scalar kernel is always available and
// the tests compare every other kernel against it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace rqcast {
namespace fec {
namespace gf256 {

// kExp[i] = alpha^i for i in [0, 510): doubled so that
// kExp[kLog[a] + kLog[b]] needs no reduction mod 255.
extern const uint8_t* const kExp;
// kLog[a] for a != 0; kLog[0] is unused.
extern const uint8_t* const kLog;

inline uint8_t mul(uint8_t a, uint8_t b) {
  if (a == 0 || b == 0) return 0;
  return kExp[kLog[a] + kLog[b]];
}
inline uint8_t inv(uint8_t a) {  // a != 0
  return kExp[255 - kLog[a]];
}
inline uint8_t div(uint8_t a, uint8_t b) {  // b != 0
  if (a == 0) return 0;
  return kExp[kLog[a] + 255 - kLog[b]];
}
// alpha^i for any i >= 0.
inline uint8_t exp(uint32_t i) { return kExp[i % 255]; }

// dst[i] ^= src[i]
void add(uint8_t* dst, const uint8_t* src, size_t n);
// dst[i] ^= c * src[i]   (c == 0: no-op; c == 1: add)
void addmul(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n);
// dst[i] = c * dst[i]
void scale(uint8_t* dst, uint8_t c, size_t n);
// dst[i] ^= sum over j < count of coeffs[j] * srcs[j][i]: several addmuls
// into one dst in a single pass over it (a row times a block of symbols).
// Zero coefficients are skipped; no src may overlap dst.
void addmul_multi(uint8_t* dst, const uint8_t* const* srcs,
                  const uint8_t* coeffs, size_t count, size_t n);

// dst[i] ^= srcs[0][i] ^ ... ^ srcs[count-1][i], one pass over dst (a
// binary row of the constraint matrix times a block of symbols).
// No src may overlap dst.
void add_multi(uint8_t* dst, const uint8_t* const* srcs, size_t count,
               size_t n);
// dst[i] = srcs[0][i] ^ ... ^ srcs[count-1][i] (zero when count == 0);
// dst is only written. No src may overlap dst.
void sum(uint8_t* dst, const uint8_t* const* srcs, size_t count, size_t n);

// The symbols of the H HDPC rows, [MT * GAMMA] times the symbols of the
// first K'+S columns (RFC 6330 §5.3.3.3), by the GAMMA recurrence
// (constraint_matrix.h): acc = 0; for each column c, acc = alpha * acc
// (c > 0) ^ srcs[c] (a null src adds nothing); then rows[h12[2c]] and
// rows[h12[2c+1]] ^= acc, except for the last column, where every
// rows[h] ^= last[h] * acc. rows start from zero (written, never read);
// acc ends with the final acc. The AVX2 kernel keeps acc and a strip of
// every row in registers / L1 and reads each source once per strip, where
// row-at-a-time ops would move four symbols per column.
void hdpc(uint8_t* const* rows, size_t H, uint8_t* acc,
          const uint8_t* const* srcs, const uint32_t* h12, size_t columns,
          const uint8_t* last, size_t n);

// Name of the kernel in use ("scalar", "ssse3", "avx2", "gfni_avx2",
// "avx512", "gfni" on x86; "scalar", "neon" on AArch64).
const char* kernel_name();
// Kernels this CPU can run, best last.
std::vector<const char*> available_kernels();
// Selects a kernel by name (tests, benchmarks); false if unavailable.
bool set_kernel(const char* name);

}  // namespace gf256
}  // namespace fec
}  // namespace rqcast

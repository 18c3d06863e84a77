// Internal: the kernel table behind gf256::add/addmul/scale.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace rqcast {
namespace fec {
namespace gf256 {
namespace kernels {

// Every kernel accepts any c, 0 and 1 included (the public functions in
// gf256.h shortcut those before calling one).
struct Kernel {
  const char* name;
  void (*add)(uint8_t* dst, const uint8_t* src, size_t n);
  void (*addmul)(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n);
  void (*scale)(uint8_t* dst, uint8_t c, size_t n);
  // dst ^= sum coeffs[j] * srcs[j]; any coefficients, including 0 and 1.
  void (*addmul_multi)(uint8_t* dst, const uint8_t* const* srcs,
                       const uint8_t* coeffs, size_t count, size_t n);
  // dst = (assign ? 0 : dst) ^ srcs[0] ^ ... ^ srcs[count-1], count >= 1,
  // in one pass over dst (the plan's fused row sums, encoding_plan.h).
  void (*add_multi)(uint8_t* dst, const uint8_t* const* srcs, size_t count,
                    size_t n, bool assign);
  // The symbols of the H HDPC rows (gf256::hdpc in gf256.h).
  void (*hdpc)(uint8_t* const* rows, size_t H, uint8_t* acc,
               const uint8_t* const* srcs, const uint32_t* h12,
               size_t columns, const uint8_t* last, size_t n);
};

void scalar_add(uint8_t* dst, const uint8_t* src, size_t n);
void scalar_addmul(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n);
void scalar_scale(uint8_t* dst, uint8_t c, size_t n);
void scalar_add_multi(uint8_t* dst, const uint8_t* const* srcs, size_t count,
                      size_t n, bool assign);
// Column by column over whole symbols with the scalar kernel: the
// reference for every hdpc kernel.
void scalar_hdpc(uint8_t* const* rows, size_t H, uint8_t* acc,
                 const uint8_t* const* srcs, const uint32_t* h12,
                 size_t columns, const uint8_t* last, size_t n);
// scalar_hdpc over bytes [i, n) of every symbol: the tail a SIMD hdpc
// leaves after its strips.
void scalar_hdpc_from(size_t i, uint8_t* const* rows, size_t H, uint8_t* acc,
                      const uint8_t* const* srcs, const uint32_t* h12,
                      size_t columns, const uint8_t* last, size_t n);
// The same with another kernel's add/scale/addmul (for kernels without a
// dedicated hdpc).
void generic_hdpc(const Kernel& k, uint8_t* const* rows, size_t H,
                  uint8_t* acc, const uint8_t* const* srcs,
                  const uint32_t* h12, size_t columns, const uint8_t* last,
                  size_t n);
// The reference: one scalar_addmul per source.
void scalar_addmul_multi(uint8_t* dst, const uint8_t* const* srcs,
                         const uint8_t* coeffs, size_t count, size_t n);

// SIMD kernels this CPU supports, in increasing order of preference
// (detected once, at first call). Defined in gf256_simd.cc.
const std::vector<const Kernel*>& simd_kernels();

}  // namespace kernels
}  // namespace gf256
}  // namespace fec
}  // namespace rqcast

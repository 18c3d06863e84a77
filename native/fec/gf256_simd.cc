// SIMD GF(256) kernels: the tables they share, CPU feature detection and
// the run-time kernel list. The kernels themselves live one instruction set
// per file (gf256_ssse3.cc, gf256_avx2.cc, gf256_avx512.cc, gf256_gfni.cc,
// gf256_neon.cc); they are compiled with per-function target attributes, not
// -m flags, so the addon runs on any x86-64 and uses what the CPU offers.
#include "fec/gf256_simd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace rqcast {
namespace fec {
namespace gf256 {
namespace kernels {
namespace {

// Carry-less multiply reduced by x^8 + x^4 + x^3 + x^2 + 1 (RFC 6330 §5.7),
// bit by bit, so the tables depend on nothing but the polynomial.
constexpr uint8_t field_mul(uint8_t a, uint8_t b) {
  unsigned x = a, r = 0;
  for (int i = 0; i < 8; ++i) {
    if (b & (1u << i)) r ^= x;
    x <<= 1;
    if (x & 0x100) x ^= 0x11D;
  }
  return static_cast<uint8_t>(r);
}

// Multiplication by c is linear over GF(2), so every table entry is a XOR
// of the eight products c * 2^j; computing those once per c keeps the
// constant evaluation small enough for every compiler's step limit (clang's
// default is 1M steps).
constexpr SimdTables make_tables() {
  SimdTables t{};
  for (unsigned c = 0; c < 256; ++c) {
    uint8_t col[8] = {};  // col[j] = c * 2^j
    for (unsigned j = 0; j < 8; ++j) {
      col[j] = field_mul(static_cast<uint8_t>(c),
                         static_cast<uint8_t>(1u << j));
    }
    for (unsigned i = 0; i < 16; ++i) {
      uint8_t lo = 0, hi = 0;
      for (unsigned j = 0; j < 4; ++j) {
        if (i & (1u << j)) {
          lo ^= col[j];
          hi ^= col[j + 4];
        }
      }
      t.nibble[c].lo[i] = lo;  // c * i
      t.nibble[c].hi[i] = hi;  // c * (i << 4)
    }
    // Column j of the matrix is c * 2^j; row i collects bit i of each
    // column. GF2P8AFFINEQB reads row i from byte 7 - i of the qword.
    uint64_t m = 0;
    for (unsigned i = 0; i < 8; ++i) {
      unsigned row = 0;
      for (unsigned j = 0; j < 8; ++j) row |= ((col[j] >> i) & 1u) << j;
      m |= static_cast<uint64_t>(row) << (8 * (7 - i));
    }
    t.affine[c] = m;
  }
  return t;
}

static_assert(field_mul(2, 0x80) == 0x1D, "reduction by 0x11D");
static_assert(make_tables().nibble[3].hi[1] == 0x30, "nibble table");
static_assert(make_tables().nibble[0x53].lo[0xB] == field_mul(0x53, 0xB),
              "nibble table by linearity");
static_assert(make_tables().affine[1] == 0x0102040810204080ull,
              "multiplication by 1 is the identity matrix");

}  // namespace

const SimdTables kSimdTables = make_tables();

namespace {

#if defined(__x86_64__) || defined(__i386__)

struct CpuFeatures {
  bool ssse3 = false;
  bool avx2 = false;
  bool avx512bw = false;  // with avx512f, and the OS saves ZMM/opmask state
  bool gfni = false;
};

uint64_t xcr0() {
  uint32_t lo, hi;
  // xgetbv with ECX = 0, spelled as bytes for old assemblers.
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

CpuFeatures detect() {
  CpuFeatures f;
  __builtin_cpu_init();
  f.ssse3 = __builtin_cpu_supports("ssse3");
  unsigned a = 0, b = 0, c = 0, d = 0;
  // The CPU having AVX is not enough: the OS must save the wider registers
  // on context switch (XCR0: SSE|AVX = 0x6; plus opmask|ZMM_Hi256|Hi16_ZMM
  // = 0xE0 for AVX-512). Checked here even though libgcc does it too, as
  // other runtimes' __builtin_cpu_supports may not.
  const bool osxsave = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE);
  const uint64_t xcr = osxsave ? xcr0() : 0;
  const bool os_avx = (xcr & 0x6) == 0x6;
  const bool os_avx512 = (xcr & 0xE6) == 0xE6;
  f.avx2 = os_avx && __builtin_cpu_supports("avx2");
  f.avx512bw = os_avx512 && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw");
  // GFNI: CPUID.(EAX=7, ECX=0):ECX bit 8.
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) f.gfni = (c >> 8) & 1u;
  return f;
}

void ssse3_hdpc(uint8_t* const* rows, size_t H, uint8_t* acc,
                const uint8_t* const* srcs, const uint32_t* h12,
                size_t columns, const uint8_t* last, size_t n);

const Kernel kSsse3 = {"ssse3", ssse3_add, ssse3_addmul, ssse3_scale,
                        ssse3_addmul_multi, ssse3_add_multi, ssse3_hdpc};
// Every CPU with GFNI-with-AVX also has AVX2, whose hdpc serves it; with
// AVX-512BW, avx512_hdpc.
const Kernel kAvx2 = {"avx2", avx2_add, avx2_addmul, avx2_scale,
                       avx2_addmul_multi, avx2_add_multi, avx2_hdpc};
const Kernel kGfniAvx2 = {"gfni_avx2", avx2_add, gfni_avx2_addmul,
                          gfni_avx2_scale, gfni_avx2_addmul_multi,
                          avx2_add_multi, avx2_hdpc};
const Kernel kAvx512 = {"avx512", avx512_add, avx512_addmul, avx512_scale,
                         avx512_addmul_multi, avx512_add_multi, avx512_hdpc};
const Kernel kGfni = {"gfni", avx512_add, gfni_avx512_addmul,
                      gfni_avx512_scale, gfni_avx512_addmul_multi,
                      avx512_add_multi, avx512_hdpc};

void ssse3_hdpc(uint8_t* const* rows, size_t H, uint8_t* acc,
                const uint8_t* const* srcs, const uint32_t* h12,
                size_t columns, const uint8_t* last, size_t n) {
  generic_hdpc(kSsse3, rows, H, acc, srcs, h12, columns, last, n);
}

std::vector<const Kernel*> supported() {
  const CpuFeatures f = detect();
  std::vector<const Kernel*> v;
  // Increasing preference. One GFNI instruction replaces two shuffles, two
  // ANDs and a shift per vector; see native/bench/gf256_bench.cc.
  if (f.ssse3) v.push_back(&kSsse3);
  if (f.avx2) v.push_back(&kAvx2);
  if (f.avx2 && f.gfni) v.push_back(&kGfniAvx2);
  if (f.avx512bw) v.push_back(&kAvx512);
  if (f.avx512bw && f.gfni) v.push_back(&kGfni);
  return v;
}

#elif defined(__aarch64__)

void neon_hdpc(uint8_t* const* rows, size_t H, uint8_t* acc,
               const uint8_t* const* srcs, const uint32_t* h12,
               size_t columns, const uint8_t* last, size_t n);

const Kernel kNeon = {"neon", neon_add, neon_addmul, neon_scale,
                       neon_addmul_multi, neon_add_multi, neon_hdpc};

void neon_hdpc(uint8_t* const* rows, size_t H, uint8_t* acc,
               const uint8_t* const* srcs, const uint32_t* h12,
               size_t columns, const uint8_t* last, size_t n) {
  generic_hdpc(kNeon, rows, H, acc, srcs, h12, columns, last, n);
}

// Advanced SIMD is part of the AArch64 base architecture.
std::vector<const Kernel*> supported() { return {&kNeon}; }

#else

std::vector<const Kernel*> supported() { return {}; }

#endif

}  // namespace

const std::vector<const Kernel*>& simd_kernels() {
  static const std::vector<const Kernel*> kernels = supported();
  return kernels;
}

}  // namespace kernels
}  // namespace gf256
}  // namespace fec
}  // namespace rqcast

// GF(256) tables and the scalar kernel; run-time kernel selection.
#include "fec/gf256.h"

#include <atomic>
#include <cstring>

#include "fec/gf256_kernels.h"

namespace rqcast {
namespace fec {
namespace gf256 {
namespace {

// Built at compile time, so other files' static constructors may use
// kExp/kLog safely (no initialisation-order dependency).
struct Tables {
  uint8_t exp[510] = {};
  uint8_t log[256] = {};
  constexpr Tables() {
    // RFC 6330 §5.7.3/§5.7.4: OCT_EXP and OCT_LOG follow from alpha = 2
    // and the polynomial 0x11D; derived here rather than retyped.
    unsigned x = 1;
    for (int i = 0; i < 255; ++i) {
      exp[i] = static_cast<uint8_t>(x);
      exp[i + 255] = static_cast<uint8_t>(x);
      log[x] = static_cast<uint8_t>(i);
      x <<= 1;
      if (x & 0x100) x ^= 0x11D;
    }
    log[0] = 0;
  }
};

constexpr Tables kTables{};

constexpr const Tables& tables() { return kTables; }

}  // namespace

const uint8_t* const kExp = kTables.exp;
const uint8_t* const kLog = kTables.log;

namespace kernels {

void scalar_add(uint8_t* dst, const uint8_t* src, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t a, b;
    std::memcpy(&a, dst + i, 8);
    std::memcpy(&b, src + i, 8);
    a ^= b;
    std::memcpy(dst + i, &a, 8);
  }
  for (; i < n; ++i) dst[i] ^= src[i];
}

void scalar_addmul(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n) {
  if (c == 0) return;  // log[0] is a placeholder; 0 * x is no alpha^k
  const Tables& t = tables();
  const unsigned lc = t.log[c];
  for (size_t i = 0; i < n; ++i) {
    const uint8_t s = src[i];
    if (s) dst[i] ^= t.exp[t.log[s] + lc];
  }
}

void scalar_scale(uint8_t* dst, uint8_t c, size_t n) {
  if (c == 0) {
    std::memset(dst, 0, n);
    return;
  }
  const Tables& t = tables();
  const unsigned lc = t.log[c];
  for (size_t i = 0; i < n; ++i) {
    const uint8_t s = dst[i];
    if (s) dst[i] = t.exp[t.log[s] + lc];
  }
}

void scalar_add_multi(uint8_t* dst, const uint8_t* const* srcs, size_t count,
                      size_t n, bool assign) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t a = 0, b;
    if (!assign) std::memcpy(&a, dst + i, 8);
    for (size_t j = 0; j < count; ++j) {
      std::memcpy(&b, srcs[j] + i, 8);
      a ^= b;
    }
    std::memcpy(dst + i, &a, 8);
  }
  for (; i < n; ++i) {
    uint8_t a = assign ? 0 : dst[i];
    for (size_t j = 0; j < count; ++j) a ^= srcs[j][i];
    dst[i] = a;
  }
}

void generic_hdpc(const Kernel& k, uint8_t* const* rows, size_t H,
                  uint8_t* acc, const uint8_t* const* srcs,
                  const uint32_t* h12, size_t columns, const uint8_t* last,
                  size_t n) {
  for (size_t h = 0; h < H; ++h) std::memset(rows[h], 0, n);
  std::memset(acc, 0, n);
  for (size_t c = 0; c < columns; ++c) {
    if (c > 0) k.scale(acc, 2, n);  // alpha (§5.7)
    if (srcs[c]) k.add(acc, srcs[c], n);
    if (c + 1 < columns) {
      k.add(rows[h12[2 * c]], acc, n);
      k.add(rows[h12[2 * c + 1]], acc, n);
    } else {
      for (size_t h = 0; h < H; ++h) k.addmul(rows[h], acc, last[h], n);
    }
  }
}

void scalar_addmul_multi(uint8_t* dst, const uint8_t* const* srcs,
                         const uint8_t* coeffs, size_t count, size_t n) {
  for (size_t j = 0; j < count; ++j) scalar_addmul(dst, srcs[j], coeffs[j], n);
}

void scalar_hdpc(uint8_t* const* rows, size_t H, uint8_t* acc,
                 const uint8_t* const* srcs, const uint32_t* h12,
                 size_t columns, const uint8_t* last, size_t n) {
  const Kernel k = {"scalar",         scalar_add,       scalar_addmul,
                    scalar_scale,     scalar_addmul_multi, scalar_add_multi,
                    nullptr};
  generic_hdpc(k, rows, H, acc, srcs, h12, columns, last, n);
}

void scalar_hdpc_from(size_t i, uint8_t* const* rows, size_t H, uint8_t* acc,
                      const uint8_t* const* srcs, const uint32_t* h12,
                      size_t columns, const uint8_t* last, size_t n) {
  std::vector<uint8_t*> r(H);
  std::vector<const uint8_t*> sv(columns);
  for (size_t h = 0; h < H; ++h) r[h] = rows[h] + i;
  for (size_t c = 0; c < columns; ++c) sv[c] = srcs[c] ? srcs[c] + i : nullptr;
  scalar_hdpc(r.data(), H, acc + i, sv.data(), h12, columns, last, n - i);
}

}  // namespace kernels

namespace {

const kernels::Kernel kScalar = {
    "scalar", kernels::scalar_add, kernels::scalar_addmul,
    kernels::scalar_scale, kernels::scalar_addmul_multi,
    kernels::scalar_add_multi, kernels::scalar_hdpc};

// Chosen once; set_kernel() may switch it (tests, benchmarks). Atomic so
// that concurrent first calls from worker threads are well defined.
std::atomic<const kernels::Kernel*> g_kernel{nullptr};

const kernels::Kernel* best_kernel() {
  const kernels::Kernel* best = &kScalar;
  for (const kernels::Kernel* k : kernels::simd_kernels()) best = k;
  return best;
}

inline const kernels::Kernel& current() {
  const kernels::Kernel* k = g_kernel.load(std::memory_order_acquire);
  if (!k) {
    k = best_kernel();
    g_kernel.store(k, std::memory_order_release);
  }
  return *k;
}

}  // namespace

void add(uint8_t* dst, const uint8_t* src, size_t n) {
  current().add(dst, src, n);
}

void addmul(uint8_t* dst, const uint8_t* src, uint8_t c, size_t n) {
  if (c == 0) return;
  if (c == 1) return current().add(dst, src, n);
  current().addmul(dst, src, c, n);
}

void scale(uint8_t* dst, uint8_t c, size_t n) {
  if (c == 1) return;
  if (c == 0) {
    std::memset(dst, 0, n);
    return;
  }
  current().scale(dst, c, n);
}

void addmul_multi(uint8_t* dst, const uint8_t* const* srcs,
                  const uint8_t* coeffs, size_t count, size_t n) {
  // Drop zero coefficients so the kernel reads only sources that count;
  // batches bound the copies on the stack.
  constexpr size_t kBatch = 32;
  const uint8_t* batch_srcs[kBatch];
  uint8_t batch_coeffs[kBatch];
  const kernels::Kernel& k = current();
  size_t m = 0;
  for (size_t j = 0; j < count; ++j) {
    if (coeffs[j] == 0) continue;
    batch_srcs[m] = srcs[j];
    batch_coeffs[m] = coeffs[j];
    if (++m == kBatch) {
      k.addmul_multi(dst, batch_srcs, batch_coeffs, m, n);
      m = 0;
    }
  }
  if (m == 1) return addmul(dst, batch_srcs[0], batch_coeffs[0], n);
  if (m > 0) k.addmul_multi(dst, batch_srcs, batch_coeffs, m, n);
}

void add_multi(uint8_t* dst, const uint8_t* const* srcs, size_t count,
               size_t n) {
  if (count == 0) return;
  current().add_multi(dst, srcs, count, n, false);
}

void sum(uint8_t* dst, const uint8_t* const* srcs, size_t count, size_t n) {
  if (count == 0) {
    std::memset(dst, 0, n);
    return;
  }
  current().add_multi(dst, srcs, count, n, true);
}

void hdpc(uint8_t* const* rows, size_t H, uint8_t* acc,
          const uint8_t* const* srcs, const uint32_t* h12, size_t columns,
          const uint8_t* last, size_t n) {
  if (columns == 0) {
    for (size_t h = 0; h < H; ++h) std::memset(rows[h], 0, n);
    std::memset(acc, 0, n);
    return;
  }
  current().hdpc(rows, H, acc, srcs, h12, columns, last, n);
}

const char* kernel_name() { return current().name; }

std::vector<const char*> available_kernels() {
  std::vector<const char*> names{kScalar.name};
  for (const kernels::Kernel* k : kernels::simd_kernels()) {
    names.push_back(k->name);
  }
  return names;
}

bool set_kernel(const char* name) {
  if (std::strcmp(name, kScalar.name) == 0) {
    g_kernel = &kScalar;
    return true;
  }
  for (const kernels::Kernel* k : kernels::simd_kernels()) {
    if (std::strcmp(name, k->name) == 0) {
      g_kernel = k;
      return true;
    }
  }
  return false;
}

}  // namespace gf256
}  // namespace fec
}  // namespace rqcast

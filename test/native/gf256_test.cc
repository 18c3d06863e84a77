// GF(256) of RFC 6330 §5.7: the scalar helpers against a bitwise
// carry-less multiply mod 0x11D, and every kernel this CPU can run against
// that reference and against the scalar kernel, over lengths that exercise
// every vector width's main loop and tail, misaligned pointers and all 256
// constants. Prints the kernels tested; exits non-zero on any failure.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "fec/gf256.h"
#include "fec/gf256_kernels.h"

#include "check.h"

namespace gf = rqcast::fec::gf256;
namespace kn = rqcast::fec::gf256::kernels;

namespace {

// Shift-and-add multiply, reducing by x^8 + x^4 + x^3 + x^2 + 1.
uint8_t ref_mul(uint8_t a, uint8_t b) {
  unsigned x = a, r = 0;
  for (int i = 0; i < 8; ++i) {
    if (b & (1u << i)) r ^= x;
    x <<= 1;
    if (x & 0x100) x ^= 0x11D;
  }
  return static_cast<uint8_t>(r);
}

struct RefTable {
  uint8_t m[256][256];
  RefTable() {
    for (int a = 0; a < 256; ++a)
      for (int b = 0; b < 256; ++b)
        m[a][b] = ref_mul(static_cast<uint8_t>(a), static_cast<uint8_t>(b));
  }
};
const RefTable& ref() {
  static const RefTable t;
  return t;
}

std::string str(const char* kernel, const char* op, int c, size_t n,
                 size_t dst_off, size_t src_off) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s %s c=%d n=%zu dst+%zu src+%zu", kernel,
                op, c, n, dst_off, src_off);
  return buf;
}

void test_field() {
  const RefTable& r = ref();
  bool mul_ok = true, comm_ok = true;
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const uint8_t ua = static_cast<uint8_t>(a), ub = static_cast<uint8_t>(b);
      mul_ok &= gf::mul(ua, ub) == r.m[a][b];
      comm_ok &= gf::mul(ua, ub) == gf::mul(ub, ua);
    }
  }
  CHECK_MSG(mul_ok, "mul == carry-less multiply mod 0x11D, all pairs");
  CHECK_MSG(comm_ok, "mul commutative");

  bool inv_ok = true, div_ok = true, div_inv_ok = true;
  for (int a = 1; a < 256; ++a) {
    const uint8_t ua = static_cast<uint8_t>(a);
    inv_ok &= r.m[a][gf::inv(ua)] == 1;
    for (int b = 0; b < 256; ++b) {
      const uint8_t ub = static_cast<uint8_t>(b);
      div_ok &= gf::div(r.m[b][a], ua) == ub;
      div_inv_ok &= gf::div(ub, ua) == r.m[b][gf::inv(ua)];
    }
  }
  CHECK_MSG(inv_ok, "a * inv(a) == 1 for all a != 0");
  CHECK_MSG(div_ok, "div(a * b, b) == a for all a, b != 0");
  CHECK_MSG(div_inv_ok, "div(a, b) == a * inv(b)");

  // exp(i) == alpha^i, alpha = 2, over more than one period; kExp doubled.
  bool exp_ok = true, log_ok = true;
  uint8_t p = 1;
  for (uint32_t i = 0; i < 600; ++i) {
    exp_ok &= gf::exp(i) == p;
    if (i < 510) exp_ok &= gf::kExp[i] == p;
    if (i < 255) log_ok &= gf::kLog[p] == i;
    p = r.m[p][2];
  }
  CHECK_MSG(exp_ok, "exp(i) == 2^i (and kExp doubled to 510)");
  CHECK_MSG(log_ok, "kLog inverts kExp on [0, 255)");
  CHECK_MSG(gf::exp(255) == 1 && gf::exp(8) == 0x1D && gf::exp(9) == 0x3A,
            "OCT_EXP[8] = 29, OCT_EXP[9] = 58, alpha^255 = 1");

  // Associativity and distributivity on random triples.
  std::mt19937 rng(6330);
  bool assoc_ok = true, dist_ok = true;
  for (int t = 0; t < 200000; ++t) {
    const uint8_t a = rng(), b = rng(), c = rng();
    assoc_ok &= gf::mul(gf::mul(a, b), c) == gf::mul(a, gf::mul(b, c));
    dist_ok &= gf::mul(a, b ^ c) == (gf::mul(a, b) ^ gf::mul(a, c));
  }
  CHECK_MSG(assoc_ok, "mul associative");
  CHECK_MSG(dist_ok, "mul distributes over add (xor)");
}

// A buffer of n bytes at a chosen misalignment with guard bytes both sides,
// so writes outside [0, n) are caught.
class Guarded {
 public:
  static constexpr size_t kGuard = 80;
  static constexpr uint8_t kCanary = 0xA5;
  Guarded(size_t n, size_t offset) : n_(n), off_(offset) {
    mem_.resize(n + offset + 2 * kGuard + 64);
    base_ = 64 - reinterpret_cast<uintptr_t>(mem_.data()) % 64;
    std::memset(mem_.data(), kCanary, mem_.size());
  }
  uint8_t* data() { return mem_.data() + base_ + kGuard + off_; }
  bool guards_intact() const {
    const uint8_t* p = mem_.data() + base_ + off_;
    for (size_t i = 0; i < kGuard; ++i) {
      if (p[i] != kCanary || p[kGuard + n_ + i] != kCanary) return false;
    }
    return true;
  }

 private:
  std::vector<uint8_t> mem_;
  size_t n_, off_, base_;
};

void fill(uint8_t* p, size_t n, std::mt19937& rng) {
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(rng());
}

const size_t kLengths[] = {0,    1,    15,   16,   17,       31,  32,
                           33,   63,   64,   65,   127,      128, 129,
                           255,  256,  257,  300,  1023,     1024, 1025,
                           1280, 1283, 1345, 2048, 4096 + 7};
const size_t kOffsets[][2] = {{0, 0}, {1, 0}, {0, 3}, {5, 13}, {63, 1}};

void test_kernel(const kn::Kernel& k, const kn::Kernel& scalar) {
  const RefTable& r = ref();
  std::mt19937 rng(0x11D);
  for (size_t n : kLengths) {
    for (const auto& off : kOffsets) {
      Guarded src(n, off[1]), dst(n, off[0]), want(n, 0), base(n, 0);
      fill(src.data(), n, rng);
      fill(base.data(), n, rng);
      const uint8_t* s = src.data();
      uint8_t* d = dst.data();
      uint8_t* w = want.data();

      // add
      std::memcpy(d, base.data(), n);
      k.add(d, s, n);
      bool ok = true;
      for (size_t i = 0; i < n; ++i) ok &= d[i] == (base.data()[i] ^ s[i]);
      CHECK_MSG(ok && dst.guards_intact() && src.guards_intact(),
                "%s", str(k.name, "add", -1, n, off[0], off[1]).c_str());

      for (int c = 0; c < 256; ++c) {
        const uint8_t uc = static_cast<uint8_t>(c);
        // addmul against the reference for every c ...
        std::memcpy(d, base.data(), n);
        k.addmul(d, s, uc, n);
        ok = true;
        for (size_t i = 0; i < n; ++i) {
          ok &= d[i] == (base.data()[i] ^ r.m[c][s[i]]);
        }
        // ... and against the scalar kernel.
        std::memcpy(w, base.data(), n);
        scalar.addmul(w, s, uc, n);
        ok &= n == 0 || std::memcmp(d, w, n) == 0;
        CHECK_MSG(ok && dst.guards_intact(),
                  "%s", str(k.name, "addmul", c, n, off[0], off[1]).c_str());

        std::memcpy(d, s, n);
        k.scale(d, uc, n);
        ok = true;
        for (size_t i = 0; i < n; ++i) ok &= d[i] == r.m[c][s[i]];
        std::memcpy(w, s, n);
        scalar.scale(w, uc, n);
        ok &= n == 0 || std::memcmp(d, w, n) == 0;
        CHECK_MSG(ok && dst.guards_intact(),
                  "%s", str(k.name, "scale", c, n, off[0], off[1]).c_str());
      }
    }
  }
}

// addmul_multi against a sum of reference products, and against the scalar
// reference, for source counts around the unrolled block and coefficient
// sets with zeros and ones.
void test_kernel_multi(const kn::Kernel& k) {
  const RefTable& r = ref();
  std::mt19937 rng(6330);
  const size_t kCounts[] = {0, 1, 2, 3, 5, 8, 33};
  const size_t kMaxCount = 33;
  for (size_t n : kLengths) {
    for (const auto& off : kOffsets) {
      std::vector<Guarded> srcs;
      srcs.reserve(kMaxCount);
      for (size_t j = 0; j < kMaxCount; ++j) {
        srcs.emplace_back(n, (off[1] + 7 * j) % 64);
        fill(srcs.back().data(), n, rng);
      }
      std::vector<const uint8_t*> ptrs;
      for (Guarded& g : srcs) ptrs.push_back(g.data());
      Guarded dst(n, off[0]), want(n, 0), base(n, 0);
      fill(base.data(), n, rng);
      for (size_t count : kCounts) {
        for (int trial = 0; trial < 4; ++trial) {
          std::vector<uint8_t> coeffs(count);
          for (auto& c : coeffs) {
            // Some zeros and ones among random constants.
            const unsigned x = rng() % 8;
            c = x == 0 ? 0 : x == 1 ? 1 : static_cast<uint8_t>(rng());
          }
          uint8_t* d = dst.data();
          std::memcpy(d, base.data(), n);
          k.addmul_multi(d, ptrs.data(), coeffs.data(), count, n);
          bool ok = true;
          for (size_t i = 0; i < n; ++i) {
            uint8_t v = base.data()[i];
            for (size_t j = 0; j < count; ++j) v ^= r.m[coeffs[j]][ptrs[j][i]];
            ok &= d[i] == v;
          }
          uint8_t* w = want.data();
          std::memcpy(w, base.data(), n);
          kn::scalar_addmul_multi(w, ptrs.data(), coeffs.data(), count, n);
          ok &= n == 0 || std::memcmp(d, w, n) == 0;
          char what[64];
          std::snprintf(what, sizeof what, "addmul_multi count=%zu", count);
          CHECK_MSG(ok && dst.guards_intact(),
                    "%s", str(k.name, what, -1, n, off[0], off[1]).c_str());
        }
      }
    }
  }
}

// add_multi (dst ^= XOR of sources, or dst = XOR of sources) against a
// byte-wise reference and against the scalar kernel, for source counts
// around the unrolled block, both modes, every length and alignment.
void test_kernel_add_multi(const kn::Kernel& k) {
  std::mt19937 rng(5);
  const size_t kCounts[] = {1, 2, 3, 7, 8, 40};
  const size_t kMaxCount = 40;
  for (size_t n : kLengths) {
    for (const auto& off : kOffsets) {
      std::vector<Guarded> srcs;
      srcs.reserve(kMaxCount);
      for (size_t j = 0; j < kMaxCount; ++j) {
        srcs.emplace_back(n, (off[1] + 5 * j) % 64);
        fill(srcs.back().data(), n, rng);
      }
      std::vector<const uint8_t*> ptrs;
      for (Guarded& g : srcs) ptrs.push_back(g.data());
      Guarded dst(n, off[0]), want(n, 0), base(n, 0);
      fill(base.data(), n, rng);
      for (size_t count : kCounts) {
        for (bool assign : {false, true}) {
          uint8_t* d = dst.data();
          std::memcpy(d, base.data(), n);
          k.add_multi(d, ptrs.data(), count, n, assign);
          bool ok = true;
          for (size_t i = 0; i < n; ++i) {
            uint8_t v = assign ? 0 : base.data()[i];
            for (size_t j = 0; j < count; ++j) v ^= ptrs[j][i];
            ok &= d[i] == v;
          }
          uint8_t* w = want.data();
          std::memcpy(w, base.data(), n);
          kn::scalar_add_multi(w, ptrs.data(), count, n, assign);
          ok &= n == 0 || std::memcmp(d, w, n) == 0;
          char what[64];
          std::snprintf(what, sizeof what, "add_multi count=%zu assign=%d",
                        count, int(assign));
          CHECK_MSG(ok && dst.guards_intact(),
                    "%s", str(k.name, what, -1, n, off[0], off[1]).c_str());
        }
      }
    }
  }
}

// hdpc against the scalar reference (itself built from the scalar kernel's
// add/scale/addmul, tested above): shapes with one column, few and many,
// null sources, every length (the AVX2 kernel works in 128-byte strips and
// hands the tail to the scalar code).
void test_kernel_hdpc(const kn::Kernel& k) {
  std::mt19937 rng(16);
  for (size_t n : kLengths) {
    for (size_t columns : {1, 2, 7, 150}) {
      const size_t H = 1 + rng() % 16;
      std::vector<std::vector<uint8_t>> src(columns, std::vector<uint8_t>(n));
      std::vector<const uint8_t*> srcs(columns);
      std::vector<uint32_t> h12(2 * columns);
      for (size_t c = 0; c < columns; ++c) {
        fill(src[c].data(), n, rng);
        srcs[c] = rng() % 4 == 0 ? nullptr : src[c].data();
        h12[2 * c] = rng() % H;
        h12[2 * c + 1] = (h12[2 * c] + 1 + rng() % (H > 1 ? H - 1 : 1)) % H;
      }
      std::vector<uint8_t> last;
      for (size_t h = 0; h < H; ++h) {
        last.push_back(gf::exp(static_cast<uint32_t>(h)));
      }
      std::vector<Guarded> got, want;
      for (size_t h = 0; h < H; ++h) {
        got.emplace_back(n, h % 64);
        want.emplace_back(n, 0);
        fill(got.back().data(), n, rng);  // rows are written, not read
      }
      Guarded got_acc(n, 7), want_acc(n, 0);
      std::vector<uint8_t*> g, w;
      for (size_t h = 0; h < H; ++h) {
        g.push_back(got[h].data());
        w.push_back(want[h].data());
      }
      k.hdpc(g.data(), H, got_acc.data(), srcs.data(), h12.data(), columns,
             last.data(), n);
      kn::scalar_hdpc(w.data(), H, want_acc.data(), srcs.data(), h12.data(),
                      columns, last.data(), n);
      bool ok = got_acc.guards_intact() &&
                (n == 0 ||
                 std::memcmp(got_acc.data(), want_acc.data(), n) == 0);
      for (size_t h = 0; h < H; ++h) {
        ok &= got[h].guards_intact() &&
              (n == 0 || std::memcmp(g[h], w[h], n) == 0);
      }
      char what[64];
      std::snprintf(what, sizeof what, "hdpc H=%zu columns=%zu", H, columns);
      CHECK_MSG(ok, "%s", str(k.name, what, -1, n, 0, 0).c_str());
    }
  }
}

// The public entry points with each kernel selected, including the c == 0
// and c == 1 shortcuts they take before reaching a kernel.
void test_dispatch(const char* name) {
  CHECK_MSG(gf::set_kernel(name), "set_kernel %s", name);
  CHECK_MSG(std::strcmp(gf::kernel_name(), name) == 0,
            "kernel_name after set_kernel %s", name);
  const RefTable& r = ref();
  std::mt19937 rng(2);
  const size_t n = 1283;
  std::vector<uint8_t> s(n), d(n), base(n);
  fill(s.data(), n, rng);
  fill(base.data(), n, rng);
  for (int c : {0, 1, 2, 0x8E, 255}) {
    const uint8_t uc = static_cast<uint8_t>(c);
    d = base;
    gf::addmul(d.data(), s.data(), uc, n);
    bool ok = true;
    for (size_t i = 0; i < n; ++i) ok &= d[i] == (base[i] ^ r.m[c][s[i]]);
    CHECK_MSG(ok, "%s", str(name, "gf256::addmul", c, n, 0, 0).c_str());
    d = base;
    gf::scale(d.data(), uc, n);
    ok = true;
    for (size_t i = 0; i < n; ++i) ok &= d[i] == r.m[c][base[i]];
    CHECK_MSG(ok, "%s", str(name, "gf256::scale", c, n, 0, 0).c_str());
  }
  d = base;
  gf::add(d.data(), s.data(), n);
  bool ok = true;
  for (size_t i = 0; i < n; ++i) ok &= d[i] == (base[i] ^ s[i]);
  CHECK_MSG(ok, "%s", str(name, "gf256::add", -1, n, 0, 0).c_str());
  {
    const uint8_t* two[2] = {s.data(), base.data()};
    d = base;
    gf::add_multi(d.data(), two, 2, n);
    ok = true;
    for (size_t i = 0; i < n; ++i) ok &= d[i] == s[i];
    CHECK_MSG(ok, "%s", str(name, "gf256::add_multi", -1, n, 0, 0).c_str());
    gf::sum(d.data(), two, 2, n);
    ok = true;
    for (size_t i = 0; i < n; ++i) ok &= d[i] == (s[i] ^ base[i]);
    CHECK_MSG(ok, "%s", str(name, "gf256::sum", -1, n, 0, 0).c_str());
    gf::sum(d.data(), two, 0, n);
    ok = true;
    for (size_t i = 0; i < n; ++i) ok &= d[i] == 0;
    CHECK_MSG(ok, "%s", str(name, "gf256::sum of none", -1, n, 0, 0).c_str());
  }

  // addmul_multi drops zero coefficients and works in batches of 32: try
  // counts that leave 0, 1 and several sources in the last batch.
  std::vector<std::vector<uint8_t>> srcs(70, std::vector<uint8_t>(n));
  std::vector<const uint8_t*> ptrs;
  for (auto& v : srcs) {
    fill(v.data(), n, rng);
    ptrs.push_back(v.data());
  }
  for (size_t count : {0, 1, 2, 32, 33, 34, 64, 65, 70}) {
    for (int zeros : {0, 1}) {
      std::vector<uint8_t> coeffs(count);
      for (size_t j = 0; j < count; ++j) {
        coeffs[j] = zeros && j % 3 == 0 ? 0 : static_cast<uint8_t>(rng());
      }
      d = base;
      gf::addmul_multi(d.data(), ptrs.data(), coeffs.data(), count, n);
      ok = true;
      for (size_t i = 0; i < n; ++i) {
        uint8_t v = base[i];
        for (size_t j = 0; j < count; ++j) v ^= r.m[coeffs[j]][ptrs[j][i]];
        ok &= d[i] == v;
      }
      char what[64];
      std::snprintf(what, sizeof what, "gf256::addmul_multi count=%zu%s",
                    count, zeros ? " with zeros" : "");
      CHECK_MSG(ok, "%s", str(name, what, -1, n, 0, 0).c_str());
    }
  }
}

}  // namespace

int main() {
  g_check_print_limit = 20;
  const std::string best = gf::kernel_name();
  test_field();

  const kn::Kernel scalar = {"scalar",         kn::scalar_add,
                             kn::scalar_addmul, kn::scalar_scale,
                             kn::scalar_addmul_multi, kn::scalar_add_multi,
                             kn::scalar_hdpc};
  std::vector<const kn::Kernel*> all{&scalar};
  for (const kn::Kernel* k : kn::simd_kernels()) all.push_back(k);

  const std::vector<const char*> names = gf::available_kernels();
  CHECK_MSG(names.size() == all.size(),
            "available_kernels() lists every kernel");
  CHECK_MSG(best == all.back()->name, "default kernel is the best available");
  CHECK_MSG(!gf::set_kernel("no-such-kernel"),
            "set_kernel rejects unknown names");

  std::printf("gf256: kernels tested:");
  for (const kn::Kernel* k : all) {
    std::printf(" %s", k->name);
    std::fflush(stdout);
    test_kernel(*k, scalar);
    test_kernel_multi(*k);
    test_kernel_add_multi(*k);
    test_kernel_hdpc(*k);
    test_dispatch(k->name);
  }
  std::printf(" (default %s)\n", best.c_str());
  gf::set_kernel(best.c_str());

  const int checks = g_checks, failures = g_failures;
  std::printf("gf256: %d checks, %d failed\n", checks, failures);
  std::printf("%d passed, %d failed\n", checks - failures, failures);
  return g_failures == 0 ? 0 : 1;
}

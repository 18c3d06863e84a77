// Throughput of each GF(256) kernel this CPU can run, per operation, at a
// symbol of 1280 bytes (a typical RaptorQ symbol in one UDP datagram) and
// at 64 KiB (larger than L1: memory-bound). GB/s counts bytes of dst per
// second (1 GB = 1e9 B), or bytes of source for the 8-source rows
// ("addmul*8": eight addmul calls; "multi8": one addmul_multi); the ratio is
// against the scalar kernel measured in the same run, and "fused" is multi8
// over addmul*8 for the same kernel. Ends with one JSON line.
//
//   g++ -std=c++17 -O3 -Inative native/bench/gf256_bench.cc native/fec/gf256*.cc
//   ./a.out [seconds-per-case, default 0.1]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "fec/gf256.h"
#include "fec/gf256_kernels.h"

namespace kn = rqcast::fec::gf256::kernels;

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kSources = 8;

struct Buffers {
  uint8_t* dst;
  const uint8_t* const* srcs;  // kSources of them; single-source ops use [0]
  uint8_t coeffs[kSources];
};

struct Op {
  const char* name;
  size_t sources;  // source bytes per dst byte, for GB/s
  void (*run)(const kn::Kernel& k, const Buffers& b, size_t n, size_t iters);
};

void run_add(const kn::Kernel& k, const Buffers& b, size_t n, size_t iters) {
  for (size_t i = 0; i < iters; ++i) k.add(b.dst, b.srcs[0], n);
}
void run_addmul(const kn::Kernel& k, const Buffers& b, size_t n,
                size_t iters) {
  // Constants 2..255 in turn (0 and 1 never reach a kernel).
  for (size_t i = 0; i < iters; ++i) {
    k.addmul(b.dst, b.srcs[0], static_cast<uint8_t>(2 + i % 254), n);
  }
}
void run_scale(const kn::Kernel& k, const Buffers& b, size_t n,
               size_t iters) {
  for (size_t i = 0; i < iters; ++i) {
    k.scale(b.dst, static_cast<uint8_t>(2 + i % 254), n);
  }
}
// kSources addmuls into one dst: one call each, then one fused call.
void run_addmul_x8(const kn::Kernel& k, const Buffers& b, size_t n,
                   size_t iters) {
  for (size_t i = 0; i < iters; ++i) {
    for (size_t j = 0; j < kSources; ++j) {
      k.addmul(b.dst, b.srcs[j], b.coeffs[j], n);
    }
  }
}
void run_multi_x8(const kn::Kernel& k, const Buffers& b, size_t n,
                  size_t iters) {
  for (size_t i = 0; i < iters; ++i) {
    k.addmul_multi(b.dst, b.srcs, b.coeffs, kSources, n);
  }
}

const Op kOps[] = {{"add", 1, run_add},
                   {"addmul", 1, run_addmul},
                   {"scale", 1, run_scale},
                   {"addmul*8", kSources, run_addmul_x8},
                   {"multi8", kSources, run_multi_x8}};
constexpr int kNumOps = sizeof kOps / sizeof kOps[0];
const size_t kSizes[] = {1280, 64 * 1024};

// Best of three timed runs of about `seconds` each, in GB/s of source
// bytes (dst bytes for scale).
double measure(const kn::Kernel& k, const Op& op, size_t n, double seconds) {
  std::mt19937 rng(7);
  std::vector<std::vector<uint8_t>> src(kSources, std::vector<uint8_t>(n));
  std::vector<uint8_t> dst(n);
  std::vector<const uint8_t*> ptrs;
  for (auto& v : src) {
    for (auto& x : v) x = static_cast<uint8_t>(rng());
    ptrs.push_back(v.data());
  }
  for (auto& x : dst) x = static_cast<uint8_t>(rng());
  Buffers b{dst.data(), ptrs.data(), {}};
  for (auto& c : b.coeffs) c = static_cast<uint8_t>(2 + rng() % 254);
  // Calibrate the iteration count, warming caches and clocks on the way.
  size_t iters = 16;
  for (;;) {
    const auto t0 = Clock::now();
    op.run(k, b, n, iters);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    if (dt > seconds / 4) {
      iters = static_cast<size_t>(iters * seconds / dt) + 1;
      break;
    }
    iters *= 4;
  }
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    op.run(k, b, n, iters);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    const double gbps =
        static_cast<double>(n) * op.sources * iters / dt / 1e9;
    if (gbps > best) best = gbps;
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 0.1;
  const kn::Kernel scalar = {"scalar",         kn::scalar_add,
                             kn::scalar_addmul, kn::scalar_scale,
                             kn::scalar_addmul_multi, kn::scalar_add_multi,
                             kn::scalar_hdpc};
  std::vector<const kn::Kernel*> kernels{&scalar};
  for (const kn::Kernel* k : kn::simd_kernels()) kernels.push_back(k);

  std::printf("gf256 kernels, GB/s (x scalar), default: %s\n",
              rqcast::fec::gf256::kernel_name());
  std::printf("%-10s %-9s %16s %16s\n", "kernel", "op", "1280 B", "64 KiB");
  std::string json = "{\"bench\":\"gf256\",\"unit\":\"GB/s\",\"results\":[";
  double base[kNumOps][2] = {};
  double got[kNumOps][2] = {};
  bool first = true;
  for (const kn::Kernel* k : kernels) {
    for (int o = 0; o < kNumOps; ++o) {
      std::printf("%-10s %-9s", k->name, kOps[o].name);
      for (int s = 0; s < 2; ++s) {
        const double g = measure(*k, kOps[o], kSizes[s], seconds);
        if (k == &scalar) base[o][s] = g;
        got[o][s] = g;
        std::printf("  %6.2f (x%5.1f)", g, g / base[o][s]);
        std::fflush(stdout);
        char buf[200];
        std::snprintf(buf, sizeof buf,
                      "%s{\"kernel\":\"%s\",\"op\":\"%s\",\"bytes\":%zu,"
                      "\"gbps\":%.3f,\"vs_scalar\":%.2f}",
                      first ? "" : ",", k->name, kOps[o].name, kSizes[s], g,
                      g / base[o][s]);
        json += buf;
        first = false;
      }
      std::printf("\n");
    }
    // The fused op against the same kernel's one-call-per-source loop.
    std::printf("%-10s %-9s  %6.2fx %16.2fx\n", k->name, "fused",
                got[kNumOps - 1][0] / got[kNumOps - 2][0],
                got[kNumOps - 1][1] / got[kNumOps - 2][1]);
  }
  json += "]}";
  std::printf("%s\n", json.c_str());
  return 0;
}

// Throughput of each GF(256) kernel this CPU can run, per operation, at a
// symbol of 1280 bytes (a typical RaptorQ symbol in one UDP datagram) and
// at 64 KiB (larger than L1: memory-bound). GB/s counts bytes of dst per
// second (1 GB = 1e9 B); the ratio is against the scalar kernel measured in
// the same run. Ends with one JSON line.
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

struct Op {
  const char* name;
  // Runs the op `iters` times on n bytes.
  void (*run)(const kn::Kernel& k, uint8_t* dst, const uint8_t* src,
              size_t n, size_t iters);
};

void run_add(const kn::Kernel& k, uint8_t* dst, const uint8_t* src, size_t n,
             size_t iters) {
  for (size_t i = 0; i < iters; ++i) k.add(dst, src, n);
}
void run_addmul(const kn::Kernel& k, uint8_t* dst, const uint8_t* src,
                size_t n, size_t iters) {
  // Constants 2..255 in turn (0 and 1 never reach a kernel).
  for (size_t i = 0; i < iters; ++i) {
    k.addmul(dst, src, static_cast<uint8_t>(2 + i % 254), n);
  }
}
void run_scale(const kn::Kernel& k, uint8_t* dst, const uint8_t*, size_t n,
               size_t iters) {
  for (size_t i = 0; i < iters; ++i) {
    k.scale(dst, static_cast<uint8_t>(2 + i % 254), n);
  }
}

const Op kOps[] = {{"add", run_add}, {"addmul", run_addmul},
                   {"scale", run_scale}};
const size_t kSizes[] = {1280, 64 * 1024};

// Best of three timed runs of about `seconds` each, in GB/s.
double measure(const kn::Kernel& k, const Op& op, size_t n, double seconds) {
  std::vector<uint8_t> src(n + 64), dst(n + 64);
  std::mt19937 rng(7);
  for (auto& b : src) b = static_cast<uint8_t>(rng());
  for (auto& b : dst) b = static_cast<uint8_t>(rng());
  // Calibrate the iteration count, warming caches and clocks on the way.
  size_t iters = 16;
  for (;;) {
    const auto t0 = Clock::now();
    op.run(k, dst.data(), src.data(), n, iters);
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
    op.run(k, dst.data(), src.data(), n, iters);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    const double gbps = static_cast<double>(n) * iters / dt / 1e9;
    if (gbps > best) best = gbps;
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 0.1;
  const kn::Kernel scalar = {"scalar", kn::scalar_add, kn::scalar_addmul,
                             kn::scalar_scale};
  std::vector<const kn::Kernel*> kernels{&scalar};
  for (const kn::Kernel* k : kn::simd_kernels()) kernels.push_back(k);

  std::printf("gf256 kernels, GB/s of dst (x scalar), default: %s\n",
              rqcast::fec::gf256::kernel_name());
  std::printf("%-10s %-7s %16s %16s\n", "kernel", "op", "1280 B", "64 KiB");
  std::string json = "{\"bench\":\"gf256\",\"unit\":\"GB/s\",\"results\":[";
  double base[3][2] = {};
  bool first = true;
  for (const kn::Kernel* k : kernels) {
    for (int o = 0; o < 3; ++o) {
      std::printf("%-10s %-7s", k->name, kOps[o].name);
      for (int s = 0; s < 2; ++s) {
        const double g = measure(*k, kOps[o], kSizes[s], seconds);
        if (k == &scalar) base[o][s] = g;
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
  }
  json += "]}";
  std::printf("%s\n", json.c_str());
  return 0;
}

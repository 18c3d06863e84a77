// Block codec throughput of the C++ core alone (no binding, no JS), with
// the solver (matrix) vs symbol-arithmetic split, for profiling:
//
//   make -C native bench && native/out/bench/codec_bench [K...] [--reps N]
//   perf record -g native/out/bench/codec_bench 10000
//
// Encode = BlockEncoder::Create (plan cached for K' after the first rep)
// + every source symbol + 20% repair symbols.
// Decode = 20% of the source symbols lost, replaced by repair (+2).
// MB/s counts source bytes (10^6). Ends with one JSON line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>

#include <sys/resource.h>
#include <vector>

#include "fec/codec.h"
#include "fec/encoding_plan.h"
#include "fec/gf256.h"
#include "fec/symbol_buffer.h"

using namespace rqcast::fec;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Result {
  uint32_t K;
  double plan_s = 0;  // first (cold) encoding plan for K'
  double enc_s = 1e30, dec_s = 1e30;
  double replay_ops_s = 1e30, replay_fused_s = 1e30;
  double rss_before_mb = 0, dec_peak_mb = 0;  // decoder's own peak memory
  PhaseCounters enc_split{}, dec_split{};
};

// A "VmRSS:"-style field of /proc/self/status, in MiB (0 if absent).
double proc_status_mb(const char* field) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  double kb = 0;
  const size_t n = std::strlen(field);
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, field, n) == 0) kb = std::atof(line + n);
  }
  std::fclose(f);
  return kb / 1024;
}

}  // namespace

int main(int argc, char** argv) {
  const uint32_t T = 1280;
  int reps = 3;
  std::vector<uint32_t> Ks;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else {
      Ks.push_back(static_cast<uint32_t>(std::atoi(argv[i])));
    }
  }
  if (Ks.empty()) Ks = {1000, 10000, 50000};
  std::printf("codec_bench: T=%u, kernel %s, best of %d\n", T,
              gf256::kernel_name(), reps);
  std::vector<Result> results;
  for (uint32_t K : Ks) {
    Result res;
    res.K = K;
    std::mt19937_64 rng(K);
    std::vector<uint8_t> data(size_t(K) * T);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    const uint32_t nrep = (K + 4) / 5;
    std::vector<uint8_t> out(size_t(K + nrep) * T);
    SystematicParams p;
    systematic_params(K, &p);
    {
      auto t0 = Clock::now();
      encoding_plan_for(p);
      res.plan_s = seconds_since(t0);
    }
    {
      // The encoding plan replayed op by op (as recorded) and fused.
      EncodingPlan ops, fused;
      build_encoding_plan(p, &ops, nullptr);
      build_encoding_plan(p, &fused, nullptr);
      fused.Fuse();
      std::vector<const uint8_t*> inputs(p.K_prime, nullptr);
      for (uint32_t x = 0; x < K; ++x) inputs[x] = data.data() + size_t(x) * T;
      std::vector<uint8_t> work(size_t(ops.num_slots) * T, 0);
      for (int r = 0; r < reps; ++r) {
        auto t0 = Clock::now();
        ops.Replay(work.data(), T, inputs.data());
        res.replay_ops_s = std::min(res.replay_ops_s, seconds_since(t0));
        t0 = Clock::now();
        fused.Replay(work.data(), T, inputs.data());
        res.replay_fused_s = std::min(res.replay_fused_s, seconds_since(t0));
      }
    }
    for (int r = 0; r < reps; ++r) {
      reset_phase_counters();
      auto t0 = Clock::now();
      std::unique_ptr<BlockEncoder> enc;
      if (BlockEncoder::Create(data.data(), K, T, &enc) != Status::kOk) {
        std::fprintf(stderr, "encode failed\n");
        return 1;
      }
      enc->Symbols(0, K + nrep, out.data(), T);
      const double t = seconds_since(t0);
      if (t < res.enc_s) {
        res.enc_s = t;
        res.enc_split = phase_counters();
      }
    }
    // Decode input: 80% of source (random), K/5 + 2 repair.
    std::vector<uint32_t> order(K);
    for (uint32_t i = 0; i < K; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    const uint32_t lost = nrep;
    std::vector<uint8_t> keep(K, 1);
    for (uint32_t i = 0; i < lost; ++i) keep[order[i]] = 0;
    std::unique_ptr<BlockEncoder> enc;
    BlockEncoder::Create(data.data(), K, T, &enc);
    std::vector<uint8_t> rep(size_t(lost + 2 + 20) * T);
    enc->Symbols(K, lost + 2 + 20, rep.data(), T);
    enc.reset();
    for (int r = 0; r < reps; ++r) {
      if (r == 0) {
        // The decoder's own peak memory: drop cached buffers, reset the
        // kernel's high-water mark (Linux: clear_refs 5), compare after.
        SymbolBuffer::TrimCache();
        FILE* f = std::fopen("/proc/self/clear_refs", "w");
        if (f) {
          std::fputs("5", f);
          std::fclose(f);
        }
        res.rss_before_mb = proc_status_mb("VmRSS:");
      }
      reset_phase_counters();
      auto t0 = Clock::now();
      BlockDecoder dec(K, T);
      for (uint32_t x = 0; x < K; ++x) {
        if (keep[x]) dec.Add(x, data.data() + size_t(x) * T, nullptr);
      }
      uint32_t j = 0;
      for (; j < lost + 2; ++j) {
        dec.Add(K + j, rep.data() + size_t(j) * T, nullptr);
      }
      Status s = dec.TryDecode();
      while (s == Status::kNeedMoreSymbols && j < lost + 22) {
        dec.Add(K + j, rep.data() + size_t(j) * T, nullptr);
        ++j;
        s = dec.TryDecode();
      }
      const double t = seconds_since(t0);
      if (s != Status::kOk ||
          std::memcmp(dec.Source(), data.data(), data.size()) != 0) {
        std::fprintf(stderr, "decode failed K=%u\n", K);
        return 1;
      }
      if (t < res.dec_s) {
        res.dec_s = t;
        res.dec_split = phase_counters();
      }
      if (r == 0) {
        res.dec_peak_mb = proc_status_mb("VmHWM:") - res.rss_before_mb;
      }
    }
    results.push_back(res);
    const double MB = double(K) * T / 1e6;
    std::printf("K=%6u  replay of the encoding plan: op by op %.2f ms, "
                "fused %.2f ms (x%.2f)\n",
                K, res.replay_ops_s * 1e3, res.replay_fused_s * 1e3,
                res.replay_ops_s / res.replay_fused_s);
    std::printf(
        "K=%6u  plan %7.1f ms | encode %8.1f MB/s (%.2f ms: symbols %.2f) | "
        "decode %8.1f MB/s (%.2f ms: solver %.2f, symbols %.2f)\n"
        "          decoder peak memory %.1f MiB = %.2f x block\n",
        K, res.plan_s * 1e3, MB / res.enc_s, res.enc_s * 1e3,
        res.enc_split.symbol_ns / 1e6, MB / res.dec_s, res.dec_s * 1e3,
        res.dec_split.solver_ns / 1e6, res.dec_split.symbol_ns / 1e6,
        res.dec_peak_mb, res.dec_peak_mb / (double(K) * T / (1 << 20)));
    std::fflush(stdout);
  }
  // Peak RSS of the whole process (a single K per process gives that K's
  // figure); the harness itself holds the data, the encoder's output and
  // the decode input, about (2.2 K + 22) T bytes.
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  const double peak_mb = ru.ru_maxrss / 1024.0;
  if (Ks.size() == 1) {
    const double block_mb = double(Ks[0]) * T / (1 << 20);
    std::printf("peak RSS %.1f MiB = %.2f x block (%.1f MiB); harness buffers "
                "%.2f x block\n",
                peak_mb, peak_mb / block_mb, block_mb,
                (2.2 * Ks[0] + 22) * T / (1 << 20) / block_mb);
  }
  std::printf("{\"bench\":\"codec_native\",\"peak_rss_MB\":%.1f", peak_mb);
  std::printf(",\"T\":%u,\"results\":[", T);
  for (size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    const double MB = double(r.K) * T / 1e6;
    std::printf(
        "%s{\"K\":%u,\"plan_ms\":%.2f,\"encode_MBps\":%.1f,"
        "\"decode_MBps\":%.1f,\"decode_solver_ms\":%.3f,"
        "\"decode_symbol_ms\":%.3f,\"replay_ops_ms\":%.3f,"
        "\"replay_fused_ms\":%.3f,\"decoder_peak_MiB\":%.1f}",
        i ? "," : "", r.K, r.plan_s * 1e3, MB / r.enc_s, MB / r.dec_s,
        r.dec_split.solver_ns / 1e6, r.dec_split.symbol_ns / 1e6,
        r.replay_ops_s * 1e3, r.replay_fused_s * 1e3, r.dec_peak_mb);
  }
  std::printf("]}\n");
  return 0;
}

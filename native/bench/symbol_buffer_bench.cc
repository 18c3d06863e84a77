// What block memory costs before any symbol arithmetic: the buffers a
// fresh server keeps for a 256 MiB file (17 work buffers of L + 1 = 12 355
// symbols of T = 1 280 bytes), taken fresh from the system and written once,
// against the same buffers taken from SymbolBuffer's cache and written once
// (the baseline, in the same run: a buffer that goes round). CPU is the
// process's (user + system), median of the rounds; the system share is
// the kernel faulting pages in and zeroing them.
//
//   make -C native bench && native/out/bench/symbol_buffer_bench [rounds]
//
// Each fresh round runs in a child process (fork), so that every round's
// memory is new to the process, as it is to a fresh `rqcast serve`. The
// last line printed is one JSON object.
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fec/symbol_buffer.h"

using rqcast::fec::SymbolBuffer;

namespace {

constexpr int kBlocks = 17;
constexpr size_t kBytes = size_t(12355) * 1280;

struct Cpu {
  double total = 0, sys = 0;
};

// The total from the scheduler's clock (to the ns); the system share from
// getrusage, which splits that total by ticks.
Cpu now() {
  rusage r;
  getrusage(RUSAGE_SELF, &r);
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  Cpu c;
  c.sys = r.ru_stime.tv_sec + r.ru_stime.tv_usec * 1e-6;
  c.total = ts.tv_sec + ts.tv_nsec * 1e-9;
  return c;
}

Cpu since(const Cpu& a) {
  Cpu b = now();
  return Cpu{b.total - a.total, b.sys - a.sys};
}

// kBlocks fresh buffers, each written once and kept (a fresh server's first pass).
Cpu fresh_round() {
  std::vector<SymbolBuffer> kept;
  const Cpu t0 = now();
  for (int i = 0; i < kBlocks; ++i) {
    SymbolBuffer b = SymbolBuffer::Fresh(kBytes);
    if (!b) std::abort();
    std::memset(b.data(), i, b.size());
    kept.push_back(std::move(b));
  }
  return since(t0);
}

// kBlocks buffers from the cache, each written once and given back.
Cpu reused_round() {
  { SymbolBuffer warm(kBytes); std::memset(warm.data(), 1, warm.size()); }
  const Cpu t0 = now();
  for (int i = 0; i < kBlocks; ++i) {
    SymbolBuffer b(kBytes);
    if (!b) std::abort();
    std::memset(b.data(), i, b.size());
  }
  return since(t0);
}

// A fresh round in a child process; its figures come back through a pipe.
Cpu fresh_in_child() {
  int fd[2];
  if (pipe(fd) != 0) std::abort();
  pid_t pid = fork();
  if (pid == 0) {
    Cpu c = fresh_round();
    if (write(fd[1], &c, sizeof c) != ssize_t(sizeof c)) _exit(1);
    _exit(0);
  }
  Cpu c;
  if (read(fd[0], &c, sizeof c) != ssize_t(sizeof c)) std::abort();
  waitpid(pid, nullptr, 0);
  close(fd[0]);
  close(fd[1]);
  return c;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 9;
  std::vector<double> f, fs, r, rs;
  for (int i = 0; i < rounds; ++i) {
    Cpu a = fresh_in_child();
    Cpu b = reused_round();
    f.push_back(a.total);
    fs.push_back(a.sys);
    r.push_back(b.total);
    rs.push_back(b.sys);
  }
  const double fm = median(f), rm = median(r);
  std::printf("block buffers: %d x %zu bytes, written once; median of %d rounds\n", kBlocks, kBytes, rounds);
  std::printf("%-26s %8s %8s\n", "memory", "cpu_ms", "sys_ms");
  std::printf("%-26s %8.1f %8.1f\n", "fresh (kept)", fm * 1e3, median(fs) * 1e3);
  std::printf("%-26s %8.1f %8.1f\n", "reused (from the cache)", rm * 1e3, median(rs) * 1e3);
  std::printf("{\"bench\":\"symbol_buffer\",\"blocks\":%d,\"bytes\":%zu,\"rounds\":%d,\"fresh_cpu_ms\":%.1f,\"fresh_sys_ms\":%.1f,\"reused_cpu_ms\":%.1f,\"reused_sys_ms\":%.1f,\"ratio\":%.2f}\n",
              kBlocks, kBytes, rounds, fm * 1e3, median(fs) * 1e3, rm * 1e3, median(rs) * 1e3, rm > 0 ? fm / rm : 0.0);
  return 0;
}

// Fixtures shared by the C++ self-tests that put packets on sockets
// (replicate_test.cc, multicast_test.cc): endpoints from text, numbered
// packets, and a private network namespace to run a test in. Checks go
// through the shared harness (check.h).
#pragma once

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "udp/udp.h"

#include "check.h"

// A numeric address and port (a failed check if the text is not one).
inline rqcast::udp::Endpoint ep(const char* a, uint16_t port) {
  rqcast::udp::Endpoint e;
  bool ok = rqcast::udp::parse_endpoint(a, port, &e);
  CHECK(ok);
  return e;
}

// Packets of `size` bytes, each starting with its 32-bit sequence number.
inline std::vector<uint8_t> make_packets(uint32_t first, uint32_t count,
                                         uint32_t size) {
  std::vector<uint8_t> v(static_cast<size_t>(count) * size);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t seq = first + i;
    uint8_t* p = v.data() + static_cast<size_t>(i) * size;
    std::memcpy(p, &seq, 4);
    for (uint32_t j = 4; j < size; ++j) p[j] = static_cast<uint8_t>(seq * 31 + j);
  }
  return v;
}

// Runs a shell command quietly; true if it succeeded.
inline bool sh(const std::string& cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
}

// Runs fn in a child process inside a fresh network namespace (which dies
// with it: nothing to clean up), after the commands in `setup` (`ip`,
// `sysctl`) have made the interfaces it needs. Returns false (skipped, with
// the reason printed) without CAP_NET_ADMIN or when a setup command fails;
// otherwise checks that the child's checks all passed.
inline bool in_new_netns(void (*fn)(),
                         std::initializer_list<const char*> setup = {}) {
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    if (unshare(CLONE_NEWNET) != 0) _exit(77);
    for (const char* c : setup)
      if (!sh(c)) _exit(78);
    g_failures = 0;
    fn();
    std::fflush(stdout);
    std::fflush(stderr);
    _exit(g_failures == 0 ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
    std::printf("# skipped: no CAP_NET_ADMIN for a network namespace\n");
    return false;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 78) {
    std::printf("# skipped: `ip` could not set up the namespace's interfaces here\n");
    return false;
  }
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return true;
}

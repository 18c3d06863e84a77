// Fixtures shared by the codec's C++ self-tests (object_test, packet_test,
// block_memory_test): an OTI from its five fields, and a temporary file
// holding given bytes (the file-backed encoder's input).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "check.h"
#include "fec/codec.h"

inline rqcast::fec::Oti make_oti(uint64_t F, uint16_t T, uint16_t Z, uint16_t N,
                                 uint8_t Al) {
  rqcast::fec::Oti o;
  o.F = F;
  o.T = T;
  o.Z = Z;
  o.N = N;
  o.Al = Al;
  return o;
}

// A temporary file holding `data`; removed on destruction.
struct TempFile {
  std::string path;
  int fd = -1;
  explicit TempFile(const std::vector<uint8_t>& data) {
    char name[] = "/tmp/rqcast-native-test-XXXXXX";
    fd = mkstemp(name);
    path = name;
    CHECK(fd >= 0);
    size_t done = 0;
    while (fd >= 0 && done < data.size()) {
      ssize_t n = write(fd, data.data() + done, data.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    CHECK(done == data.size());
  }
  ~TempFile() {
    if (fd >= 0) close(fd);
    unlink(path.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
};

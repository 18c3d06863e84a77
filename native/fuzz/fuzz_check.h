// A failed property in a fuzz harness: print where and abort, so that
// libFuzzer records the input as a crash.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                  \
  do {                                                                    \
    if (!(cond)) {                                                        \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__,   \
                   __LINE__, #cond);                                      \
      std::abort();                                                       \
    }                                                                     \
  } while (0)

// Reads the fuzz input front to back; past the end it yields zeros, so a
// harness never needs to special-case short inputs.
class FuzzInput {
 public:
  FuzzInput(const unsigned char* data, size_t size) : p_(data), n_(size) {}
  bool empty() const { return n_ == 0; }
  size_t remaining() const { return n_; }
  unsigned char u8() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  unsigned u16() { return (unsigned(u8()) << 8) | u8(); }
  unsigned u24() { return (u16() << 8) | u8(); }
  unsigned long long u40() {
    return (static_cast<unsigned long long>(u8()) << 32) |
           (static_cast<unsigned long long>(u16()) << 16) | u16();
  }
  const unsigned char* bytes(size_t want, size_t* got) {
    *got = want < n_ ? want : n_;
    const unsigned char* r = p_;
    p_ += *got;
    n_ -= *got;
    return r;
  }

 private:
  const unsigned char* p_;
  size_t n_;
};

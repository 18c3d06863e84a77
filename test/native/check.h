// The check harness shared by the C++ self-tests (test/native/*_test.cc):
// counters and CHECK macros. A failed check prints file:line and the failed
// expression to stderr, counts as a failure and lets the test go on; each
// test's main() prints its own summary from g_checks / g_failures and exits
// non-zero if g_failures is not 0.
//
//   CHECK(cond)                 cond is true
//   CHECK_MSG(cond, fmt, ...)   the same; the printf-style message (only
//                               evaluated on failure) follows the expression
//   CHECK_EQ(a, b)              a == b; prints both values on failure
//   CHECK_STATUS(expr, want)    a fec::Status equals want; prints both codes
//
// Every macro evaluates its arguments once and counts one check. The
// counters are atomic: some tests check from more than one thread.
#pragma once

#include <atomic>
#include <climits>
#include <cstdio>
#include <string>
#include <type_traits>

#include "fec/codec.h"

inline std::atomic<int> g_checks{0};
inline std::atomic<int> g_failures{0};
// Failures past this many are counted but not printed (a broken kernel in a
// loop would print thousands of lines). Set it in main(), before checking.
inline int g_check_print_limit = INT_MAX;

namespace check_detail {

// Counts a failure; true if it is to be printed.
inline bool fail() {
  const int n = ++g_failures;
  if (n <= g_check_print_limit) return true;
  if (n - 1 == g_check_print_limit) {
    std::fprintf(stderr, "(further failures are counted but not printed)\n");
  }
  return false;
}

// A CHECK_EQ operand as text.
template <typename T>
std::string text(const T& v) {
  if constexpr (std::is_enum_v<T>) {
    return text(static_cast<std::underlying_type_t<T>>(v));
  } else if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    return std::to_string(static_cast<long long>(v));
  } else if constexpr (std::is_integral_v<T>) {
    return std::to_string(static_cast<unsigned long long>(v));
  } else if constexpr (std::is_floating_point_v<T>) {
    return std::to_string(v);
  } else if constexpr (std::is_pointer_v<T>) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%p", static_cast<const void*>(v));
    return buf;
  } else {
    return "?";
  }
}

}  // namespace check_detail

#define CHECK(cond)                                                        \
  do {                                                                     \
    ++g_checks;                                                            \
    if (!(cond) && check_detail::fail()) {                                 \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                 \
    }                                                                      \
  } while (0)

#define CHECK_MSG(cond, ...)                                               \
  do {                                                                     \
    ++g_checks;                                                            \
    if (!(cond) && check_detail::fail()) {                                 \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, \
                   #cond);                                                 \
      std::fprintf(stderr, __VA_ARGS__);                                   \
      std::fprintf(stderr, "\n");                                          \
    }                                                                      \
  } while (0)

#define CHECK_EQ(a, b)                                                     \
  do {                                                                     \
    ++g_checks;                                                            \
    const auto check_a_ = (a);                                             \
    const auto check_b_ = (b);                                             \
    if (!(check_a_ == check_b_) && check_detail::fail()) {                 \
      std::fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%s vs %s)\n", \
                   __FILE__, __LINE__, #a, #b,                             \
                   check_detail::text(check_a_).c_str(),                   \
                   check_detail::text(check_b_).c_str());                  \
    }                                                                      \
  } while (0)

#define CHECK_STATUS(expr, want)                                           \
  do {                                                                     \
    ++g_checks;                                                            \
    const ::rqcast::fec::Status check_got_ = (expr);                       \
    const ::rqcast::fec::Status check_want_ = (want);                      \
    if (check_got_ != check_want_ && check_detail::fail()) {               \
      std::fprintf(stderr, "%s:%d: CHECK_STATUS failed: %s = %s, want %s\n", \
                   __FILE__, __LINE__, #expr,                              \
                   ::rqcast::fec::status_code(check_got_),                 \
                   ::rqcast::fec::status_code(check_want_));               \
    }                                                                      \
  } while (0)

// rqcast — TCP sequence-number arithmetic mod 2^32 (RFC 9293 §3.4): a is
// "before" b when the signed distance b - a is positive, which holds as long
// as the two are less than 2^31 apart (a window never is).
#pragma once

#include <cstddef>
#include <cstdint>

namespace rqcast {
namespace tcp {

inline bool SeqLt(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }
inline bool SeqLeq(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) <= 0; }
inline bool SeqGt(uint32_t a, uint32_t b) { return SeqLt(b, a); }
inline bool SeqGeq(uint32_t a, uint32_t b) { return SeqLeq(b, a); }

}  // namespace tcp
}  // namespace rqcast

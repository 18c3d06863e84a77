// RFC 6330 §5.6 Table 2 lookup and the derived parameters of §5.3.3.3.
#include <algorithm>

#include "fec/codec.h"
#include "fec/tables.h"

namespace rqcast {
namespace fec {
namespace {

bool is_prime(uint32_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (uint32_t d = 3; d * d <= n; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

}  // namespace

bool systematic_params(uint32_t K, SystematicParams* out) {
  if (K == 0 || K > kMaxKPrime || out == nullptr) return false;
  // §5.3.1: K' is the smallest Table 2 entry with K' >= K.
  const tables::Table2Row* end = tables::kTable2 + tables::kTable2Rows;
  const tables::Table2Row* row = std::lower_bound(
      tables::kTable2, end, K,
      [](const tables::Table2Row& r, uint32_t k) { return r.K_prime < k; });
  if (row == end) return false;
  SystematicParams p;
  p.K_prime = row->K_prime;
  p.J = row->J;
  p.S = row->S;
  p.H = row->H;
  p.W = row->W;
  p.L = p.K_prime + p.S + p.H;  // §5.3.3.3
  p.P = p.L - p.W;
  p.P1 = p.P;
  while (!is_prime(p.P1)) ++p.P1;
  p.U = p.P - p.H;
  p.B = p.W - p.S;
  *out = p;
  return true;
}

}  // namespace fec
}  // namespace rqcast

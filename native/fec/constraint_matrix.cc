// RFC 6330 §5.3.3.3 constraint rows and §5.3.5.3 LTEnc columns.
#include "fec/constraint_matrix.h"

#include <mutex>
#include <unordered_map>

namespace rqcast {
namespace fec {

void append_ldpc_rows(const SystematicParams& p, SparseRows* rows) {
  const uint32_t S = p.S, B = p.B, W = p.W, P = p.P;
  // Row b of G_LDPC,1: column i (i < B) is set in rows b, b+a, b+2a
  // (mod S) with a = 1 + floor(i/S) % (S-1), b = i % S. S is prime, so
  // the three rows are distinct. Gather per row, then emit.
  std::vector<std::vector<uint32_t>> per_row(S);
  for (uint32_t i = 0; i < B; ++i) {
    const uint32_t a = 1 + (i / S) % (S - 1);
    uint32_t b = i % S;
    per_row[b].push_back(i);
    b = (b + a) % S;
    per_row[b].push_back(i);
    b = (b + a) % S;
    per_row[b].push_back(i);
  }
  for (uint32_t i = 0; i < S; ++i) {
    std::vector<uint32_t>& r = per_row[i];
    r.push_back(B + i);  // I_S: D[i] = C[B+i] moved to the left side
    // G_LDPC,2: C[W + i%P] and C[W + (i+1)%P]; distinct since P >= 2.
    r.push_back(W + i % P);
    r.push_back(W + (i + 1) % P);
    rows->cols.insert(rows->cols.end(), r.begin(), r.end());
    rows->start.push_back(static_cast<uint32_t>(rows->cols.size()));
  }
}

uint32_t lt_columns(const SystematicParams& p, uint32_t isi, uint32_t* out) {
  const Tuple t = rfc_tuple(p, isi);
  uint32_t n = 0;
  // §5.3.5.3: W is prime and a in [1, W-1], d <= W-2, so the d columns
  // are distinct; likewise for P1, a1 and d1 <= 3 < P1.
  uint32_t b = t.b;
  out[n++] = b;
  for (uint32_t j = 1; j < t.d; ++j) {
    b = (b + t.a) % p.W;
    out[n++] = b;
  }
  uint32_t b1 = t.b1;
  while (b1 >= p.P) b1 = (b1 + t.a1) % p.P1;
  out[n++] = p.W + b1;
  for (uint32_t j = 1; j < t.d1; ++j) {
    b1 = (b1 + t.a1) % p.P1;
    while (b1 >= p.P) b1 = (b1 + t.a1) % p.P1;
    out[n++] = p.W + b1;
  }
  return n;
}

void append_lt_row(const SystematicParams& p, uint32_t isi, SparseRows* rows) {
  uint32_t c[kMaxLtColumns];
  const uint32_t n = lt_columns(p, isi, c);
  rows->cols.insert(rows->cols.end(), c, c + n);
  rows->start.push_back(static_cast<uint32_t>(rows->cols.size()));
}

std::shared_ptr<const SparseRows> source_rows_for(const SystematicParams& p) {
  if (p.K_prime > kCachedRowsMaxKPrime) return nullptr;
  // Never destroyed: used from any thread, also at exit.
  static std::mutex* mu = new std::mutex;
  static auto* cache =
      new std::unordered_map<uint32_t, std::shared_ptr<const SparseRows>>;
  std::lock_guard<std::mutex> lock(*mu);
  std::shared_ptr<const SparseRows>& slot = (*cache)[p.K_prime];
  if (!slot) {
    // Under the lock: a few tens of microseconds, once per K'.
    auto rows = std::make_shared<SparseRows>();
    rows->cols.reserve(size_t(p.K_prime) * 8 + size_t(p.S) * 32);
    rows->start.reserve(size_t(p.S) + p.K_prime + 1);
    append_ldpc_rows(p, rows.get());
    for (uint32_t x = 0; x < p.K_prime; ++x) append_lt_row(p, x, rows.get());
    slot = std::move(rows);
  }
  return slot;
}

void hdpc_mt_column(const SystematicParams& p, uint32_t j, uint32_t* h1,
                    uint32_t* h2) {
  // MT[i][j] = 1 for i = Rand[j+1, 6, H] and
  // i = (Rand[j+1, 6, H] + Rand[j+1, 7, H-1] + 1) % H.
  const uint32_t a = rfc_rand(j + 1, 6, p.H);
  *h1 = a;
  *h2 = (a + rfc_rand(j + 1, 7, p.H - 1) + 1) % p.H;
}

}  // namespace fec
}  // namespace rqcast

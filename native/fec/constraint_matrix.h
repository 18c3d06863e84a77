// RFC 6330 §5.3.3.3: the constraint matrix A, split the way the solver
// uses it.
//
//   rows 0 .. S-1        LDPC rows  [G_LDPC,1 | I_S | G_LDPC,2]   (binary)
//   H HDPC rows          [MT * GAMMA | I_H]                     (GF(256))
//   one row per ISI      G_ENC: the LTEnc columns of Tuple[K', X] (binary)
//
// The binary rows are kept sparse (a list of columns each); the HDPC rows
// are never stored as a matrix: MT is sparse (two ones per column but the
// last, §5.3.3.3) and GAMMA is lower triangular with GAMMA[i][j] =
// alpha^(i-j), so a product MT * GAMMA * v is the recurrence
//   g_0 = v_0,  g_j = alpha * g_(j-1) + v_j,  result = MT * g
// that the solver runs on matrix rows and on symbols alike.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "fec/codec.h"

namespace rqcast {
namespace fec {

// Binary rows in compressed form: row r's columns are
// cols[start[r] .. start[r+1]).
struct SparseRows {
  std::vector<uint32_t> start{0};
  std::vector<uint32_t> cols;
  uint32_t rows() const { return static_cast<uint32_t>(start.size() - 1); }
  const uint32_t* begin(uint32_t r) const { return cols.data() + start[r]; }
  const uint32_t* end(uint32_t r) const { return cols.data() + start[r + 1]; }
  uint32_t degree(uint32_t r) const { return start[r + 1] - start[r]; }
  void clear() {
    start.assign(1, 0);
    cols.clear();
  }
};

// Appends the S LDPC rows (§5.3.3.3).
void append_ldpc_rows(const SystematicParams& p, SparseRows* rows);

// The intermediate-symbol indices LTEnc[K', C, Tuple[K', X]] adds up
// (§5.3.5.3): d of them among 0..W-1 then d1 among W..L-1. Writes at most
// 30 + 3 values to `out` and returns how many.
uint32_t lt_columns(const SystematicParams& p, uint32_t isi, uint32_t* out);
constexpr uint32_t kMaxLtColumns = 40;

// Appends the G_ENC row of internal symbol id `isi`.
void append_lt_row(const SystematicParams& p, uint32_t isi, SparseRows* rows);

// The binary rows of the source block of K' = p.K_prime as the encoder
// builds them: the S LDPC rows, then the LT row of every ISI 0..K'-1 (row
// S + x is ISI x). A decoder copies the rows of the ISIs it received from
// here instead of recomputing each one's Tuple (§5.3.5.4), which was 7% of
// a K = 1 000 decode. Computed once per K' and cached for the process
// (thread safe) when K' <= kCachedRowsMaxKPrime (a few hundred KiB each
// at most); null above that, where the caller builds its rows itself.
std::shared_ptr<const SparseRows> source_rows_for(const SystematicParams& p);
constexpr uint32_t kCachedRowsMaxKPrime = 8192;

// Appends row r of `from` to *rows.
inline void append_row(const SparseRows& from, uint32_t r, SparseRows* rows) {
  rows->cols.insert(rows->cols.end(), from.begin(r), from.end(r));
  rows->start.push_back(static_cast<uint32_t>(rows->cols.size()));
}

// MT (§5.3.3.3) column j < K'+S-1 holds ones in rows *h1 and *h2
// (h1 != h2); column K'+S-1 holds alpha^i in row i.
void hdpc_mt_column(const SystematicParams& p, uint32_t j, uint32_t* h1,
                    uint32_t* h2);

}  // namespace fec
}  // namespace rqcast

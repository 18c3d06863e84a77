// RFC 6330 §5.4.2 inactivation decoding, on the matrix only.
//
// Notation (§5.4.2.1): A is M x L, C the L intermediate symbols, D the M
// constraint symbols. Phase 1 (§5.4.2.2) picks i pivot rows/columns and
// inactivates u = L - i columns. With the rows and columns so ordered,
//
//       [ X  Y ]   X: i x i, unit lower triangular, binary (the chosen rows
//   A = [      ]      as constructed, which is the RFC's matrix X)
//       [ Z  W ]   Y, Z, W: the rest of the constructed rows
//
// and A C = D splits into X C_I + Y C_U = D_up and Z C_I + W C_U = D_low,
// so that
//   (W + Z X^-1 Y) C_U = D_low + Z (X^-1 D_up)          (phases 1 and 2)
//   C_I = X^-1 (D_up + Y C_U)                            (phases 3 to 5)
//
// This is the RFC's elimination with its row operations regrouped
// (deviation, same result, documented here per §5.4.2.1 "any algorithm
// that solves the system may be used"):
//  * Phase 1 proper never changes the V part of a row except to clear the
//    pivot column, so the row choice (§5.4.2.2: minimum r, the
//    largest-component rule for r = 2, minimum original degree otherwise,
//    HDPC rows never chosen) is a pure graph process on the sparse rows;
//    the U-part fill it would produce is computed afterwards as
//    F = X^-1 Y (bitsets) and W' = W + Z F.
//  * On symbols, E = X^-1 D_up is one forward substitution over the
//    original (sparse) X, and D_low + Z E uses the original sparse Z: no
//    fill ever reaches the symbol ops. The HDPC rows of Z are MT * GAMMA,
//    applied with the GAMMA recurrence (constraint_matrix.h) on the
//    matrix (u-byte rows) and on symbols (4 ops per column rather than H).
//  * Phase 2 (§5.4.2.3) is Gaussian elimination of U_lower, binary rows
//    first (bitset xor), then the HDPC rows over the columns the binary
//    rows could not pivot.
//  * Phases 3-5 (§5.4.2.4-§5.4.2.6: multiply by X, clear U_upper, back
//    substitute) become C_I = X^-1 (D_up + Y C_U): the upper rows are
//    reloaded from their inputs, get the sparse Y C_U added, and one more
//    forward substitution over X. This costs the same symbol ops as
//    phases 4 and 5 and saves phase 3's.
#include "fec/pi_solver.h"

#include <algorithm>
#include <cstring>

#include "fec/gf256.h"

namespace rqcast {
namespace fec {
namespace {

constexpr uint32_t kNone = 0xFFFFFFFFu;
constexpr uint8_t kAlpha = 2;  // §5.7: alpha, the generator of GF(256)

// kSpread.v[b]: byte i (little-endian) is bit i of b, as 0 or 1.
struct Spread {
  uint64_t v[256] = {};
  constexpr Spread() {
    for (unsigned b = 0; b < 256; ++b) {
      for (unsigned i = 0; i < 8; ++i) {
        if (b & (1u << i)) v[b] |= uint64_t(1) << (8 * i);
      }
    }
  }
};
constexpr Spread kSpread{};
// F's 64-bit words are read as bytes in ComputeHdpc: bit 8b + i of a row
// must be bit i of byte b.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "ComputeHdpc reads bitset words as little-endian bytes");

class Solver {
 public:
  Solver(const SystematicParams& p, const SparseRows& rows,
         const std::vector<uint32_t>& row_input, EncodingPlan* plan,
         PlanForm form)
      : p_(p), rows_(rows), row_input_(row_input), plan_(plan), form_(form) {}

  bool Run();
  uint32_t pivots() const { return i_; }
  uint32_t inactivated() const { return u_; }
  uint64_t xor_ops() const { return xor_ops_; }
  uint64_t mul_ops() const { return mul_ops_; }

 private:
  // ---- op recording: into plan_->ops, or (PlanForm::kFused) straight
  // into the fused form, except inside an HDPC block, whose ops become
  // one kHdpc op (FuseHdpc, where the block ends: nothing is fused while
  // it is open, so that is where it began). Forced inline: GCC kept Emit
  // out of line, a call per op (20-odd thousand at K = 1 000) where the
  // inlined copy knows its kind; C++ K = 1 000 decode, best of 2 000:
  // 0.66-0.68 -> 0.63-0.65 ms.
  __attribute__((always_inline)) void Emit(SymbolOp::Kind k, uint32_t dst,
                                           uint32_t src, uint8_t beta = 0) {
    if (k == SymbolOp::kXor) ++xor_ops_;
    if (k == SymbolOp::kAddMul || k == SymbolOp::kScale) ++mul_ops_;
    if (form_ == PlanForm::kOps) {
      plan_->ops.push_back(SymbolOp{dst, src, k, beta});
    } else if (!in_hdpc_block_) {
      plan_->FuseOp(SymbolOp{dst, src, k, beta});
    }
  }
  __attribute__((always_inline)) void EmitLoad(uint32_t row) {
    const uint32_t in = row_input_[row];
    if (in == kNoInput) {
      Emit(SymbolOp::kZero, row, 0);
    } else {
      Emit(SymbolOp::kCopyIn, row, in);
    }
  }
  void EmitAddMul(uint32_t dst, uint32_t src, uint8_t beta) {
    if (beta == 1) {
      Emit(SymbolOp::kXor, dst, src);
    } else if (beta != 0) {
      Emit(SymbolOp::kAddMul, dst, src, beta);
    }
  }

  // Column c is still in V: neither pivoted nor inactivated (active_[c]
  // is 1 exactly then, so a row's V part is gathered without branches).
  bool Active(uint32_t c) const { return active_[c] != 0; }

  void BuildColumnIndex();
  void Phase1();
  uint32_t PickRowDegree2();
  void RankDegree2Rows();
  uint32_t FindRoot(uint32_t c);
  void RemoveColumnFromV(uint32_t c);
  void Inactivate(uint32_t c);
  void ComputeFill();
  void ComputeHdpc();
  bool Phase2();
  void UpperRows();

  const SystematicParams& p_;
  const SparseRows& rows_;
  const std::vector<uint32_t>& row_input_;
  EncodingPlan* plan_;
  const PlanForm form_;
  bool in_hdpc_block_ = false;
  uint64_t xor_ops_ = 0, mul_ops_ = 0;

  uint32_t nb_ = 0;  // binary rows
  uint32_t i_ = 0;   // pivots of phase 1
  uint32_t u_ = 0;   // inactivated (dense) columns
  uint32_t uw_ = 0;  // 64-bit words per dense row

  std::vector<uint32_t> col_start_, col_rows_;  // column -> binary rows
  std::vector<uint32_t> col_pos_;    // pivot index k, or kNone
  std::vector<uint32_t> col_dense_;  // dense index d, or kNone
  std::vector<uint8_t> active_;      // 1 while the column is in V
  std::vector<uint32_t> dense_col_;  // d -> column
  std::vector<uint32_t> pivot_row_;  // k -> row
  std::vector<uint32_t> r_;          // nonzeros of each row in V
  std::vector<uint8_t> chosen_;
  std::vector<std::vector<uint32_t>> bucket_;  // rows by r (lazy)
  uint32_t min_r_ = 1;

  // union-find over columns for the r = 2 rule, reset lazily by stamp
  std::vector<uint32_t> uf_parent_, uf_size_, uf_stamp_;
  uint32_t stamp_ = 0;
  std::vector<uint32_t> degree2_queue_;  // ranked r = 2 rows, next at back

  std::vector<uint64_t> fill_;  // F = X^-1 Y: i rows of uw words
  std::vector<uint32_t> lower_;  // binary rows not chosen in phase 1
  std::vector<uint64_t> lower_bits_;  // their W' rows, uw words each
  std::vector<uint8_t> hdpc_;  // H rows of u bytes: the HDPC rows' W'
  std::vector<uint32_t> sol_slot_;  // d -> slot holding C[dense_col_[d]]
};

void Solver::BuildColumnIndex() {
  const uint32_t L = p_.L;
  col_start_.assign(L + 1, 0);
  for (uint32_t c : rows_.cols) ++col_start_[c + 1];
  for (uint32_t c = 0; c < L; ++c) col_start_[c + 1] += col_start_[c];
  col_rows_.resize(rows_.cols.size());
  std::vector<uint32_t> fillp(col_start_.begin(), col_start_.end() - 1);
  for (uint32_t r = 0; r < nb_; ++r) {
    for (const uint32_t* c = rows_.begin(r); c != rows_.end(r); ++c) {
      col_rows_[fillp[*c]++] = r;
    }
  }
}

void Solver::RemoveColumnFromV(uint32_t c) {
  for (uint32_t k = col_start_[c]; k < col_start_[c + 1]; ++k) {
    const uint32_t row = col_rows_[k];
    if (chosen_[row]) continue;
    const uint32_t r = --r_[row];
    if (r > 0) {
      bucket_[r].push_back(row);
      if (r < min_r_) min_r_ = r;
    }
  }
}

void Solver::Inactivate(uint32_t c) {
  col_dense_[c] = u_++;
  active_[c] = 0;
  dense_col_.push_back(c);
  RemoveColumnFromV(c);
}

uint32_t Solver::FindRoot(uint32_t c) {
  if (uf_stamp_[c] != stamp_) {
    uf_stamp_[c] = stamp_;
    uf_parent_[c] = c;
    uf_size_[c] = 1;
    return c;
  }
  while (uf_parent_[c] != c) {
    uf_parent_[c] = uf_parent_[uf_parent_[c]];
    c = uf_parent_[c];
  }
  return c;
}

// §5.4.2.2, r = 2: "choose any row with exactly 2 ones in V that is part of
// a maximum size component in the graph defined by V" (nodes: columns of
// V; edges: rows with r = 2).
//
// Rebuilding the components for every pick costs O(rows with r = 2) each
// time, quadratic over a large block (most of the solver's time at
// K = 50000). So the components are computed once and their rows queued,
// largest component first; picks take the next queued row that still has
// r = 2, and the graph is rebuilt only when the queue runs dry. The first
// pick after a rebuild is exactly the RFC's; a later one comes from the
// largest component *as of the rebuild*. Choosing a row in a component
// sets off r = 1 picks that pivot the rest of it (a component is mostly a
// tree), so the next queued component is what the RFC would pick too,
// except when rows that dropped from r = 3 to 2 meanwhile joined two
// components. The row order only affects how many columns get
// inactivated (speed), never the solution: C is unique (§5.4.2.1).
void Solver::RankDegree2Rows() {
  std::vector<uint32_t>& b = bucket_[2];
  size_t w = 0;
  for (uint32_t row : b) {
    if (!chosen_[row] && r_[row] == 2) b[w++] = row;
  }
  b.resize(w);
  ++stamp_;
  for (uint32_t row : b) {
    uint32_t ends[2], n = 0;
    for (const uint32_t* c = rows_.begin(row); c != rows_.end(row) && n < 2;
         ++c) {
      if (Active(*c)) ends[n++] = *c;
    }
    uint32_t x = FindRoot(ends[0]), y = FindRoot(ends[1]);
    if (x != y) {
      if (uf_size_[x] < uf_size_[y]) std::swap(x, y);
      uf_parent_[y] = x;
      uf_size_[x] += uf_size_[y];
    }
  }
  // (component size, root, row), largest first; ties broken by root then
  // row so that the order is deterministic.
  struct Ranked {
    uint32_t size, root, row;
  };
  std::vector<Ranked> ranked;
  ranked.reserve(b.size());
  for (uint32_t row : b) {
    for (const uint32_t* c = rows_.begin(row); c != rows_.end(row); ++c) {
      if (!Active(*c)) continue;
      const uint32_t root = FindRoot(*c);
      ranked.push_back(Ranked{uf_size_[root], root, row});
      break;
    }
  }
  std::sort(ranked.begin(), ranked.end(),
            [](const Ranked& a, const Ranked& b) {
              if (a.size != b.size) return a.size > b.size;
              if (a.root != b.root) return a.root < b.root;
              return a.row < b.row;
            });
  // Popped from the back.
  degree2_queue_.clear();
  for (size_t k = ranked.size(); k-- > 0;) {
    degree2_queue_.push_back(ranked[k].row);
  }
}

uint32_t Solver::PickRowDegree2() {
  for (int attempt = 0; attempt < 2; ++attempt) {
    while (!degree2_queue_.empty()) {
      const uint32_t row = degree2_queue_.back();
      degree2_queue_.pop_back();
      if (!chosen_[row] && r_[row] == 2) return row;
    }
    RankDegree2Rows();
  }
  return kNone;  // unreachable: bucket 2 holds a live row
}

void Solver::Phase1() {
  const uint32_t L = p_.L, W = p_.W;
  col_pos_.assign(L, kNone);
  col_dense_.assign(L, kNone);
  active_.assign(L, 0);
  std::fill(active_.begin(), active_.begin() + W, 1);
  dense_col_.clear();
  // §5.4.2.2: the P PI columns start in U (u = P).
  for (uint32_t c = W; c < L; ++c) {
    col_dense_[c] = u_++;
    dense_col_.push_back(c);
  }
  r_.assign(nb_, 0);
  chosen_.assign(nb_, 0);
  uint32_t max_deg = 2;
  for (uint32_t row = 0; row < nb_; ++row) {
    uint32_t r = 0;
    for (const uint32_t* c = rows_.begin(row); c != rows_.end(row); ++c) {
      if (*c < W) ++r;
    }
    r_[row] = r;
    max_deg = std::max(max_deg, r);
  }
  bucket_.assign(max_deg + 1, {});
  for (uint32_t row = 0; row < nb_; ++row) {
    if (r_[row] > 0) bucket_[r_[row]].push_back(row);
  }
  uf_parent_.assign(L, 0);
  uf_size_.assign(L, 0);
  uf_stamp_.assign(L, 0);
  pivot_row_.clear();
  pivot_row_.reserve(L);
  min_r_ = 1;

  uint32_t act[kMaxLtColumns + 64];
  std::vector<uint32_t> act_big;
  while (i_ + u_ < L) {
    // Smallest r with a live row; entries are stale when the row was
    // chosen or its r dropped since it was queued.
    for (; min_r_ < bucket_.size(); ++min_r_) {
      std::vector<uint32_t>& b = bucket_[min_r_];
      while (!b.empty() && (chosen_[b.back()] || r_[b.back()] != min_r_)) {
        b.pop_back();
      }
      if (!b.empty()) break;
    }
    if (min_r_ >= bucket_.size()) {
      // No binary row has a nonzero left in V. RFC 6330 would declare
      // failure here; inactivating the rest of V instead leaves the
      // decision to phase 2, where the HDPC rows may still cover these
      // columns (a rank-deficient A still fails there).
      for (uint32_t c = 0; c < W; ++c) {
        if (Active(c)) Inactivate(c);
      }
      break;
    }
    uint32_t row;
    if (min_r_ == 1) {
      row = bucket_[1].back();
      bucket_[1].pop_back();
    } else if (min_r_ == 2) {
      row = PickRowDegree2();
    } else {
      // r != 2: minimum original degree among the rows with this r.
      row = kNone;
      uint32_t best = kNone;
      for (uint32_t cand : bucket_[min_r_]) {
        if (chosen_[cand] || r_[cand] != min_r_) continue;
        if (rows_.degree(cand) < best) {
          best = rows_.degree(cand);
          row = cand;
        }
      }
    }
    // The row's nonzeros in V: the first becomes pivot column i, the
    // other r - 1 move to U (are inactivated).
    uint32_t n = 0;
    uint32_t* a = act;
    if (rows_.degree(row) > kMaxLtColumns + 64) {
      act_big.resize(rows_.degree(row));
      a = act_big.data();
    }
    for (const uint32_t* c = rows_.begin(row); c != rows_.end(row); ++c) {
      a[n] = *c;
      n += active_[*c];
    }
    chosen_[row] = 1;
    const uint32_t pc = a[0];
    col_pos_[pc] = i_++;
    active_[pc] = 0;
    pivot_row_.push_back(row);
    RemoveColumnFromV(pc);
    for (uint32_t j = 1; j < n; ++j) Inactivate(a[j]);
  }
}

// F = X^-1 Y by forward substitution over bitsets, and on symbols
// E = X^-1 D_up in the pivot rows' slots; then W' = W + Z F for the binary
// rows left below, and their symbols D_low + Z E.
void Solver::ComputeFill() {
  uw_ = (u_ + 63) / 64;
  fill_.assign(size_t(i_) * uw_, 0);
  for (uint32_t k = 0; k < i_; ++k) {
    const uint32_t row = pivot_row_[k];
    uint64_t* f = &fill_[size_t(k) * uw_];
    EmitLoad(row);
    for (const uint32_t* c = rows_.begin(row); c != rows_.end(row); ++c) {
      const uint32_t d = col_dense_[*c];
      if (d != kNone) {
        f[d >> 6] ^= uint64_t(1) << (d & 63);
        continue;
      }
      const uint32_t j = col_pos_[*c];
      if (j == k) continue;
      // j < k: X is lower triangular (the row's columns were all pivoted
      // or inactivated by the time it was chosen).
      const uint64_t* g = &fill_[size_t(j) * uw_];
      for (uint32_t w = 0; w < uw_; ++w) f[w] ^= g[w];
      Emit(SymbolOp::kXor, row, pivot_row_[j]);
    }
  }
  lower_.clear();
  for (uint32_t row = 0; row < nb_; ++row) {
    if (!chosen_[row]) lower_.push_back(row);
  }
  lower_bits_.assign(lower_.size() * uw_, 0);
  for (size_t li = 0; li < lower_.size(); ++li) {
    const uint32_t row = lower_[li];
    uint64_t* f = &lower_bits_[li * uw_];
    EmitLoad(row);
    for (const uint32_t* c = rows_.begin(row); c != rows_.end(row); ++c) {
      const uint32_t d = col_dense_[*c];
      if (d != kNone) {
        f[d >> 6] ^= uint64_t(1) << (d & 63);
        continue;
      }
      const uint32_t j = col_pos_[*c];
      const uint64_t* g = &fill_[size_t(j) * uw_];
      for (uint32_t w = 0; w < uw_; ++w) f[w] ^= g[w];
      Emit(SymbolOp::kXor, row, pivot_row_[j]);
    }
  }
}

// The HDPC rows [MT * GAMMA | I_H] after elimination of the pivot columns:
// W'_h = (MT * GAMMA * G)_h + I_H part, where G[c] is F's row for pivot
// column c and the unit vector e_d for dense column c. On symbols the same
// recurrence runs with E in place of F (dense columns contribute nothing:
// their symbols are the unknowns).
void Solver::ComputeHdpc() {
  const uint32_t H = p_.H, KS = p_.K_prime + p_.S;
  const uint32_t hslot = nb_, acc_slot = nb_ + H;
  hdpc_.assign(size_t(H) * u_, 0);
  // Padded to whole 64-bit words of F (bits past u_ are zero there).
  std::vector<uint8_t> acc(size_t(uw_) * 64, 0);
  HdpcBlock block;
  block.op_begin = static_cast<uint32_t>(plan_->ops.size());
  block.first_row_slot = hslot;
  block.acc_slot = acc_slot;
  block.H = H;
  block.src_slot.assign(KS, HdpcBlock::kNoSlot);
  block.h12.assign(size_t(2) * KS, 0);
  in_hdpc_block_ = true;
  Emit(SymbolOp::kZero, acc_slot, 0);
  for (uint32_t h = 0; h < H; ++h) Emit(SymbolOp::kZero, hslot + h, 0);
  for (uint32_t c = 0; c < KS; ++c) {
    if (c > 0) {  // acc is zero before column 0
      gf256::scale(acc.data(), kAlpha, u_);
      Emit(SymbolOp::kScale, acc_slot, 0, kAlpha);
    }
    const uint32_t d = col_dense_[c];
    if (d != kNone) {
      acc[d] ^= 1;
    } else {
      const uint32_t j = col_pos_[c];
      // acc += G[c] over GF(256): each bit of F's row becomes a byte 0 or
      // 1, eight at a time through kSpread (F rows are dense, a bit loop
      // was a quarter of the solver's time at K = 50000).
      const uint8_t* g = reinterpret_cast<const uint8_t*>(
          &fill_[size_t(j) * uw_]);
      for (uint32_t b = 0; b < uw_ * 8; ++b) {
        if (!g[b]) continue;
        uint64_t a;
        std::memcpy(&a, &acc[b * 8], 8);
        a ^= kSpread.v[g[b]];
        std::memcpy(&acc[b * 8], &a, 8);
      }
      Emit(SymbolOp::kXor, acc_slot, pivot_row_[j]);
      block.src_slot[c] = pivot_row_[j];
    }
    if (c + 1 < KS) {
      uint32_t h1, h2;
      hdpc_mt_column(p_, c, &h1, &h2);
      gf256::add(&hdpc_[size_t(h1) * u_], acc.data(), u_);
      gf256::add(&hdpc_[size_t(h2) * u_], acc.data(), u_);
      Emit(SymbolOp::kXor, hslot + h1, acc_slot);
      Emit(SymbolOp::kXor, hslot + h2, acc_slot);
      block.h12[2 * c] = h1;
      block.h12[2 * c + 1] = h2;
    } else {
      for (uint32_t h = 0; h < H; ++h) {
        const uint8_t beta = gf256::exp(h);  // MT[h][K'+S-1] = alpha^h
        gf256::addmul(&hdpc_[size_t(h) * u_], acc.data(), beta, u_);
        EmitAddMul(hslot + h, acc_slot, beta);
        block.last.push_back(beta);
      }
    }
  }
  block.op_end = static_cast<uint32_t>(plan_->ops.size());
  plan_->hdpc_blocks.push_back(std::move(block));
  in_hdpc_block_ = false;
  if (form_ == PlanForm::kFused) {
    plan_->FuseHdpc(static_cast<uint32_t>(plan_->hdpc_blocks.size() - 1));
  }
  for (uint32_t h = 0; h < H; ++h) {  // I_H: columns K'+S .. L-1
    hdpc_[size_t(h) * u_ + col_dense_[KS + h]] ^= 1;
  }
}

// §5.4.2.3: solve (W') C_U = D'_low. Binary rows first: forward
// elimination over GF(2); the columns no binary row can pivot ("hard"
// columns) go to the HDPC rows, which are first cleared of the binary
// pivot columns. Then back substitution.
bool Solver::Phase2() {
  const uint32_t H = p_.H;
  const uint32_t hslot = nb_;
  const size_t nl = lower_.size();
  std::vector<uint8_t> used(nl, 0);
  std::vector<uint32_t> pivot_of(u_, kNone);  // d -> lower index
  std::vector<uint32_t> order;                // binary pivot columns
  std::vector<uint32_t> hard;
  order.reserve(u_);
  // Symbol ops of the elimination, gathered per destination row and
  // emitted below in pivot order, each row's XORs back to back (so that
  // Fuse() makes them one pass over the row): a row is only read as a
  // pivot, after every XOR it receives, which all come from earlier
  // pivots. Rows that never become pivots end up zero and unused; their
  // XORs are dropped.
  std::vector<std::vector<uint32_t>> incoming(nl);
  for (uint32_t d = 0; d < u_; ++d) {
    const uint32_t w0 = d >> 6;
    const uint64_t mask = uint64_t(1) << (d & 63);
    size_t piv = nl;
    for (size_t li = 0; li < nl; ++li) {
      if (!used[li] && (lower_bits_[li * uw_ + w0] & mask)) {
        piv = li;
        break;
      }
    }
    if (piv == nl) {
      hard.push_back(d);
      continue;
    }
    used[piv] = 1;
    pivot_of[d] = static_cast<uint32_t>(piv);
    order.push_back(d);
    const uint64_t* src = &lower_bits_[piv * uw_];
    for (size_t li = piv + 1; li < nl; ++li) {
      uint64_t* dst = &lower_bits_[li * uw_];
      if (used[li] || !(dst[w0] & mask)) continue;
      // The pivot row is zero left of d (cleared when those were pivoted).
      for (uint32_t w = w0; w < uw_; ++w) dst[w] ^= src[w];
      incoming[li].push_back(lower_[piv]);
    }
  }
  if (hard.size() > H) return false;
  for (uint32_t d : order) {
    const uint32_t li = pivot_of[d];
    for (uint32_t src : incoming[li]) Emit(SymbolOp::kXor, lower_[li], src);
  }

  // Clear the binary pivot columns from the HDPC rows, in pivot order (a
  // pivot row only reaches columns right of its own). Each HDPC row is
  // cleared on its own, so its ops come out back to back: one
  // multiply-add pass (addmul_multi) over the row after Fuse().
  for (uint32_t h = 0; h < H; ++h) {
    uint8_t* row = &hdpc_[size_t(h) * u_];
    for (uint32_t d : order) {
      const uint8_t beta = row[d];
      if (!beta) continue;
      const uint32_t li = pivot_of[d];
      const uint64_t* q = &lower_bits_[size_t(li) * uw_];
      for (uint32_t w = d >> 6; w < uw_; ++w) {
        uint64_t bits = q[w];
        while (bits) {
          row[w * 64 + __builtin_ctzll(bits)] ^= beta;
          bits &= bits - 1;
        }
      }
      EmitAddMul(hslot + h, lower_[li], beta);
    }
  }

  // Gauss-Jordan over GF(256) on the hard columns, HDPC rows only (every
  // binary row not used as a pivot is now zero).
  sol_slot_.assign(u_, kNone);
  std::vector<uint8_t> hused(H, 0);
  for (uint32_t e : hard) {
    uint32_t ph = kNone;
    for (uint32_t h = 0; h < H; ++h) {
      if (!hused[h] && hdpc_[size_t(h) * u_ + e]) {
        ph = h;
        break;
      }
    }
    if (ph == kNone) return false;
    hused[ph] = 1;
    uint8_t* prow = &hdpc_[size_t(ph) * u_];
    const uint8_t inv = gf256::inv(prow[e]);
    if (inv != 1) {
      for (uint32_t x : hard) prow[x] = gf256::mul(prow[x], inv);
      Emit(SymbolOp::kScale, hslot + ph, 0, inv);
    }
    for (uint32_t h = 0; h < H; ++h) {
      if (h == ph) continue;
      uint8_t* row = &hdpc_[size_t(h) * u_];
      const uint8_t beta = row[e];
      if (!beta) continue;
      for (uint32_t x : hard) row[x] ^= gf256::mul(beta, prow[x]);
      EmitAddMul(hslot + h, hslot + ph, beta);
    }
    sol_slot_[e] = hslot + ph;
  }

  // Back substitution over the binary pivots, right to left.
  for (size_t o = order.size(); o-- > 0;) {
    const uint32_t d = order[o];
    const uint32_t li = pivot_of[d];
    const uint64_t* q = &lower_bits_[size_t(li) * uw_];
    for (uint32_t w = d >> 6; w < uw_; ++w) {
      uint64_t bits = q[w];
      while (bits) {
        const uint32_t e = w * 64 + __builtin_ctzll(bits);
        bits &= bits - 1;
        if (e != d) Emit(SymbolOp::kXor, lower_[li], sol_slot_[e]);
      }
    }
    sol_slot_[d] = lower_[li];
  }
  return true;
}

// C_I = X^-1 (D_up + Y C_U): reload each pivot row's input, add its
// dense columns' solutions and the earlier pivots it holds.
void Solver::UpperRows() {
  for (uint32_t k = 0; k < i_; ++k) {
    const uint32_t row = pivot_row_[k];
    EmitLoad(row);
    for (const uint32_t* c = rows_.begin(row); c != rows_.end(row); ++c) {
      const uint32_t d = col_dense_[*c];
      if (d != kNone) {
        Emit(SymbolOp::kXor, row, sol_slot_[d]);
      } else if (col_pos_[*c] != k) {
        Emit(SymbolOp::kXor, row, pivot_row_[col_pos_[*c]]);
      }
    }
  }
  plan_->column_slot.assign(p_.L, 0);
  for (uint32_t c = 0; c < p_.L; ++c) {
    plan_->column_slot[c] = col_pos_[c] != kNone ? pivot_row_[col_pos_[c]]
                                                 : sol_slot_[col_dense_[c]];
  }
}

bool Solver::Run() {
  nb_ = rows_.rows();
  plan_->ops.clear();
  plan_->hdpc_blocks.clear();
  plan_->ResetFused();
  plan_->num_slots = nb_ + p_.H + 1;
  BuildColumnIndex();
  Phase1();
  // Every op the plan will hold, roughly: two passes over the binary rows'
  // nonzeros, four per HDPC column, phase 2's elimination; one allocation
  // instead of a doubling series of copies of a multi-megabyte vector.
  // Fused, the HDPC ops are one op, and a row's ops one op.
  const size_t ops = 2 * rows_.cols.size() + size_t(u_) * u_ / 2 +
                     size_t(p_.H) * u_;
  if (form_ == PlanForm::kOps) {
    plan_->ops.reserve(ops + 4 * size_t(p_.K_prime + p_.S));
  } else {
    plan_->fused.reserve(2 * size_t(nb_) + 2 * size_t(u_) + p_.H + 8);
    plan_->fused_srcs.reserve(ops);
    plan_->fused_coeffs.reserve(ops);
  }
  ComputeFill();
  ComputeHdpc();
  if (!Phase2()) return false;
  UpperRows();
  return true;
}

}  // namespace

bool pi_solve(const SystematicParams& p, const SparseRows& rows,
              const std::vector<uint32_t>& row_input, uint32_t num_inputs,
              EncodingPlan* plan, SolverStats* stats, PlanForm form) {
  if (row_input.size() != rows.rows()) return false;
  for (uint32_t c : rows.cols) {
    if (c >= p.L) return false;
  }
  for (uint32_t in : row_input) {
    if (in != kNoInput && in >= num_inputs) return false;
  }
  PhaseTimer timer(PhaseTimer::kSolver);
  Solver solver(p, rows, row_input, plan, form);
  plan->num_inputs = num_inputs;
  const bool ok = solver.Run();
  if (ok && stats) {
    *stats = SolverStats();
    stats->pivots_phase1 = solver.pivots();
    stats->inactivated = solver.inactivated();
    stats->xor_ops = solver.xor_ops();
    stats->mul_ops = solver.mul_ops();
  }
  return ok;
}

}  // namespace fec
}  // namespace rqcast

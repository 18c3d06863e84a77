// The symbol side of the solver: a list of row operations recorded while
// the coefficient matrix is eliminated (pi_solver.cc), replayed over
// T-byte symbols with gf256::add/addmul/scale.
//
// Symbols live in "slots" of a work buffer (num_slots * T bytes). A slot's
// first value comes from an *input*: the symbol of a constraint row as
// received, or zero for the LDPC/HDPC rows and the padding ISIs K..K'-1
// (§5.3.3.3, §5.3.1). After replay, intermediate symbol C[c] is in slot
// column_slot[c].
//
// For encoding, the matrix depends on K' only (source ISIs 0..K'-1), so the
// plan of a K' is computed once and cached for the whole process
// (encoding_plan_for); inputs are then indexed by ISI.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "fec/codec.h"

namespace rqcast {
namespace fec {

struct SymbolOp {
  enum Kind : uint8_t {
    kCopyIn,  // slot[dst] = input[src]   (zero when input[src] is null)
    kZero,    // slot[dst] = 0
    kXor,     // slot[dst] ^= slot[src]
    kAddMul,  // slot[dst] ^= beta * slot[src]
    kScale,   // slot[dst] = beta * slot[dst]
  };
  uint32_t dst;
  uint32_t src;
  Kind kind;
  uint8_t beta;
};

// The recorded ops regrouped for replay: the solver emits a row's sum as
// a load followed by XORs into the same slot, one op per source, which
// would read and write the destination symbol once per source. A FusedOp
// does the whole sum in one pass over the destination (gf256::add_multi /
// gf256::sum), so the memory traffic of a binary row of degree d drops
// from about 3d to d + 1 symbols.
struct FusedOp {
  enum Kind : uint8_t {
    kAssign,  // slot[dst] = input[input] (or 0) ^ sum of slot[srcs]
    kAdd,     // slot[dst] ^= sum of slot[srcs]
    kAddMul,  // slot[dst] ^= sum of coeffs[j] * slot[srcs[j]]
    kScale,   // slot[dst] = beta * slot[dst]
    kHdpc,    // EncodingPlan::hdpc_blocks[first], by gf256::hdpc
  };
  uint32_t dst;
  uint32_t input;  // kAssign: input index, or kNoFusedInput
  uint32_t first;  // srcs are FusedPlan::srcs[first .. first + count)
  uint32_t count;
  Kind kind;
  uint8_t beta;
};
constexpr uint32_t kNoFusedInput = 0xFFFFFFFFu;

// The solver's HDPC symbol ops (the GAMMA recurrence, pi_solver.cc
// ComputeHdpc: per column a scale, a XOR and two XORs into HDPC rows) as
// one gf256::hdpc call: the same result with each source symbol read once
// and the rows kept in cache. Fuse() swaps ops [op_begin, op_end) for it.
struct HdpcBlock {
  static constexpr uint32_t kNoSlot = 0xFFFFFFFFu;
  uint32_t op_begin = 0, op_end = 0;
  uint32_t first_row_slot = 0;  // the H rows are consecutive slots
  uint32_t acc_slot = 0;
  uint32_t H = 0;
  std::vector<uint32_t> src_slot;  // per column: slot added, or kNoSlot
  std::vector<uint32_t> h12;       // per column: the two rows (not last)
  std::vector<uint8_t> last;       // H coefficients of the last column
};

struct EncodingPlan {
  uint32_t num_slots = 0;
  uint32_t num_inputs = 0;
  std::vector<SymbolOp> ops;  // as recorded; emptied by Fuse()
  std::vector<uint32_t> column_slot;  // L entries
  std::vector<HdpcBlock> hdpc_blocks;  // recorded by the solver
  std::vector<FusedOp> fused;
  std::vector<uint32_t> fused_srcs;
  std::vector<uint8_t> fused_coeffs;  // parallel to fused_srcs (kAddMul)
  uint32_t max_sources = 0;  // largest FusedOp count, plus one

  // Regroups `ops` into `fused` (same result) and releases `ops`.
  void Fuse();
  // Fuse() one op at a time, for a solver that emits the fused form
  // directly (PlanForm::kFused) instead of recording `ops`: FuseOp is
  // Fuse()'s step for an op outside an HDPC block, FuseHdpc appends the
  // kHdpc op of hdpc_blocks[block] where Fuse() would. The result is the
  // same fused plan, op for op (fec_math_test holds the two to it).
  void ResetFused();  // empty fused form, before the first FuseOp
  void FuseOp(const SymbolOp& op);
  void FuseHdpc(uint32_t block);
  // Trims the fused arrays to size (a plan kept in the K' cache).
  void TrimFused();
  // Replays the plan over `work` (num_slots * T bytes). inputs[i] is a
  // T-byte symbol or null (zero); there are num_inputs of them. Uses the
  // fused form once Fuse() ran, else the recorded ops one by one (the
  // reference the tests compare against).
  void Replay(uint8_t* work, size_t T, const uint8_t* const* inputs) const;

 private:
  void ReplayOps(uint8_t* work, size_t T, const uint8_t* const* inputs) const;
  // FuseOp: fused.back() may still take XORs into its dst.
  bool fuse_open_ = false;
};

// What pi_solve writes: the recorded ops (the reference a test or
// referenceSymbols replays one by one; Fuse() makes the fused form) or the
// fused form directly (no `ops`: what the K' cache and decoders replay).
enum class PlanForm { kOps, kFused };

// Inline: the solver emits an op per symbol operation, 20-odd thousand at
// K = 1 000, and a call per op was a tenth of its time.
inline void EncodingPlan::FuseOp(const SymbolOp& op) {
  const uint32_t at = static_cast<uint32_t>(fused_srcs.size());
  switch (op.kind) {
    case SymbolOp::kCopyIn:
    case SymbolOp::kZero:
      fused.push_back(FusedOp{
          op.dst, op.kind == SymbolOp::kCopyIn ? op.src : kNoFusedInput, at,
          0, FusedOp::kAssign, 0});
      fuse_open_ = true;
      break;
    case SymbolOp::kXor:
      // A source equal to the destination would be read after part of
      // the destination was written; the solver never records one, but
      // such an op stays on its own to keep the one-by-one meaning.
      fused_srcs.push_back(op.src);
      fused_coeffs.push_back(1);
      if (fuse_open_ && fused.back().dst == op.dst && op.src != op.dst) {
        ++fused.back().count;
      } else {
        fused.push_back(FusedOp{op.dst, kNoFusedInput, at, 1, FusedOp::kAdd,
                                0});
        fuse_open_ = op.src != op.dst;
      }
      break;
    case SymbolOp::kAddMul:
      // Multiply-adds into one row (phase 2 clearing an HDPC row) join
      // into one addmul_multi pass; a XOR joins one as coefficient 1.
      fused_srcs.push_back(op.src);
      fused_coeffs.push_back(op.beta);
      if (fuse_open_ && fused.back().kind == FusedOp::kAddMul &&
          fused.back().dst == op.dst && op.src != op.dst) {
        ++fused.back().count;
      } else {
        fused.push_back(FusedOp{op.dst, kNoFusedInput, at, 1,
                                FusedOp::kAddMul, 0});
        fuse_open_ = op.src != op.dst;
      }
      break;
    case SymbolOp::kScale:
      fused.push_back(FusedOp{op.dst, kNoFusedInput, at, 0, FusedOp::kScale,
                              op.beta});
      fuse_open_ = false;
      break;
  }
  if (fused.back().count + 1 > max_sources) {
    max_sources = fused.back().count + 1;
  }
}

// Shape of one solve, for benchmarks and tests.
struct SolverStats {
  uint32_t pivots_phase1 = 0;  // i
  uint32_t inactivated = 0;    // u = L - i (includes the P PI columns)
  uint64_t xor_ops = 0;
  uint64_t mul_ops = 0;        // addmul + scale
};

// The encoding plan of K' = p.K_prime (ISIs 0..K'-1 as inputs, in that
// order). Thread safe; computed at most once per K' per process. Null only
// if the matrix were singular, which RFC 6330 rules out for every K'.
std::shared_ptr<const EncodingPlan> encoding_plan_for(
    const SystematicParams& p);

// Whether the plan of K' = p.K_prime is computed and cached already, so
// that encoding a block of that K' is only a replay (never blocks on
// another thread computing it: false then).
bool encoding_plan_cached(const SystematicParams& p);

// Builds a fresh encoding plan without the cache (tests, benchmarks).
bool build_encoding_plan(const SystematicParams& p, EncodingPlan* plan,
                         SolverStats* stats, PlanForm form = PlanForm::kOps);

// Intermediate symbol c of a replayed plan.
inline const uint8_t* intermediate_symbol(const EncodingPlan& plan,
                                          const uint8_t* work, size_t T,
                                          uint32_t c) {
  return work + size_t(plan.column_slot[c]) * T;
}

// Every 64-byte line of a T-byte symbol into the caches. Inline asm: GCC
// deletes a loop whose only statements are __builtin_prefetch calls.
inline void prefetch_symbol(const uint8_t* p, size_t T) {
  for (size_t o = 0; o < T; o += 64) {
#if defined(__x86_64__) || defined(__i386__)
    asm volatile("prefetcht0 %0" : : "m"(p[o]));
#elif defined(__aarch64__)
    asm volatile("prfm pldl1keep, %0" : : "Q"(p[o]));
#endif
  }
}

// LTEnc (§5.3.5.3) of internal symbol id `isi` over the replayed
// intermediate symbols; writes T bytes to out.
void lt_encode(const SystematicParams& p, const EncodingPlan& plan,
               const uint8_t* work, size_t T, uint32_t isi, uint8_t* out);

// LTEnc over the intermediate symbols named by `cols` (n of them: an LT
// row, lt_columns' output or a cached row; n <= kMaxLtColumns); writes
// T bytes to out.
void lt_encode_columns(const EncodingPlan& plan, const uint8_t* work,
                       size_t T, const uint32_t* cols, uint32_t n,
                       uint8_t* out);

// Adds the time between construction and destruction to one of the
// phase_counters() (codec.h).
class PhaseTimer {
 public:
  enum Phase { kSolver, kSymbol };
  explicit PhaseTimer(Phase phase)
      : phase_(phase), t0_(std::chrono::steady_clock::now()) {}
  ~PhaseTimer();
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  Phase phase_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace fec
}  // namespace rqcast

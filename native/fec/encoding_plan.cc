// Symbol-op replay, the process-wide cache of encoding plans, and LTEnc.
#include "fec/encoding_plan.h"

#include <cstring>
#include <mutex>
#include <unordered_map>

#include "fec/constraint_matrix.h"
#include "fec/gf256.h"
#include "fec/pi_solver.h"

namespace rqcast {
namespace fec {

void EncodingPlan::Replay(uint8_t* work, size_t T,
                          const uint8_t* const* inputs) const {
  for (const SymbolOp& op : ops) {
    uint8_t* dst = work + size_t(op.dst) * T;
    switch (op.kind) {
      case SymbolOp::kCopyIn: {
        const uint8_t* in = inputs[op.src];
        if (in) {
          std::memcpy(dst, in, T);
        } else {
          std::memset(dst, 0, T);
        }
        break;
      }
      case SymbolOp::kZero:
        std::memset(dst, 0, T);
        break;
      case SymbolOp::kXor:
        gf256::add(dst, work + size_t(op.src) * T, T);
        break;
      case SymbolOp::kAddMul:
        gf256::addmul(dst, work + size_t(op.src) * T, op.beta, T);
        break;
      case SymbolOp::kScale:
        gf256::scale(dst, op.beta, T);
        break;
    }
  }
}

bool build_encoding_plan(const SystematicParams& p, EncodingPlan* plan,
                         SolverStats* stats) {
  // §5.3.3.4: the K' source rows are the LT rows of ISIs 0..K'-1.
  SparseRows rows;
  rows.cols.reserve(size_t(p.K_prime) * 8 + size_t(p.S) * 32);
  append_ldpc_rows(p, &rows);
  std::vector<uint32_t> row_input(p.S, kNoInput);
  for (uint32_t x = 0; x < p.K_prime; ++x) {
    append_lt_row(p, x, &rows);
    row_input.push_back(x);
  }
  return pi_solve(p, rows, row_input, p.K_prime, plan, stats);
}

std::shared_ptr<const EncodingPlan> encoding_plan_for(
    const SystematicParams& p) {
  struct Entry {
    std::mutex mu;
    std::shared_ptr<const EncodingPlan> plan;
  };
  static std::mutex map_mu;
  static std::unordered_map<uint32_t, std::shared_ptr<Entry>> cache;
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard<std::mutex> lock(map_mu);
    std::shared_ptr<Entry>& slot = cache[p.K_prime];
    if (!slot) slot = std::make_shared<Entry>();
    entry = slot;
  }
  // One thread computes a K' while others asking for the same K' wait;
  // different K' proceed in parallel.
  std::lock_guard<std::mutex> lock(entry->mu);
  if (!entry->plan) {
    auto plan = std::make_shared<EncodingPlan>();
    if (build_encoding_plan(p, plan.get(), nullptr)) entry->plan = plan;
  }
  return entry->plan;
}

void lt_encode(const SystematicParams& p, const EncodingPlan& plan,
               const uint8_t* work, size_t T, uint32_t isi, uint8_t* out) {
  uint32_t cols[kMaxLtColumns];
  const uint32_t n = lt_columns(p, isi, cols);
  std::memcpy(out, intermediate_symbol(plan, work, T, cols[0]), T);
  for (uint32_t j = 1; j < n; ++j) {
    gf256::add(out, intermediate_symbol(plan, work, T, cols[j]), T);
  }
}

}  // namespace fec
}  // namespace rqcast

// Symbol-op replay, the process-wide cache of encoding plans, and LTEnc.
#include "fec/encoding_plan.h"

#include <atomic>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "fec/constraint_matrix.h"
#include "fec/gf256.h"
#include "fec/pi_solver.h"

namespace rqcast {
namespace fec {

namespace {
std::atomic<uint64_t> g_solver_ns{0}, g_symbol_ns{0}, g_solves{0},
    g_replays{0};
}  // namespace

PhaseTimer::~PhaseTimer() {
  const uint64_t ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::steady_clock::now() - t0_)
          .count());
  if (phase_ == kSolver) {
    g_solver_ns.fetch_add(ns, std::memory_order_relaxed);
    g_solves.fetch_add(1, std::memory_order_relaxed);
  } else {
    g_symbol_ns.fetch_add(ns, std::memory_order_relaxed);
  }
}

PhaseCounters phase_counters() {
  PhaseCounters c;
  c.solver_ns = g_solver_ns.load(std::memory_order_relaxed);
  c.symbol_ns = g_symbol_ns.load(std::memory_order_relaxed);
  c.solves = g_solves.load(std::memory_order_relaxed);
  c.replays = g_replays.load(std::memory_order_relaxed);
  return c;
}

void reset_phase_counters() {
  g_solver_ns.store(0, std::memory_order_relaxed);
  g_symbol_ns.store(0, std::memory_order_relaxed);
  g_solves.store(0, std::memory_order_relaxed);
  g_replays.store(0, std::memory_order_relaxed);
}

void EncodingPlan::ResetFused() {
  fused.clear();
  fused_srcs.clear();
  fused_coeffs.clear();
  max_sources = 1;
  fuse_open_ = false;
}

void EncodingPlan::Fuse() {
  ResetFused();
  fused.reserve(ops.size() / 4);
  fused_srcs.reserve(ops.size());
  fused_coeffs.reserve(ops.size());
  size_t next_block = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (next_block < hdpc_blocks.size() &&
        hdpc_blocks[next_block].op_begin == i) {
      FuseHdpc(static_cast<uint32_t>(next_block));
      i = hdpc_blocks[next_block].op_end - 1;
      ++next_block;
      continue;
    }
    FuseOp(ops[i]);
  }
  ops = std::vector<SymbolOp>();
  TrimFused();
}

void EncodingPlan::FuseHdpc(uint32_t block) {
  fused.push_back(FusedOp{hdpc_blocks[block].first_row_slot, kNoFusedInput,
                          block, 0, FusedOp::kHdpc, 0});
  fuse_open_ = false;
}

void EncodingPlan::TrimFused() {
  fused.shrink_to_fit();
  fused_srcs.shrink_to_fit();
  fused_coeffs.shrink_to_fit();
}

namespace {

// How many fused ops ahead Replay prefetches (see PrefetchOp). Through the
// JS bench's encode at K = 1 000 right after a full GC (best of 500, load
// 5-8), the replay took 0.44-0.46 ms without prefetching (a prefetch
// distance of 0), 0.40-0.42 at 3 and 6 ops ahead, 0.42 at 12, 0.42-0.43
// at 24.
constexpr size_t kPrefetchAhead = 4;

inline void PrefetchOp(const FusedOp& op, uint8_t* work, size_t T,
                       const uint8_t* const* inputs) {
  if (op.kind == FusedOp::kAssign && op.input != kNoFusedInput &&
      inputs[op.input] != nullptr) {
    prefetch_symbol(inputs[op.input], T);
  }
  prefetch_symbol(work + size_t(op.dst) * T, T);
}

}  // namespace

void EncodingPlan::Replay(uint8_t* work, size_t T,
                          const uint8_t* const* inputs) const {
  PhaseTimer timer(PhaseTimer::kSymbol);
  g_replays.fetch_add(1, std::memory_order_relaxed);
  if (fused.empty()) {
    ReplayOps(work, T, inputs);
    return;
  }
  std::vector<const uint8_t*> ptrs(max_sources);
  const size_t n_ops = fused.size();
  for (size_t i = 0; i < n_ops && i < kPrefetchAhead; ++i) {
    PrefetchOp(fused[i], work, T, inputs);
  }
  for (size_t i = 0; i < n_ops; ++i) {
    const FusedOp& op = fused[i];
    if (i + kPrefetchAhead < n_ops) {
      PrefetchOp(fused[i + kPrefetchAhead], work, T, inputs);
    }
    uint8_t* dst = work + size_t(op.dst) * T;
    const uint32_t* src = fused_srcs.data() + op.first;
    switch (op.kind) {
      case FusedOp::kAssign: {
        size_t n = 0;
        if (op.input != kNoFusedInput && inputs[op.input]) {
          ptrs[n++] = inputs[op.input];
        }
        for (uint32_t j = 0; j < op.count; ++j) {
          ptrs[n++] = work + size_t(src[j]) * T;
        }
        if (n == 1) {
          std::memcpy(dst, ptrs[0], T);
        } else {
          gf256::sum(dst, ptrs.data(), n, T);
        }
        break;
      }
      case FusedOp::kAdd:
        if (op.count == 1) {
          gf256::add(dst, work + size_t(src[0]) * T, T);
          break;
        }
        for (uint32_t j = 0; j < op.count; ++j) {
          ptrs[j] = work + size_t(src[j]) * T;
        }
        gf256::add_multi(dst, ptrs.data(), op.count, T);
        break;
      case FusedOp::kAddMul: {
        const uint8_t* coeffs = fused_coeffs.data() + op.first;
        if (op.count == 1) {
          gf256::addmul(dst, work + size_t(src[0]) * T, coeffs[0], T);
          break;
        }
        for (uint32_t j = 0; j < op.count; ++j) {
          ptrs[j] = work + size_t(src[j]) * T;
        }
        gf256::addmul_multi(dst, ptrs.data(), coeffs, op.count, T);
        break;
      }
      case FusedOp::kScale:
        gf256::scale(dst, op.beta, T);
        break;
      case FusedOp::kHdpc: {
        const HdpcBlock& b = hdpc_blocks[op.first];
        std::vector<uint8_t*> rows(b.H);
        for (uint32_t h = 0; h < b.H; ++h) {
          rows[h] = work + size_t(b.first_row_slot + h) * T;
        }
        std::vector<const uint8_t*> srcs(b.src_slot.size());
        for (size_t c = 0; c < srcs.size(); ++c) {
          srcs[c] = b.src_slot[c] == HdpcBlock::kNoSlot
                        ? nullptr
                        : work + size_t(b.src_slot[c]) * T;
        }
        gf256::hdpc(rows.data(), b.H, work + size_t(b.acc_slot) * T,
                    srcs.data(), b.h12.data(), srcs.size(), b.last.data(), T);
        break;
      }
    }
  }
}

void EncodingPlan::ReplayOps(uint8_t* work, size_t T,
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
                         SolverStats* stats, PlanForm form) {
  // §5.3.3.4: the K' source rows are the LT rows of ISIs 0..K'-1.
  SparseRows rows;
  rows.cols.reserve(size_t(p.K_prime) * 8 + size_t(p.S) * 32);
  append_ldpc_rows(p, &rows);
  std::vector<uint32_t> row_input(p.S, kNoInput);
  for (uint32_t x = 0; x < p.K_prime; ++x) {
    append_lt_row(p, x, &rows);
    row_input.push_back(x);
  }
  return pi_solve(p, rows, row_input, p.K_prime, plan, stats, form);
}

namespace {

struct PlanCache {
  struct Entry {
    std::mutex mu;
    std::shared_ptr<const EncodingPlan> plan;
  };
  std::mutex map_mu;
  std::unordered_map<uint32_t, std::shared_ptr<Entry>> entries;
};

PlanCache& plan_cache() {
  static PlanCache* c = new PlanCache;  // never destroyed: used from any thread
  return *c;
}

}  // namespace

std::shared_ptr<const EncodingPlan> encoding_plan_for(
    const SystematicParams& p) {
  PlanCache& cache = plan_cache();
  std::shared_ptr<PlanCache::Entry> entry;
  {
    std::lock_guard<std::mutex> lock(cache.map_mu);
    std::shared_ptr<PlanCache::Entry>& slot = cache.entries[p.K_prime];
    if (!slot) slot = std::make_shared<PlanCache::Entry>();
    entry = slot;
  }
  // One thread computes a K' while others asking for the same K' wait;
  // different K' proceed in parallel.
  std::lock_guard<std::mutex> lock(entry->mu);
  if (!entry->plan) {
    auto plan = std::make_shared<EncodingPlan>();
    if (build_encoding_plan(p, plan.get(), nullptr, PlanForm::kFused)) {
      plan->TrimFused();
      entry->plan = plan;
    }
  }
  return entry->plan;
}

bool encoding_plan_cached(const SystematicParams& p) {
  PlanCache& cache = plan_cache();
  std::shared_ptr<PlanCache::Entry> entry;
  {
    std::lock_guard<std::mutex> lock(cache.map_mu);
    auto it = cache.entries.find(p.K_prime);
    if (it == cache.entries.end()) return false;
    entry = it->second;
  }
  // A plan being computed right now holds the entry's lock: not ready.
  std::unique_lock<std::mutex> lock(entry->mu, std::try_to_lock);
  return lock.owns_lock() && entry->plan != nullptr;
}

void lt_encode(const SystematicParams& p, const EncodingPlan& plan,
               const uint8_t* work, size_t T, uint32_t isi, uint8_t* out) {
  uint32_t cols[kMaxLtColumns];
  const uint32_t n = lt_columns(p, isi, cols);
  lt_encode_columns(plan, work, T, cols, n, out);
}

void lt_encode_columns(const EncodingPlan& plan, const uint8_t* work,
                       size_t T, const uint32_t* cols, uint32_t n,
                       uint8_t* out) {
  const uint8_t* srcs[kMaxLtColumns];
  for (uint32_t j = 0; j < n; ++j) {
    srcs[j] = intermediate_symbol(plan, work, T, cols[j]);
  }
  gf256::sum(out, srcs, n, T);
}

}  // namespace fec
}  // namespace rqcast

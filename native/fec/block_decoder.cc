// BlockDecoder: collects symbols; once >= K are held, solves the constraint
// system of the received ISIs (§5.4.2) and regenerates the missing source
// symbols with LTEnc (§5.3.5.3).
#include <algorithm>
#include <cstring>
#include <new>
#include <unordered_set>
#include <vector>

#include "fec/codec.h"
#include "fec/constraint_matrix.h"
#include "fec/encoding_plan.h"
#include "fec/pi_solver.h"

namespace rqcast {
namespace fec {

struct BlockDecoder::Impl {
  SystematicParams p{};
  uint32_t K = 0, T = 0;
  bool valid = false;
  bool decoded = false;
  // Source symbols are written straight to their place in the output.
  SymbolBuffer source;               // K*T
  std::vector<uint8_t> have_source;  // K flags
  uint32_t num_source = 0;
  std::vector<uint32_t> repair_esi;
  SymbolBuffer repair;  // repair_esi.size() * T used, grows by doubling
  std::unordered_set<uint32_t> repair_seen;

  // Missing source symbols are regenerated on decode: their bytes are
  // never read before, so the buffer is not cleared.
  bool EnsureSource() {
    if (source) return true;
    source = SymbolBuffer(size_t(K) * T);
    if (!source) return false;
    have_source.assign(K, 0);
    return true;
  }
  bool AppendRepair(const uint8_t* symbol) {
    const size_t used = repair_esi.size() * size_t(T);
    if (!repair || repair.size() < used + T) {
      // Room for a fifth of K at first (a typical loss), then doubling.
      const size_t want = std::max(used * 2, size_t(K / 5 + 2) * T);
      SymbolBuffer bigger(want);
      if (!bigger) return false;
      if (used) std::memcpy(bigger.data(), repair.data(), used);
      repair = std::move(bigger);
    }
    std::memcpy(repair.data() + used, symbol, T);
    return true;
  }
  void Clear() {
    have_source = std::vector<uint8_t>();
    repair.reset();
    repair_esi = std::vector<uint32_t>();
    repair_seen = std::unordered_set<uint32_t>();
  }
  Status Solve();
};

BlockDecoder::BlockDecoder(uint32_t K, uint32_t T) : impl_(new Impl) {
  impl_->K = K;
  impl_->T = T;
  impl_->valid = T >= 1 && K >= 1 && systematic_params(K, &impl_->p);
}
BlockDecoder::~BlockDecoder() = default;

uint32_t BlockDecoder::K() const { return impl_->K; }
uint32_t BlockDecoder::T() const { return impl_->T; }

Status BlockDecoder::Add(uint32_t esi, const uint8_t* symbol,
                         AddResult* result) {
  Impl& im = *impl_;
  if (!im.valid || symbol == nullptr) return Status::kInvalidArgument;
  if (esi > kMaxEsi) return Status::kEsiOutOfRange;
  AddResult res = AddResult::kAdded;
  if (im.decoded) {
    res = AddResult::kAlreadyDecoded;
  } else if (!im.EnsureSource()) {
    return Status::kOutOfMemory;
  } else if (esi < im.K) {
    if (im.have_source[esi]) {
      res = AddResult::kDuplicate;
    } else {
      std::memcpy(im.source.data() + size_t(esi) * im.T, symbol, im.T);
      im.have_source[esi] = 1;
      ++im.num_source;
    }
  } else if (!im.repair_seen.insert(esi).second) {
    res = AddResult::kDuplicate;
  } else {
    if (!im.AppendRepair(symbol)) {
      im.repair_seen.erase(esi);
      return Status::kOutOfMemory;
    }
    im.repair_esi.push_back(esi);
  }
  if (result) *result = res;
  return Status::kOk;
}

uint32_t BlockDecoder::Received() const {
  return impl_->num_source + static_cast<uint32_t>(impl_->repair_esi.size());
}

Status BlockDecoder::Impl::Solve() {
  const uint32_t Kp = p.K_prime;
  const uint32_t nrep = static_cast<uint32_t>(repair_esi.size());
  // Rows: S LDPC rows, the padding ISIs K..K'-1 (known zero symbols), the
  // received source ISIs, the received repair ISIs (ESI + K' - K).
  // Inputs: 0..K-1 source symbols, K.. repair symbols.
  SparseRows rows;
  rows.cols.reserve(size_t(Kp + nrep) * 8 + size_t(p.S) * 32);
  append_ldpc_rows(p, &rows);
  std::vector<uint32_t> row_input(p.S, kNoInput);
  for (uint32_t x = K; x < Kp; ++x) {
    append_lt_row(p, x, &rows);
    row_input.push_back(kNoInput);
  }
  for (uint32_t x = 0; x < K; ++x) {
    if (!have_source[x]) continue;
    append_lt_row(p, x, &rows);
    row_input.push_back(x);
  }
  for (uint32_t j = 0; j < nrep; ++j) {
    append_lt_row(p, repair_esi[j] + Kp - K, &rows);
    row_input.push_back(K + j);
  }
  EncodingPlan plan;
  if (!pi_solve(p, rows, row_input, K + nrep, &plan, nullptr)) {
    return Status::kNeedMoreSymbols;
  }
  plan.Fuse();
  std::vector<const uint8_t*> inputs(size_t(K) + nrep, nullptr);
  for (uint32_t x = 0; x < K; ++x) {
    if (have_source[x]) inputs[x] = source.data() + size_t(x) * T;
  }
  for (uint32_t j = 0; j < nrep; ++j) {
    inputs[K + j] = repair.data() + size_t(j) * T;
  }
  SymbolBuffer work(size_t(plan.num_slots) * T);
  if (!work) return Status::kOutOfMemory;
  plan.Replay(work.data(), T, inputs.data());
  PhaseTimer timer(PhaseTimer::kSymbol);
  for (uint32_t x = 0; x < K; ++x) {
    if (have_source[x]) continue;
    lt_encode(p, plan, work.data(), T, x, source.data() + size_t(x) * T);
  }
  return Status::kOk;
}

Status BlockDecoder::TryDecode() {
  Impl& im = *impl_;
  if (!im.valid) return Status::kInvalidArgument;
  if (im.decoded) return Status::kOk;
  if (Received() < im.K) return Status::kNeedMoreSymbols;
  if (im.num_source < im.K) {  // all K source symbols held: nothing to do
    const Status s = im.Solve();
    if (s != Status::kOk) return s;
  }
  im.decoded = true;
  im.Clear();
  return Status::kOk;
}

bool BlockDecoder::Decoded() const { return impl_->decoded; }

const uint8_t* BlockDecoder::Source() const {
  return impl_->decoded ? impl_->source.data() : nullptr;
}

void BlockDecoder::Release() {
  Impl& im = *impl_;
  im.source.reset();
  im.Clear();
}

SymbolBuffer BlockDecoder::TakeSource() {
  Impl& im = *impl_;
  if (!im.decoded) return SymbolBuffer();
  im.Clear();
  return std::move(im.source);
}

}  // namespace fec
}  // namespace rqcast

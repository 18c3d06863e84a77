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
  static constexpr uint32_t kFree = 0xFFFFFFFFu;

  SystematicParams p{};
  uint32_t K = 0, T = 0;
  bool valid = false;
  bool decoded = false;
  // Source symbols are written straight to their place in the output.
  SymbolBuffer source;               // K*T
  std::vector<uint8_t> have_source;  // K flags
  uint32_t num_source = 0;
  // Repair symbols are parked in the slots of missing source symbols
  // (about as many repair symbols as missing source symbols are needed),
  // so a decoder holds about one block of symbols rather than 1 + loss:
  // those slots are only written by the final LTEnc, after the replay has
  // read every input. A source symbol arriving for an occupied slot moves
  // the parked symbol on; when no slot is free, symbols go to `overflow`.
  std::vector<uint32_t> repair_esi;
  std::vector<uint32_t> repair_at;  // j -> slot x < K, or K + overflow index
  std::vector<uint32_t> occupant;   // slot -> parked repair j, or kFree
  uint32_t next_free = 0;  // slots below are source or occupied (for good)
  SymbolBuffer overflow;   // num_overflow * T used, grows by doubling
  uint32_t num_overflow = 0;
  std::unordered_set<uint32_t> repair_seen;

  // Missing source symbols are regenerated on decode: their bytes are
  // never read before, so the buffer is not cleared.
  bool EnsureSource() {
    if (source) return true;
    source = SymbolBuffer(size_t(K) * T);
    if (!source) return false;
    have_source.assign(K, 0);
    occupant.assign(K, kFree);
    return true;
  }
  uint8_t* RepairData(uint32_t j) {
    const uint32_t at = repair_at[j];
    return at < K ? source.data() + size_t(at) * T
                  : overflow.data() + size_t(at - K) * T;
  }
  // A place for repair symbol j; false when out of memory.
  bool Park(uint32_t j, const uint8_t* symbol) {
    while (next_free < K &&
           (have_source[next_free] || occupant[next_free] != kFree)) {
      ++next_free;
    }
    if (next_free < K) {
      occupant[next_free] = j;
      repair_at[j] = next_free;
    } else {
      const size_t used = size_t(num_overflow) * T;
      if (!overflow || overflow.size() < used + T) {
        SymbolBuffer bigger(std::max(used * 2, size_t(32) * T));
        if (!bigger) return false;
        if (used) std::memcpy(bigger.data(), overflow.data(), used);
        overflow = std::move(bigger);
      }
      repair_at[j] = K + num_overflow++;
    }
    std::memmove(RepairData(j), symbol, T);
    return true;
  }
  void Clear() {
    have_source = std::vector<uint8_t>();
    occupant = std::vector<uint32_t>();
    repair_at = std::vector<uint32_t>();
    overflow.reset();
    num_overflow = 0;
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
      uint8_t* slot = im.source.data() + size_t(esi) * im.T;
      im.have_source[esi] = 1;
      const uint32_t j = im.occupant[esi];
      if (j != Impl::kFree) {  // move the parked repair symbol on
        im.occupant[esi] = Impl::kFree;
        if (!im.Park(j, slot)) {
          im.have_source[esi] = 0;
          im.occupant[esi] = j;
          return Status::kOutOfMemory;
        }
      }
      std::memcpy(slot, symbol, im.T);
      ++im.num_source;
    }
  } else if (!im.repair_seen.insert(esi).second) {
    res = AddResult::kDuplicate;
  } else {
    const uint32_t j = static_cast<uint32_t>(im.repair_esi.size());
    im.repair_at.push_back(Impl::kFree);
    if (!im.Park(j, symbol)) {
      im.repair_at.pop_back();
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
  // The LDPC rows and the source ISIs' rows come from the K' cache when
  // there is one (the same rows, computed once).
  const std::shared_ptr<const SparseRows> cached = source_rows_for(p);
  SparseRows rows;
  rows.cols.reserve(size_t(Kp + nrep) * 8 + size_t(p.S) * 32);
  rows.start.reserve(size_t(p.S) + Kp + nrep + 1);
  std::vector<uint32_t> row_input;
  row_input.reserve(size_t(p.S) + Kp + nrep);
  row_input.assign(p.S, kNoInput);
  if (cached) {
    for (uint32_t r = 0; r < p.S; ++r) append_row(*cached, r, &rows);
  } else {
    append_ldpc_rows(p, &rows);
  }
  auto append_isi = [&](uint32_t isi) {
    if (cached && isi < Kp) {
      append_row(*cached, p.S + isi, &rows);
    } else {
      append_lt_row(p, isi, &rows);
    }
  };
  for (uint32_t x = K; x < Kp; ++x) {
    append_isi(x);
    row_input.push_back(kNoInput);
  }
  for (uint32_t x = 0; x < K; ++x) {
    if (!have_source[x]) continue;
    append_isi(x);
    row_input.push_back(x);
  }
  for (uint32_t j = 0; j < nrep; ++j) {
    append_lt_row(p, isi_of_esi(p, K, repair_esi[j]), &rows);
    row_input.push_back(K + j);
  }
  EncodingPlan plan;
  if (!pi_solve(p, rows, row_input, K + nrep, &plan, nullptr,
                PlanForm::kFused)) {
    return Status::kNeedMoreSymbols;
  }
  std::vector<const uint8_t*> inputs(size_t(K) + nrep, nullptr);
  for (uint32_t x = 0; x < K; ++x) {
    if (have_source[x]) inputs[x] = source.data() + size_t(x) * T;
  }
  for (uint32_t j = 0; j < nrep; ++j) {
    inputs[K + j] = RepairData(j);
  }
  SymbolBuffer work(size_t(plan.num_slots) * T);
  if (!work) return Status::kOutOfMemory;
  plan.Replay(work.data(), T, inputs.data());
  PhaseTimer timer(PhaseTimer::kSymbol);
  for (uint32_t x = 0; x < K; ++x) {
    if (have_source[x]) continue;
    uint8_t* out = source.data() + size_t(x) * T;
    if (cached) {
      lt_encode_columns(plan, work.data(), T, cached->begin(p.S + x),
                        cached->degree(p.S + x), out);
    } else {
      lt_encode(p, plan, work.data(), T, x, out);
    }
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

// What the containers really hold (capacities, not sizes). The repair set's
// nodes are counted at 32 bytes: a 4-byte key and a next pointer, in the
// allocator's smallest chunk.
size_t BlockDecoder::HeldBytes() const {
  const Impl& im = *impl_;
  return im.source.size() + im.overflow.size() + im.have_source.capacity() +
         sizeof(uint32_t) * (im.occupant.capacity() + im.repair_esi.capacity() +
                             im.repair_at.capacity()) +
         sizeof(void*) * im.repair_seen.bucket_count() +
         32 * im.repair_seen.size();
}

SymbolBuffer BlockDecoder::TakeSource() {
  Impl& im = *impl_;
  if (!im.decoded) return SymbolBuffer();
  im.Clear();
  return std::move(im.source);
}

}  // namespace fec
}  // namespace rqcast

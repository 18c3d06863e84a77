// BlockEncoder: intermediate symbols by replaying the cached encoding plan
// of K' (§5.3.3.4), then LTEnc for repair symbols (§5.3.5.3).
#include <cstring>
#include <new>

#include "fec/codec.h"
#include "fec/constraint_matrix.h"
#include "fec/encoding_plan.h"
#include "fec/symbol_buffer.h"

namespace rqcast {
namespace fec {

struct BlockEncoder::Impl {
  SystematicParams p;
  uint32_t K = 0, T = 0;
  std::shared_ptr<const EncodingPlan> plan;
  SymbolBuffer owned;              // the source block, when copied
  const uint8_t* source = nullptr;  // K*T, for the source ESIs
  SymbolBuffer work;               // plan->num_slots * T
};

BlockEncoder::BlockEncoder() : impl_(new Impl) {}
BlockEncoder::~BlockEncoder() = default;

Status BlockEncoder::Create(const uint8_t* source, uint32_t K, uint32_t T,
                            std::unique_ptr<BlockEncoder>* out) {
  if (source == nullptr || T == 0) return Status::kInvalidArgument;
  SymbolBuffer copy(size_t(K) * T);
  if (K != 0 && !copy) return Status::kOutOfMemory;
  if (K != 0) std::memcpy(copy.data(), source, size_t(K) * T);
  return CreateFrom(std::move(copy), nullptr, K, T, out);
}

Status BlockEncoder::CreateOwned(SymbolBuffer source, uint32_t K, uint32_t T,
                                 std::unique_ptr<BlockEncoder>* out) {
  if (!source || source.size() < size_t(K) * T) {
    return Status::kInvalidArgument;
  }
  return CreateFrom(std::move(source), nullptr, K, T, out);
}

Status BlockEncoder::CreateBorrowed(const uint8_t* source, uint32_t K,
                                    uint32_t T,
                                    std::unique_ptr<BlockEncoder>* out) {
  if (source == nullptr) return Status::kInvalidArgument;
  return CreateFrom(SymbolBuffer(), source, K, T, out);
}

Status BlockEncoder::CreateFrom(SymbolBuffer owned, const uint8_t* borrowed,
                                uint32_t K, uint32_t T,
                                std::unique_ptr<BlockEncoder>* out) {
  if (out == nullptr || T == 0) return Status::kInvalidArgument;
  SystematicParams p;
  if (K == 0 || !systematic_params(K, &p)) {
    return K == 0 ? Status::kInvalidArgument : Status::kTooManySourceSymbols;
  }
  std::unique_ptr<BlockEncoder> enc(new (std::nothrow) BlockEncoder);
  if (!enc || !enc->impl_) return Status::kOutOfMemory;
  Impl& im = *enc->impl_;
  im.p = p;
  im.K = K;
  im.T = T;
  im.plan = encoding_plan_for(p);
  if (!im.plan) return Status::kOutOfMemory;  // singular: cannot happen
  im.owned = std::move(owned);
  im.source = borrowed ? borrowed : im.owned.data();
  im.work = SymbolBuffer(size_t(im.plan->num_slots) * T);
  if (!im.work) return Status::kOutOfMemory;
  // Inputs are the ISIs 0..K'-1; the padding ISIs K..K'-1 are zero.
  std::unique_ptr<const uint8_t*[]> inputs(
      new (std::nothrow) const uint8_t*[p.K_prime]);
  if (!inputs) return Status::kOutOfMemory;
  for (uint32_t x = 0; x < p.K_prime; ++x) {
    inputs[x] = x < K ? im.source + size_t(x) * T : nullptr;
  }
  im.plan->Replay(im.work.data(), T, inputs.get());
  // A copied source block is not kept: a source symbol is LTEnc of the
  // intermediate symbols at ISI = ESI (§5.3.1, the code is systematic),
  // about as cheap as a repair symbol, and the block then holds L + 1
  // symbols instead of K + L + 1. A borrowed block costs nothing to keep.
  if (!borrowed) {
    im.owned = SymbolBuffer();
    im.source = nullptr;
  }
  *out = std::move(enc);
  return Status::kOk;
}

uint32_t BlockEncoder::K() const { return impl_->K; }
uint32_t BlockEncoder::T() const { return impl_->T; }

size_t BlockEncoder::MemoryBytes() const {
  return impl_->owned.size() + impl_->work.size();
}

uint64_t BlockEncoder::MemoryBytesFor(uint32_t K, uint32_t T) {
  SystematicParams p;
  if (K == 0 || !systematic_params(K, &p)) return 0;
  return uint64_t(p.L + 1) * T;
}

Status BlockEncoder::Symbol(uint32_t esi, uint8_t* out) const {
  if (out == nullptr) return Status::kInvalidArgument;
  if (esi > kMaxEsi) return Status::kEsiOutOfRange;
  const Impl& im = *impl_;
  if (esi < im.K) {
    if (im.source) {
      std::memcpy(out, im.source + size_t(esi) * im.T, im.T);
    } else {
      lt_encode(im.p, *im.plan, im.work.data(), im.T, esi, out);
    }
    return Status::kOk;
  }
  lt_encode(im.p, *im.plan, im.work.data(), im.T, isi_of_esi(im.p, im.K, esi),
            out);
  return Status::kOk;
}

Status BlockEncoder::Symbols(uint32_t first_esi, uint32_t count, uint8_t* out,
                             size_t stride) const {
  if (count == 0) return Status::kOk;
  if (out == nullptr || stride < impl_->T) return Status::kInvalidArgument;
  if (first_esi > kMaxEsi || count - 1 > kMaxEsi - first_esi) {
    return Status::kEsiOutOfRange;
  }
  const Impl& im = *impl_;
  if (im.source) {
    for (uint32_t j = 0; j < count; ++j) {
      Symbol(first_esi + j, out + size_t(j) * stride);
    }
    return Status::kOk;
  }
  // Each LTEnc sums a handful of intermediate symbols scattered over the
  // block's megabytes, which a server prepared long before and which are
  // out of cache by then: the sums waited on memory. So the columns of
  // the symbol kAhead further on are found, and its symbols prefetched,
  // before this one is summed (a file's 17 prepared blocks of K = 12 337,
  // every source packet and 1.2 % repair in runs of 256: 0.075-0.119 s
  // before, docs/BENCHMARKS.md 2026-12-05).
  constexpr uint32_t kAhead = 2;
  struct Row {
    uint32_t n;
    uint32_t cols[kMaxLtColumns];
  };
  Row rows[kAhead + 1];
  const uint8_t* work = im.work.data();
  const auto load = [&](uint32_t j) {
    Row& r = rows[j % (kAhead + 1)];
    r.n = lt_columns(im.p, isi_of_esi(im.p, im.K, first_esi + j), r.cols);
    for (uint32_t c = 0; c < r.n; ++c) {
      prefetch_symbol(intermediate_symbol(*im.plan, work, im.T, r.cols[c]), im.T);
    }
  };
  for (uint32_t j = 0; j < count && j < kAhead; ++j) load(j);
  for (uint32_t j = 0; j < count; ++j) {
    if (j + kAhead < count) load(j + kAhead);
    const Row& r = rows[j % (kAhead + 1)];
    lt_encode_columns(*im.plan, work, im.T, r.cols, r.n, out + size_t(j) * stride);
  }
  return Status::kOk;
}

}  // namespace fec
}  // namespace rqcast

// referenceSymbols: encoding symbols computed without the encoding plan
// cache, for tests that hold the cached path against it.
//
// The cached path (fec::encoding_plan_for) solves a K' once per process,
// fuses the recorded row operations and replays them on every block of
// that K' (on a worker or, for small blocks, inline: napi/encoder.cc).
// This builds a fresh plan for the one call, replays the recorded
// operations one by one (EncodingPlan::Replay before Fuse) and runs LTEnc
// (RFC 6330 §5.3.5.3): the same arithmetic, none of the sharing.
#include <memory>
#include <vector>

#include "fec/codec.h"
#include "fec/encoding_plan.h"
#include "napi/util.h"

namespace rqcast {
namespace napi {
namespace {

using fec::Status;

// referenceSymbols(source: Uint8Array(K*T), K, T, firstEsi, count)
//   -> Buffer(count * T): encoding symbols firstEsi.. of the block.
Napi::Value ReferenceSymbols(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array source;
  uint32_t K, T, first, count;
  if (!ArgBytes(info, 0, "source", &source) ||
      !ArgUint32(info, 1, "K", 1, fec::kMaxKPrime, &K) ||
      !ArgUint32(info, 2, "T", 1, 65535, &T) ||
      !ArgUint32(info, 3, "firstEsi", 0, fec::kMaxEsi, &first,
                 Status::kEsiOutOfRange) ||
      !ArgUint32(info, 4, "count", 0, fec::kMaxEsi + 1u - first, &count,
                 Status::kEsiOutOfRange)) {
    return Napi::Value();
  }
  if (source.ByteLength() != uint64_t(K) * T) {
    ThrowInvalid(env, "source must hold K*T bytes");
    return Napi::Value();
  }
  fec::SystematicParams p;
  fec::systematic_params(K, &p);  // K <= kMaxKPrime was checked
  fec::EncodingPlan plan;
  if (!fec::build_encoding_plan(p, &plan, nullptr)) {
    ThrowStatus(env, Status::kOutOfMemory);  // singular: cannot happen
    return Napi::Value();
  }
  std::vector<const uint8_t*> inputs(p.K_prime, nullptr);
  for (uint32_t x = 0; x < K; ++x) {
    inputs[x] = source.Data() + size_t(x) * T;
  }
  std::vector<uint8_t> work(size_t(plan.num_slots) * T);
  plan.Replay(work.data(), T, inputs.data());  // not fused: op by op
  Napi::Buffer<uint8_t> out = NewBuffer(env, uint64_t(count) * T);
  if (out.IsEmpty()) return Napi::Value();
  for (uint32_t j = 0; j < count; ++j) {
    const uint32_t esi = first + j;
    // §5.3.1: source ESI X is ISI X; repair ESI X >= K is ISI X + K' - K.
    const uint32_t isi = esi < K ? esi : esi + (p.K_prime - K);
    fec::lt_encode(p, plan, work.data(), T, isi, out.Data() + size_t(j) * T);
  }
  return out;
}

}  // namespace

void InitPlanReference(Napi::Env env, Napi::Object exports) {
  exports.Set("referenceSymbols",
              Napi::Function::New<ReferenceSymbols>(env, "referenceSymbols"));
}

}  // namespace napi
}  // namespace rqcast

// The codec binding: RFC 6330 building blocks exposed for tests and tools,
// the OTI helpers, the GF(256) kernel switch, and the Encoder/Decoder
// classes (encoder.cc, decoder.cc).
//
// Every function checks its arguments (types, integer-ness, ranges) before
// reaching the core, whose functions assume sane inputs (rfc_rand with
// m = 0 or rfc_partition with J = 0 would divide by zero).
#include <string>

#include <cstring>

#include "fec/codec.h"
#include "fec/gf256.h"
#include "napi/register.h"
#include "napi/util.h"

namespace rqcast {
namespace napi {
namespace {

using fec::Status;

constexpr uint64_t kMaxSafeInteger = (1ull << 53) - 1;

// rfcRand(y, i, m): RFC 6330 §5.3.5.1.
Napi::Value RfcRand(const Napi::CallbackInfo& info) {
  uint32_t y, i, m;
  if (!ArgUint32(info, 0, "y", 0, 0xFFFFFFFFu, &y) ||
      !ArgUint32(info, 1, "i", 0, 255, &i) ||
      !ArgUint32(info, 2, "m", 1, 0xFFFFFFFFu, &m)) {
    return Napi::Value();
  }
  return Napi::Number::New(info.Env(),
                           fec::rfc_rand(y, static_cast<uint8_t>(i), m));
}

// rfcDeg(v, W): RFC 6330 §5.3.5.2; v < 2^20 as produced by Rand[., ., 2^20].
Napi::Value RfcDeg(const Napi::CallbackInfo& info) {
  uint32_t v, W;
  if (!ArgUint32(info, 0, "v", 0, (1u << 20) - 1, &v) ||
      !ArgUint32(info, 1, "W", 2, 0xFFFFFFFFu, &W)) {
    return Napi::Value();
  }
  return Napi::Number::New(info.Env(), fec::rfc_deg(v, W));
}

bool ArgSystematic(const Napi::CallbackInfo& info, size_t i,
                   fec::SystematicParams* p) {
  uint32_t K;
  if (!ArgUint32(info, i, "K", 1, 0xFFFFFFFFu, &K)) return false;
  if (!fec::systematic_params(K, p)) {
    return ThrowStatus(info.Env(), Status::kTooManySourceSymbols);
  }
  return true;
}

// systematicParams(K): the Table 2 row for the smallest K' >= K (§5.6).
Napi::Value SystematicParams(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  fec::SystematicParams p;
  if (!ArgSystematic(info, 0, &p)) return Napi::Value();
  Napi::Object o = Napi::Object::New(env);
  o.Set("Kprime", Napi::Number::New(env, p.K_prime));
  o.Set("J", Napi::Number::New(env, p.J));
  o.Set("S", Napi::Number::New(env, p.S));
  o.Set("H", Napi::Number::New(env, p.H));
  o.Set("W", Napi::Number::New(env, p.W));
  o.Set("L", Napi::Number::New(env, p.L));
  o.Set("P", Napi::Number::New(env, p.P));
  o.Set("P1", Napi::Number::New(env, p.P1));
  o.Set("U", Napi::Number::New(env, p.U));
  o.Set("B", Napi::Number::New(env, p.B));
  return o;
}

// rfcTuple(K, X): Tuple[K', X] of §5.3.5.4 with K' the row for K.
Napi::Value RfcTuple(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  fec::SystematicParams p;
  uint32_t X;
  if (!ArgSystematic(info, 0, &p) ||
      !ArgUint32(info, 1, "X", 0, 0xFFFFFFFFu, &X)) {
    return Napi::Value();
  }
  fec::Tuple t = fec::rfc_tuple(p, X);
  Napi::Object o = Napi::Object::New(env);
  o.Set("d", Napi::Number::New(env, t.d));
  o.Set("a", Napi::Number::New(env, t.a));
  o.Set("b", Napi::Number::New(env, t.b));
  o.Set("d1", Napi::Number::New(env, t.d1));
  o.Set("a1", Napi::Number::New(env, t.a1));
  o.Set("b1", Napi::Number::New(env, t.b1));
  return o;
}

// rfcPartition(I, J): Partition[I, J] of §4.4.1.2 -> {IL, IS, JL, JS}.
Napi::Value RfcPartition(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t I;
  uint32_t J;
  if (!ArgUint(info, 0, "I", 0, kMaxSafeInteger, &I) ||
      !ArgUint32(info, 1, "J", 1, 0xFFFFFFFFu, &J)) {
    return Napi::Value();
  }
  // Partition's fields are 32-bit (codec.h): IL = ceil(I/J) must fit.
  if ((I + J - 1) / J > 0xFFFFFFFFull) {
    ThrowInvalid(env, "I/J must be below 2^32");
    return Napi::Value();
  }
  fec::Partition p = fec::rfc_partition(I, J);
  Napi::Object o = Napi::Object::New(env);
  o.Set("IL", Napi::Number::New(env, p.IL));
  o.Set("IS", Napi::Number::New(env, p.IS));
  o.Set("JL", Napi::Number::New(env, p.JL));
  o.Set("JS", Napi::Number::New(env, p.JS));
  return o;
}

// Reads F, T, Z, N, Al at info[0..4]. Values too wide for their OTI field
// are OTI bound violations, like the ones oti_validate finds.
bool ArgOtiFields(const Napi::CallbackInfo& info, fec::Oti* oti) {
  uint64_t F;
  uint32_t T, Z, N, Al;
  if (!ArgUint(info, 0, "F", 0, kMaxSafeInteger, &F,
               Status::kTransferTooLong) ||
      !ArgUint32(info, 1, "T", 0, 0xFFFF, &T, Status::kOtiOutOfBounds) ||
      !ArgUint32(info, 2, "Z", 0, 256, &Z, Status::kOtiOutOfBounds) ||
      !ArgUint32(info, 3, "N", 0, 0xFFFF, &N, Status::kOtiOutOfBounds) ||
      !ArgUint32(info, 4, "Al", 0, 0xFF, &Al, Status::kOtiOutOfBounds)) {
    return false;
  }
  oti->F = F;
  oti->T = static_cast<uint16_t>(T);
  oti->Z = static_cast<uint16_t>(Z);
  oti->N = static_cast<uint16_t>(N);
  oti->Al = static_cast<uint8_t>(Al);
  return true;
}

// otiEncode(F, T, Z, N, Al) -> Buffer(12); validates every bound first.
Napi::Value OtiEncode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  fec::Oti oti;
  if (!ArgOtiFields(info, &oti)) return Napi::Value();
  Status s = fec::oti_validate(oti);
  if (s != Status::kOk) {
    ThrowStatus(env, s);
    return Napi::Value();
  }
  Napi::Buffer<uint8_t> out = NewBuffer(env, fec::kOtiSize);
  if (out.IsEmpty()) return Napi::Value();
  fec::oti_encode(oti, out.Data());
  return out;
}

// otiDecode(bytes) -> Float64Array [F, T, Z, N, Al]; validates every
// bound. A typed array rather than an object, as otiLayout below: every
// ObjectDecoder parses its OTI.
Napi::Value OtiDecode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array in;
  if (!ArgBytes(info, 0, "oti", &in)) return Napi::Value();
  fec::Oti oti;
  Status s = fec::oti_decode(in.Data(), in.ByteLength(), &oti);
  if (s != Status::kOk) {
    ThrowStatus(env, s);
    return Napi::Value();
  }
  Napi::Float64Array out = Napi::Float64Array::New(env, 5);
  if (env.IsExceptionPending()) return Napi::Value();
  out[0] = static_cast<double>(oti.F);
  out[1] = oti.T;
  out[2] = oti.Z;
  out[3] = oti.N;
  out[4] = oti.Al;
  return out;
}

// otiLayout(bytes) -> the §4.4.1.2 layout of the object, as a
// Float64Array [F, T, Z, N, Al, Kt, KL, KS, ZL, ZS, TL, TS, NL, NS]
// (lib/fec/oti.ts names them). Every new ObjectEncoder and ObjectDecoder
// asks for it: an object with fourteen named properties made through
// N-API cost 0.03 ms, and 0.1–0.2 ms right after a full GC, a fifth of a
// K = 1 000 encode; one typed array costs a few microseconds.
Napi::Value OtiLayout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array in;
  if (!ArgBytes(info, 0, "oti", &in)) return Napi::Value();
  fec::Oti oti;
  Status s = fec::oti_decode(in.Data(), in.ByteLength(), &oti);
  fec::ObjectLayout layout;
  if (s == Status::kOk) s = fec::object_layout(oti, &layout);
  if (s != Status::kOk) {
    ThrowStatus(env, s);
    return Napi::Value();
  }
  const double values[] = {
      static_cast<double>(layout.oti.F), double(layout.oti.T),
      double(layout.oti.Z),              double(layout.oti.N),
      double(layout.oti.Al),             static_cast<double>(layout.Kt),
      double(layout.blocks.IL),          double(layout.blocks.IS),
      double(layout.blocks.JL),          double(layout.blocks.JS),
      double(layout.subblocks.IL),       double(layout.subblocks.IS),
      double(layout.subblocks.JL),       double(layout.subblocks.JS),
  };
  constexpr size_t n = sizeof(values) / sizeof(values[0]);
  Napi::Float64Array out = Napi::Float64Array::New(env, n);
  if (env.IsExceptionPending()) return Napi::Value();
  std::memcpy(out.Data(), values, sizeof(values));
  return out;
}

// otiDerive(F, payloadSize, Al, SS, WS) -> {F, T, Z, N, Al} (§4.3).
Napi::Value OtiDerive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t F, WS;
  uint32_t P, Al, SS;
  if (!ArgUint(info, 0, "F", 0, kMaxSafeInteger, &F,
               Status::kTransferTooLong) ||
      !ArgUint32(info, 1, "payloadSize", 0, 0xFFFFFFFFu, &P) ||
      !ArgUint32(info, 2, "Al", 1, 0xFF, &Al) ||
      !ArgUint32(info, 3, "SS", 1, 0xFFFFFFFFu, &SS) ||
      !ArgUint(info, 4, "WS", 1, kMaxSafeInteger, &WS)) {
    return Napi::Value();
  }
  fec::Oti oti;
  Status s = fec::oti_derive(F, P, static_cast<uint8_t>(Al), SS, WS, &oti);
  if (s != Status::kOk) {
    ThrowStatus(env, s);
    return Napi::Value();
  }
  return OtiObject(env, oti);
}

// statusCodes() -> the stable code of every Status, indexed by its value.
Napi::Value StatusCodes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int last = static_cast<int>(fec::kLastStatus);
  Napi::Array out = Napi::Array::New(env, last + 1);
  for (int i = 0; i <= last; ++i) {
    out.Set(i, Napi::String::New(env,
                                 fec::status_code(static_cast<Status>(i))));
  }
  return out;
}

Napi::Value Gf256Kernel(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), fec::gf256::kernel_name());
}

Napi::Value Gf256Kernels(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<const char*> names = fec::gf256::available_kernels();
  Napi::Array out = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    out.Set(static_cast<uint32_t>(i), Napi::String::New(env, names[i]));
  }
  return out;
}

// setGf256Kernel(name): process-wide; meant for tests and benchmarks, not
// while background jobs run.
Napi::Value SetGf256Kernel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    ThrowInvalid(env, "name must be a string");
    return Napi::Value();
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (!fec::gf256::set_kernel(name.c_str())) {
    ThrowCode(env, kErrUnknownKernel,
              "GF(256) kernel not available on this CPU: " + name);
    return Napi::Value();
  }
  return env.Undefined();
}

// codecPhaseCounters(reset?): process-wide time (ns) the codec spent in
// the solver (matrix) and in symbol arithmetic (codec.h PhaseCounters),
// read and optionally reset in one call, for benchmarks.
Napi::Value CodecPhaseCounters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const fec::PhaseCounters c = fec::phase_counters();
  if (info.Length() > 0 && info[0].ToBoolean().Value()) {
    fec::reset_phase_counters();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("solverNs", Napi::Number::New(env, static_cast<double>(c.solver_ns)));
  o.Set("symbolNs", Napi::Number::New(env, static_cast<double>(c.symbol_ns)));
  o.Set("solves", Napi::Number::New(env, static_cast<double>(c.solves)));
  o.Set("replays", Napi::Number::New(env, static_cast<double>(c.replays)));
  return o;
}

}  // namespace

void RegisterCodec(Napi::Env env, Napi::Object exports) {
  RegisterInFlight(env);
  exports.Set("rfcRand", Napi::Function::New<RfcRand>(env, "rfcRand"));
  exports.Set("rfcDeg", Napi::Function::New<RfcDeg>(env, "rfcDeg"));
  exports.Set("rfcTuple", Napi::Function::New<RfcTuple>(env, "rfcTuple"));
  exports.Set("systematicParams",
              Napi::Function::New<SystematicParams>(env, "systematicParams"));
  exports.Set("rfcPartition",
              Napi::Function::New<RfcPartition>(env, "rfcPartition"));
  exports.Set("otiEncode", Napi::Function::New<OtiEncode>(env, "otiEncode"));
  exports.Set("otiDecode", Napi::Function::New<OtiDecode>(env, "otiDecode"));
  exports.Set("otiLayout", Napi::Function::New<OtiLayout>(env, "otiLayout"));
  exports.Set("otiDerive", Napi::Function::New<OtiDerive>(env, "otiDerive"));
  exports.Set("statusCodes",
              Napi::Function::New<StatusCodes>(env, "statusCodes"));
  exports.Set("gf256Kernel",
              Napi::Function::New<Gf256Kernel>(env, "gf256Kernel"));
  exports.Set("gf256Kernels",
              Napi::Function::New<Gf256Kernels>(env, "gf256Kernels"));
  exports.Set("codecPhaseCounters",
              Napi::Function::New<CodecPhaseCounters>(env,
                                                      "codecPhaseCounters"));
  exports.Set("setGf256Kernel",
              Napi::Function::New<SetGf256Kernel>(env, "setGf256Kernel"));
  InitEncoder(env, exports);
  InitDecoder(env, exports);
  InitPlanReference(env, exports);
}

}  // namespace napi
}  // namespace rqcast

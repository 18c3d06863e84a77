// SHA-256 whose state is plain bytes held by JS, and whose update can run
// on the thread pool.
//
// A fetch hashes every byte of an object as its blocks are written
// (lib/client/sinks/file-writer.ts): on the JS thread, that is time the
// fetch's reads wait behind (over TCP the server's round trip is how soon
// the fetch comes back to its socket). sha256UpdateAsync hashes on a libuv
// worker; the JS side (lib/support/sha256.ts) runs those jobs one at a
// time, in order, so the state is carried from job to job. The state is
// OpenSSL's SHA256_CTX (Node's own OpenSSL, whose symbols the node binary
// exports), copied in when a job is queued and back when it is done: the
// worker never touches JS memory but the bytes it hashes, which the job
// keeps referenced.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
#include <string.h>

#include <cstdint>

#include "napi/register.h"
#include "napi/util.h"

namespace rqcast {
namespace napi {
namespace {

constexpr size_t kStateBytes = sizeof(SHA256_CTX);

// The state held in `v`, if it is one (a Uint8Array of the state's size
// whose counters are in range); throws and returns false otherwise.
bool ReadState(Napi::Env env, const Napi::Value& v, SHA256_CTX* ctx, uint8_t** at) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowInvalid(env, "state must be a Uint8Array from sha256Init");
    return false;
  }
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  if (a.ByteLength() != kStateBytes) {
    ThrowInvalid(env, "state must be a Uint8Array from sha256Init");
    return false;
  }
  uint8_t* p = static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
  memcpy(ctx, p, kStateBytes);
  // SHA256_Update indexes its block buffer by num: never trust it past 64.
  if (ctx->num >= SHA256_CBLOCK || ctx->md_len != SHA256_DIGEST_LENGTH) {
    ThrowInvalid(env, "state is not a SHA-256 state");
    return false;
  }
  if (at != nullptr) *at = p;
  return true;
}

bool ReadData(Napi::Env env, const Napi::Value& v, Napi::Uint8Array* out) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowInvalid(env, "data must be a Uint8Array");
    return false;
  }
  *out = v.As<Napi::Uint8Array>();
  return true;
}

const uint8_t* Bytes(const Napi::Uint8Array& a) {
  return static_cast<const uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
}

// The digest of the bytes so far; `ctx` itself is left to go on.
Napi::Buffer<uint8_t> DigestOf(Napi::Env env, const SHA256_CTX& ctx) {
  SHA256_CTX end = ctx;
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, SHA256_DIGEST_LENGTH);
  SHA256_Final(out.Data(), &end);
  return out;
}

// sha256Init() → a fresh state (Uint8Array).
Napi::Value Sha256Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  Napi::Uint8Array state = Napi::Uint8Array::New(env, kStateBytes);
  memcpy(static_cast<uint8_t*>(state.ArrayBuffer().Data()) + state.ByteOffset(), &ctx, kStateBytes);
  return state;
}

// sha256Update(state, data): hashes data on this thread, state in place.
Napi::Value Sha256Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SHA256_CTX ctx;
  uint8_t* at = nullptr;
  Napi::Uint8Array data;
  if (info.Length() < 2 || !ReadState(env, info[0], &ctx, &at) || !ReadData(env, info[1], &data)) return Napi::Value();
  SHA256_Update(&ctx, Bytes(data), data.ByteLength());
  memcpy(at, &ctx, kStateBytes);
  return env.Undefined();
}

// sha256Digest(state) → the 32-byte digest of the bytes so far (state unchanged).
Napi::Value Sha256Digest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SHA256_CTX ctx;
  if (info.Length() < 1 || !ReadState(env, info[0], &ctx, nullptr)) return Napi::Value();
  return DigestOf(env, ctx);
}

class Sha256Worker : public Napi::AsyncWorker {
 public:
  Sha256Worker(Napi::Env env, const SHA256_CTX& ctx, Napi::Uint8Array state, Napi::Uint8Array data)
      : Napi::AsyncWorker(env, "rqcast.sha256Update"),
        deferred_(Napi::Promise::Deferred::New(env)),
        ctx_(ctx),
        data_(Bytes(data)),
        length_(data.ByteLength()),
        token_(GetInFlight(env)) {
    state_ = Napi::Persistent(state.As<Napi::Object>());
    // The bytes stay alive (and are not collected) until the job is done.
    holder_ = Napi::Persistent(data.As<Napi::Object>());
  }
  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override {
    SHA256_Update(&ctx_, data_, length_);
    token_.Done();
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Uint8Array state = state_.Value().As<Napi::Uint8Array>();
    memcpy(static_cast<uint8_t*>(state.ArrayBuffer().Data()) + state.ByteOffset(), &ctx_, kStateBytes);
    deferred_.Resolve(DigestOf(env, ctx_));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  SHA256_CTX ctx_;
  const uint8_t* data_;
  size_t length_;
  InFlightToken token_;
  Napi::ObjectReference state_;
  Napi::ObjectReference holder_;
};

// sha256UpdateAsync(state, data) → Promise<Buffer>: hashes data on the
// thread pool from the state as it is now, writes the new state back into
// `state` and resolves to the digest of the bytes so far. The caller runs
// one job per state at a time (a job queued meanwhile would start from the
// state before this one's bytes).
Napi::Value Sha256UpdateAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SHA256_CTX ctx;
  Napi::Uint8Array data;
  if (info.Length() < 2 || !ReadState(env, info[0], &ctx, nullptr) || !ReadData(env, info[1], &data)) return Napi::Value();
  auto* worker = new Sha256Worker(env, ctx, info[0].As<Napi::Uint8Array>(), data);
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

}  // namespace

void RegisterSha256(Napi::Env env, Napi::Object exports) {
  exports.Set("sha256Init", Napi::Function::New<Sha256Init>(env, "sha256Init"));
  exports.Set("sha256Update", Napi::Function::New<Sha256Update>(env, "sha256Update"));
  exports.Set("sha256Digest", Napi::Function::New<Sha256Digest>(env, "sha256Digest"));
  exports.Set("sha256UpdateAsync", Napi::Function::New<Sha256UpdateAsync>(env, "sha256UpdateAsync"));
}

}  // namespace napi
}  // namespace rqcast

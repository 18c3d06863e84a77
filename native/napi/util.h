// Small helpers shared by the codec binding: argument checks and errors.
//
// Exceptions are disabled (NAPI_DISABLE_CPP_EXCEPTIONS): every helper that
// can fail throws a JS exception and returns false; the caller returns at
// once. Errors carry a stable `.code` (the core's status_code() or one of
// the binding codes below) and, for core statuses, the numeric `.status`.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "fec/codec.h"
#include "udp/udp.h"

namespace rqcast {
namespace napi {

// Binding-level codes (states of the JS objects, not of the RFC codec).
constexpr const char* kErrBusy = "ERR_RQ_BUSY";
constexpr const char* kErrClosed = "ERR_RQ_CLOSED";
constexpr const char* kErrNotDecoded = "ERR_RQ_NOT_DECODED";
constexpr const char* kErrBlockReleased = "ERR_RQ_BLOCK_RELEASED";
constexpr const char* kErrObjectTooLarge = "ERR_RQ_OBJECT_TOO_LARGE";
constexpr const char* kErrInputDetached = "ERR_RQ_INPUT_DETACHED";
constexpr const char* kErrUnknownKernel = "ERR_RQ_UNKNOWN_KERNEL";
// Socket-level codes, shared by the replicator and the receiver.
constexpr const char* kErrBadAddress = "ERR_RQ_BAD_ADDRESS";
constexpr const char* kErrAddressFamily = "ERR_RQ_ADDRESS_FAMILY";
constexpr const char* kErrPacketTooLarge = "ERR_RQ_PACKET_TOO_LARGE";
constexpr const char* kErrSocket = "ERR_RQ_SOCKET";
// A multicast interface (name, index or IPv4 address) this host lacks.
constexpr const char* kErrNoSuchInterface = "ERR_RQ_NO_SUCH_INTERFACE";

// o[name] = v as a JS number: the counters objects the bindings return
// (counts stay exact below 2^53).
inline void SetCount(Napi::Object o, const char* name, uint64_t v) {
  o.Set(name, Napi::Number::New(o.Env(), static_cast<double>(v)));
}

// Largest buffer the binding allocates in one piece (Node's Buffer limit
// on 64-bit builds is 2^32 bytes; stay below any V8 limit).
constexpr uint64_t kMaxBufferBytes = 0xFFFFFFFFull;

Napi::Error MakeCodeError(Napi::Env env, const char* code,
                          const std::string& message);
Napi::Error MakeStatusError(Napi::Env env, fec::Status s);
// Throw and return false, for `if (!Check(...)) return ...;` chains.
bool ThrowCode(Napi::Env env, const char* code, const std::string& message);
bool ThrowStatus(Napi::Env env, fec::Status s);
// An errno from the socket layer: `code`, `message`, and an `errno`
// property carrying the value.
bool ThrowErrnoCode(Napi::Env env, const char* code, int err,
                    const std::string& message);
// strerror_r's text for err.
std::string ErrnoText(int err);
inline bool ThrowInvalid(Napi::Env env, const std::string& message) {
  return ThrowCode(env, fec::status_code(fec::Status::kInvalidArgument),
                   message);
}

// An integer JS number in [min, max] (max <= 2^53). On failure throws
// `status`'s error (default kInvalidArgument) naming the argument.
bool ArgUint(const Napi::CallbackInfo& info, size_t i, const char* name,
             uint64_t min, uint64_t max, uint64_t* out,
             fec::Status status = fec::Status::kInvalidArgument);
bool ArgUint32(const Napi::CallbackInfo& info, size_t i, const char* name,
               uint32_t min, uint32_t max, uint32_t* out,
               fec::Status status = fec::Status::kInvalidArgument);
// A Uint8Array (Buffers are Uint8Arrays).
bool ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* name,
              Napi::Uint8Array* out);
bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* name,
             bool* out);
// A string of at most max_bytes (UTF-8), or undefined (absent, also past
// the last argument) giving "".
bool ArgOptionalString(const Napi::CallbackInfo& info, size_t i,
                       const char* name, size_t max_bytes, std::string* out);

// Multicast arguments, shared by the replicator (a channel's group) and the
// receiver (memberships). Messages never carry the address.
// A group: a numeric address in 224.0.0.0/4 or ff00::/8 (IPv6 with an
// optional %zone) and `port`; ERR_RQ_BAD_ADDRESS otherwise.
bool ArgGroup(const Napi::CallbackInfo& info, size_t i, uint16_t port,
              udp::Endpoint* out);
// The source of a source-specific group of `family` (RFC 4607): undefined
// or "" for none (family 0), else a numeric unicast address of that family;
// ERR_RQ_BAD_ADDRESS otherwise.
bool ArgGroupSource(const Napi::CallbackInfo& info, size_t i, int family,
                    udp::Endpoint* out);
// The interface of a group of `family` (udp::resolve_interface): undefined
// or "" for none, else a name, an index or (IPv4) one of its addresses;
// ERR_RQ_NO_SUCH_INTERFACE when this host has no such interface. An IPv6
// group's %zone stands for its interface when none is given.
bool ArgGroupInterface(const Napi::CallbackInfo& info, size_t i,
                       const udp::Endpoint& group, udp::Interface* out);

// A new Buffer of n bytes; throws ERR_RQ_OBJECT_TOO_LARGE or the engine's
// allocation error and returns an empty value on failure.
Napi::Buffer<uint8_t> NewBuffer(Napi::Env env, uint64_t n);

// The layout as a plain object {F, T, Z, N, Al, Kt, KL, KS, ZL, ZS, TL,
// TS, NL, NS} (RFC 6330 §4.4.1.2 names).
Napi::Object LayoutObject(Napi::Env env, const fec::ObjectLayout& l);
Napi::Object OtiObject(Napi::Env env, const fec::Oti& oti);

// Counts worker jobs that may still touch memory owned by this environment
// (input buffers, wrapped objects). The environment's cleanup hook waits
// for it to reach zero, so that tearing down a worker thread or the main
// environment never frees memory a background job is reading.
class InFlight {
 public:
  void Enter() {
    std::lock_guard<std::mutex> lock(mu_);
    ++count_;
  }
  void Leave() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--count_ == 0) cv_.notify_all();
  }
  void WaitIdle() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return count_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

// The InFlight counter of an environment. Kept in a process-wide table
// keyed by napi_env rather than in the environment's instance data, which
// is a single slot that other parts of the addon may want.
// RegisterInFlight adds the counter and the cleanup hook that waits on it.
void RegisterInFlight(Napi::Env env);
std::shared_ptr<InFlight> GetInFlight(Napi::Env env);

// Holds one unit of InFlight from construction (JS thread) until Done()
// (worker thread, end of Execute) or destruction, whichever comes first.
class InFlightToken {
 public:
  explicit InFlightToken(std::shared_ptr<InFlight> f) : f_(std::move(f)) {
    f_->Enter();
  }
  ~InFlightToken() { Done(); }
  void Done() {
    if (!done_) {
      done_ = true;
      f_->Leave();
    }
  }
  InFlightToken(const InFlightToken&) = delete;
  InFlightToken& operator=(const InFlightToken&) = delete;

 private:
  std::shared_ptr<InFlight> f_;
  bool done_ = false;
};

void InitEncoder(Napi::Env env, Napi::Object exports);
void InitDecoder(Napi::Env env, Napi::Object exports);
void InitPlanReference(Napi::Env env, Napi::Object exports);

}  // namespace napi
}  // namespace rqcast

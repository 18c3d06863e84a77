#include "napi/util.h"

#include <errno.h>
#include <string.h>

#include <cmath>
#include <map>

namespace rqcast {
namespace napi {

Napi::Error MakeCodeError(Napi::Env env, const char* code,
                          const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

Napi::Error MakeStatusError(Napi::Env env, fec::Status s) {
  Napi::Error err = MakeCodeError(env, fec::status_code(s),
                                  fec::status_message(s));
  err.Set("status", Napi::Number::New(env, static_cast<int>(s)));
  return err;
}

bool ThrowCode(Napi::Env env, const char* code, const std::string& message) {
  if (!env.IsExceptionPending()) {
    MakeCodeError(env, code, message).ThrowAsJavaScriptException();
  }
  return false;
}

bool ThrowErrnoCode(Napi::Env env, const char* code, int err,
                    const std::string& message) {
  if (env.IsExceptionPending()) return false;
  Napi::Error e = MakeCodeError(env, code, message);
  e.Set("errno", Napi::Number::New(env, err));
  e.ThrowAsJavaScriptException();
  return false;
}

std::string ErrnoText(int err) {
  char buf[128];
  // GNU strerror_r returns the message (maybe not in buf).
  return strerror_r(err, buf, sizeof buf);
}

bool ThrowStatus(Napi::Env env, fec::Status s) {
  if (!env.IsExceptionPending()) {
    MakeStatusError(env, s).ThrowAsJavaScriptException();
  }
  return false;
}

namespace {

bool ThrowArg(Napi::Env env, fec::Status status, const char* name,
              const std::string& what) {
  if (env.IsExceptionPending()) return false;
  Napi::Error err = MakeCodeError(env, fec::status_code(status),
                                  std::string(fec::status_message(status)) +
                                      ": " + name + " " + what);
  err.Set("status", Napi::Number::New(env, static_cast<int>(status)));
  err.ThrowAsJavaScriptException();
  return false;
}

}  // namespace

bool ArgUint(const Napi::CallbackInfo& info, size_t i, const char* name,
             uint64_t min, uint64_t max, uint64_t* out, fec::Status status) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsNumber()) {
    // A wrong type is always a programming error, never an OTI bound.
    return ThrowArg(env, fec::Status::kInvalidArgument, name,
                    "must be a number");
  }
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d)) {
    return ThrowArg(env, fec::Status::kInvalidArgument, name,
                    "must be an integer");
  }
  if (d < static_cast<double>(min) || d > static_cast<double>(max)) {
    return ThrowArg(env, status, name,
                    "must be in [" + std::to_string(min) + ", " +
                        std::to_string(max) + "]");
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

bool ArgUint32(const Napi::CallbackInfo& info, size_t i, const char* name,
               uint32_t min, uint32_t max, uint32_t* out, fec::Status status) {
  uint64_t v = 0;
  if (!ArgUint(info, i, name, min, max, &v, status)) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

bool ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* name,
              Napi::Uint8Array* out) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    return ThrowArg(env, fec::Status::kInvalidArgument, name,
                    "must be a Uint8Array");
  }
  *out = info[i].As<Napi::Uint8Array>();
  return true;
}

bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* name,
             bool* out) {
  if (i >= info.Length() || !info[i].IsBoolean()) {
    return ThrowArg(info.Env(), fec::Status::kInvalidArgument, name,
                    "must be a boolean");
  }
  *out = info[i].As<Napi::Boolean>().Value();
  return true;
}

bool ArgOptionalString(const Napi::CallbackInfo& info, size_t i,
                       const char* name, size_t max_bytes, std::string* out) {
  out->clear();
  if (i >= info.Length() || info[i].IsUndefined()) return true;
  if (!info[i].IsString()) {
    return ThrowArg(info.Env(), fec::Status::kInvalidArgument, name,
                    "must be a string");
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  if (out->size() > max_bytes) {
    return ThrowArg(info.Env(), fec::Status::kInvalidArgument, name,
                    "must be at most " + std::to_string(max_bytes) + " bytes");
  }
  return true;
}

bool ArgGroup(const Napi::CallbackInfo& info, size_t i, uint16_t port,
              udp::Endpoint* out) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsString())
    return ThrowCode(env, kErrBadAddress, "group must be a string");
  std::string a = info[i].As<Napi::String>().Utf8Value();
  if (a.size() > 80 || !udp::parse_endpoint(a.c_str(), port, out) ||
      !udp::is_multicast(*out)) {
    return ThrowCode(env, kErrBadAddress,
                     "group must be a multicast address (224.0.0.0/4 or ff00::/8)");
  }
  return true;
}

bool ArgGroupSource(const Napi::CallbackInfo& info, size_t i, int family,
                    udp::Endpoint* out) {
  *out = udp::Endpoint{};
  std::string a;
  if (!ArgOptionalString(info, i, "source", 80, &a)) return false;
  if (a.empty()) return true;
  if (!udp::parse_endpoint(a.c_str(), 0, out) || out->family() != family ||
      udp::is_multicast(*out) || udp::is_unspecified(*out)) {
    *out = udp::Endpoint{};
    return ThrowCode(info.Env(), kErrBadAddress,
                     "source must be a numeric unicast address of the group's family");
  }
  return true;
}

bool ArgGroupInterface(const Napi::CallbackInfo& info, size_t i,
                       const udp::Endpoint& group, udp::Interface* out) {
  std::string text;
  if (!ArgOptionalString(info, i, "interface", 80, &text)) return false;
  int rc = udp::resolve_interface(text.c_str(), group.family(), out);
  if (rc == EINVAL) {
    return ThrowErrnoCode(info.Env(), kErrNoSuchInterface, rc,
                          "interface of an IPv6 group must be a name or an index, "
                          "of an IPv4 group a name, an index or an IPv4 address");
  }
  if (rc != 0) {
    return ThrowErrnoCode(info.Env(), kErrNoSuchInterface, rc,
                          "no such interface on this host");
  }
  if (out->index == 0 && group.family() == AF_INET6)
    out->index = reinterpret_cast<const sockaddr_in6*>(&group.addr)->sin6_scope_id;
  return true;
}

Napi::Buffer<uint8_t> NewBuffer(Napi::Env env, uint64_t n) {
  if (n > kMaxBufferBytes) {
    ThrowCode(env, kErrObjectTooLarge,
              "result of " + std::to_string(n) +
                  " bytes exceeds the largest buffer");
    return Napi::Buffer<uint8_t>();
  }
  Napi::Buffer<uint8_t> buf =
      Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(n));
  if (env.IsExceptionPending()) return Napi::Buffer<uint8_t>();
  return buf;
}

Napi::Object OtiObject(Napi::Env env, const fec::Oti& oti) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("F", Napi::Number::New(env, static_cast<double>(oti.F)));
  o.Set("T", Napi::Number::New(env, oti.T));
  o.Set("Z", Napi::Number::New(env, oti.Z));
  o.Set("N", Napi::Number::New(env, oti.N));
  o.Set("Al", Napi::Number::New(env, oti.Al));
  return o;
}

Napi::Object LayoutObject(Napi::Env env, const fec::ObjectLayout& l) {
  Napi::Object o = OtiObject(env, l.oti);
  o.Set("Kt", Napi::Number::New(env, static_cast<double>(l.Kt)));
  o.Set("KL", Napi::Number::New(env, l.blocks.IL));
  o.Set("KS", Napi::Number::New(env, l.blocks.IS));
  o.Set("ZL", Napi::Number::New(env, l.blocks.JL));
  o.Set("ZS", Napi::Number::New(env, l.blocks.JS));
  o.Set("TL", Napi::Number::New(env, l.subblocks.IL));
  o.Set("TS", Napi::Number::New(env, l.subblocks.IS));
  o.Set("NL", Napi::Number::New(env, l.subblocks.JL));
  o.Set("NS", Napi::Number::New(env, l.subblocks.JS));
  return o;
}

namespace {

std::mutex g_envs_mu;
std::map<napi_env, std::shared_ptr<InFlight>>* g_envs = nullptr;

}  // namespace

void RegisterInFlight(Napi::Env env) {
  auto f = std::make_shared<InFlight>();
  {
    std::lock_guard<std::mutex> lock(g_envs_mu);
    if (g_envs == nullptr) {
      g_envs = new std::map<napi_env, std::shared_ptr<InFlight>>();
    }
    (*g_envs)[env] = f;
  }
  napi_env key = env;
  env.AddCleanupHook([key, f]() {
    // Background jobs read JS-owned memory (the encoder's input buffer)
    // and the wrapped objects' state: let them finish before the
    // environment frees either.
    f->WaitIdle();
    std::lock_guard<std::mutex> lock(g_envs_mu);
    auto it = g_envs->find(key);
    if (it != g_envs->end() && it->second == f) g_envs->erase(it);
  });
}

std::shared_ptr<InFlight> GetInFlight(Napi::Env env) {
  std::lock_guard<std::mutex> lock(g_envs_mu);
  if (g_envs != nullptr) {
    auto it = g_envs->find(env);
    if (it != g_envs->end()) return it->second;
  }
  // Not registered (cannot happen after RegisterCodec): a private counter
  // keeps the jobs correct, only without the teardown wait.
  return std::make_shared<InFlight>();
}

}  // namespace napi
}  // namespace rqcast

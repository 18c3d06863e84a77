// The replicator binding: one ObjectWrap over replicate::Engine.
//
// Every call only checks its arguments and hands them to the engine (which
// queues a command or copies packets into a ring); the engine's own thread
// does all sending. Low-water signals travel from that thread to JS through
// one ThreadSafeFunction, batched: the sender thread appends channel ids to
// a shared list and schedules at most one JS call at a time, which takes
// the whole list (so a burst of signals is one callback, never one per
// channel per loop).
//
// Lifetime: close() stops and joins the sender thread and releases the
// thread-safe function (which holds the event loop open while the
// replicator is open, as a socket does). The environment's cleanup hook and
// the wrapper's finalizer both run close(), so neither a worker's teardown
// nor a forgotten close() leaves a thread running.
#include <errno.h>
#include <string.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "napi/register.h"
#include "napi/replicator.h"
#include "napi/util.h"
#include "replicate/engine.h"
#include "udp/udp.h"

namespace rqcast {
namespace napi {
namespace {

constexpr const char* kErrReplicatorClosed = "ERR_RQ_REPLICATOR_CLOSED";
constexpr const char* kErrUnknownChannel = "ERR_RQ_UNKNOWN_CHANNEL";
constexpr const char* kErrChannelExists = "ERR_RQ_CHANNEL_EXISTS";
constexpr const char* kErrGroupExists = "ERR_RQ_GROUP_EXISTS";

// Marks the JS objects that are Replicators (napi_type_tag_object): other
// bindings take one as an argument (ReplicatorEngine).
constexpr napi_type_tag kReplicatorTag = {0x7271636173745265ull, 0x706c696361746f72ull};

// An engine errno as a typed JS error. Messages name the call, never an
// address (they may reach logs).
bool ThrowErrno(Napi::Env env, int err, const char* what) {
  if (env.IsExceptionPending()) return false;
  const char* code;
  std::string msg = what;
  switch (err) {
    case ENOENT: code = kErrUnknownChannel; msg += ": unknown channel"; break;
    case EEXIST: code = kErrChannelExists; msg += ": channel already exists"; break;
    case ESHUTDOWN: code = kErrReplicatorClosed; msg += ": replicator is closed"; break;
    case EMSGSIZE: code = kErrPacketTooLarge; msg += ": packet too large"; break;
    case EAFNOSUPPORT: code = kErrAddressFamily; msg += ": address family not available"; break;
    case EINVAL:
      code = fec::status_code(fec::Status::kInvalidArgument);
      msg += ": invalid argument";
      break;
    default:
      code = kErrSocket;
      msg += ": " + ErrnoText(err);
  }
  return ThrowErrnoCode(env, code, err, msg);
}

// What the sender thread and the JS thread share about low-water signals.
// Owned by a shared_ptr held by the Replicator and by each scheduled call,
// so a call that runs after the wrapper is gone touches live memory.
struct LowWaterQueue {
  std::mutex mu;
  std::vector<uint32_t> pending;
  bool scheduled = false;
  bool closed = false;  // JS side: set by close(), read by the JS call
};

class Replicator : public Napi::ObjectWrap<Replicator>,
                   public replicate::EventSink {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "Replicator",
        {
            InstanceMethod<&Replicator::CreateChannel>("createChannel"),
            InstanceMethod<&Replicator::RemoveChannel>("removeChannel"),
            InstanceMethod<&Replicator::AddDestination>("addDestination"),
            InstanceMethod<&Replicator::RemoveDestination>("removeDestination"),
            InstanceMethod<&Replicator::ClearDestinations>("clearDestinations"),
            InstanceMethod<&Replicator::AddGroup>("addGroup"),
            InstanceMethod<&Replicator::RemoveGroup>("removeGroup"),
            InstanceMethod<&Replicator::SetRate>("setRate"),
            InstanceMethod<&Replicator::SetPaused>("setPaused"),
            InstanceMethod<&Replicator::Push>("push"),
            InstanceMethod<&Replicator::SendTo>("sendTo"),
            InstanceMethod<&Replicator::ChannelStats>("channelStats"),
            InstanceMethod<&Replicator::Stats>("stats"),
            InstanceMethod<&Replicator::Barrier>("barrier"),
            InstanceMethod<&Replicator::Close>("close"),
        });
  }

  // new Replicator(options: {gso: boolean, sendBufferBytes: number},
  //                onLowWater: (ids: number[]) => void)
  explicit Replicator(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<Replicator>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    replicate::EngineOptions o;
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      ThrowInvalid(env, "Replicator(options, onLowWater) expected");
      return;
    }
    Napi::Object opts = info[0].As<Napi::Object>();
    Napi::Value gso = opts.Get("gso");
    if (!gso.IsUndefined()) {
      if (!gso.IsBoolean()) {
        ThrowInvalid(env, "options.gso must be a boolean");
        return;
      }
      o.gso = gso.As<Napi::Boolean>().Value();
    }
    Napi::Value sndbuf = opts.Get("sendBufferBytes");
    if (!sndbuf.IsUndefined()) {
      double d = sndbuf.IsNumber() ? sndbuf.As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 0 && d <= 1 << 30) || d != static_cast<int64_t>(d)) {
        ThrowInvalid(env, "options.sendBufferBytes must be an integer in [0, 2^30]");
        return;
      }
      if (d > 0) o.send_buffer_bytes = static_cast<int>(d);
    }
    queue_ = std::make_shared<LowWaterQueue>();
    engine_ = std::make_shared<replicate::Engine>(o, this);
    int rc = engine_->start();
    if (rc != 0) {
      engine_.reset();
      ThrowErrno(env, rc, "Replicator");
      return;
    }
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(),
                                          "rqcast-replicator", 0, 1);
    if (env.IsExceptionPending()) {
      engine_->stop();
      engine_.reset();
      return;
    }
    have_tsfn_ = true;
    napi_add_env_cleanup_hook(env, &Replicator::OnEnvCleanup, this);
    hook_ = true;
    info.This().As<Napi::Object>().TypeTag(&kReplicatorTag);
  }

  // ReplicatorEngine's half: `o` carries the tag.
  static std::shared_ptr<replicate::Engine> EngineOf(Napi::Object o) {
    Replicator* r = Unwrap(o);
    return r ? r->engine_ : nullptr;
  }
  static bool Is(Napi::Object o) { return o.CheckTypeTag(&kReplicatorTag); }

  ~Replicator() override { Shutdown(); }

  // Sender thread.
  void on_low_water(const uint32_t* channels, size_t count) override {
    bool schedule = false;
    {
      std::lock_guard<std::mutex> lk(queue_->mu);
      for (size_t i = 0; i < count; ++i) {
        if (std::find(queue_->pending.begin(), queue_->pending.end(),
                      channels[i]) == queue_->pending.end())
          queue_->pending.push_back(channels[i]);
      }
      if (!queue_->scheduled) schedule = queue_->scheduled = true;
    }
    if (!schedule) return;
    std::shared_ptr<LowWaterQueue> q = queue_;
    napi_status st = tsfn_.NonBlockingCall(
        [q](Napi::Env env, Napi::Function fn) { Deliver(env, fn, q); });
    if (st != napi_ok) {
      // Closing: nobody will take the list.
      std::lock_guard<std::mutex> lk(queue_->mu);
      queue_->scheduled = false;
    }
  }

 private:
  // JS thread: one call hands over every id signalled since the last one.
  static void Deliver(Napi::Env env, Napi::Function fn,
                      const std::shared_ptr<LowWaterQueue>& q) {
    std::vector<uint32_t> ids;
    {
      std::lock_guard<std::mutex> lk(q->mu);
      ids.swap(q->pending);
      q->scheduled = false;
      if (q->closed) return;
    }
    if (env == nullptr || fn.IsEmpty() || ids.empty()) return;
    Napi::Array arr = Napi::Array::New(env, ids.size());
    for (size_t i = 0; i < ids.size(); ++i)
      arr.Set(static_cast<uint32_t>(i), Napi::Number::New(env, ids[i]));
    fn.Call({arr});
    // A listener's exception stays pending and is reported by Node as
    // uncaught, as for any event emitter.
  }

  static void OnEnvCleanup(void* arg) {
    Replicator* self = static_cast<Replicator*>(arg);
    self->hook_ = false;  // Node removes a hook as it runs it
    self->Shutdown();
  }

  // Idempotent: stop the thread (no more signals), then release the TSFN.
  void Shutdown() {
    if (engine_) engine_->stop();
    if (queue_) {
      std::lock_guard<std::mutex> lk(queue_->mu);
      queue_->closed = true;
    }
    if (have_tsfn_) {
      have_tsfn_ = false;
      tsfn_.Release();
    }
    if (hook_) {
      hook_ = false;
      napi_remove_env_cleanup_hook(env_, &Replicator::OnEnvCleanup, this);
    }
  }

  bool Open(Napi::Env env) {
    if (engine_ && engine_->running()) return true;
    return ThrowCode(env, kErrReplicatorClosed, "replicator is closed");
  }

  static bool ArgChannel(const Napi::CallbackInfo& info, size_t i,
                         uint32_t* id) {
    return ArgUint32(info, i, "channel id", 0, 0xFFFFFFFFu, id);
  }

  static bool ArgEndpoint(const Napi::CallbackInfo& info, size_t i,
                          udp::Endpoint* out) {
    Napi::Env env = info.Env();
    uint32_t port;
    if (i >= info.Length() || !info[i].IsString()) {
      return ThrowCode(env, kErrBadAddress, "address must be a string");
    }
    if (!ArgUint32(info, i + 1, "port", 1, 65535, &port)) return false;
    std::string a = info[i].As<Napi::String>().Utf8Value();
    if (a.size() > 80 || !udp::parse_endpoint(a.c_str(),
                                               static_cast<uint16_t>(port), out)) {
      return ThrowCode(env, kErrBadAddress,
                       "address must be a numeric IPv4 or IPv6 address");
    }
    return true;
  }

  // createChannel(id, slotSize, capacity, lowWater, rate, burst)
  Napi::Value CreateChannel(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t id, slot, cap, low;
    uint64_t rate, burst;
    if (!Open(env) || !ArgChannel(info, 0, &id) ||
        !ArgUint32(info, 1, "slotSize", 1, udp::kMaxDatagramPayload, &slot) ||
        !ArgUint32(info, 2, "capacity", 2, 1u << 24, &cap) ||
        !ArgUint32(info, 3, "lowWater", 0, 1u << 24, &low) ||
        !ArgUint(info, 4, "rateBytesPerSec", 0, 1ull << 50, &rate) ||
        !ArgUint(info, 5, "burstBytes", 0, 1ull << 50, &burst))
      return env.Undefined();
    if (burst != 0 && burst < slot) {
      // A bucket smaller than one packet could never send it.
      ThrowInvalid(env, "burstBytes must be 0 or at least slotSize");
      return env.Undefined();
    }
    replicate::ChannelConfig c;
    c.slot_size = slot;
    c.capacity = cap;
    c.low_water = low;
    c.rate_bytes_per_s = rate;
    c.burst_bytes = burst;
    int rc = engine_->create_channel(id, c);
    if (rc != 0) ThrowErrno(env, rc, "createChannel");
    return env.Undefined();
  }

  Napi::Value RemoveChannel(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t id;
    if (!Open(env) || !ArgChannel(info, 0, &id)) return env.Undefined();
    int rc = engine_->remove_channel(id);
    if (rc != 0) ThrowErrno(env, rc, "removeChannel");
    return env.Undefined();
  }

  Napi::Value AddDestination(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t id;
    udp::Endpoint to;
    if (!Open(env) || !ArgChannel(info, 0, &id) || !ArgEndpoint(info, 1, &to))
      return env.Undefined();
    int rc = engine_->add_destination(id, to);
    if (rc != 0) ThrowErrno(env, rc, "addDestination");
    return env.Undefined();
  }

  Napi::Value RemoveDestination(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t id;
    udp::Endpoint to;
    if (!Open(env) || !ArgChannel(info, 0, &id) || !ArgEndpoint(info, 1, &to))
      return env.Undefined();
    int rc = engine_->remove_destination(id, to);
    if (rc != 0) ThrowErrno(env, rc, "removeDestination");
    return env.Undefined();
  }

  Napi::Value ClearDestinations(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t id;
    if (!Open(env) || !ArgChannel(info, 0, &id)) return env.Undefined();
    int rc = engine_->clear_destinations(id);
    if (rc != 0) ThrowErrno(env, rc, "clearDestinations");
    return env.Undefined();
  }

  // addGroup(id, group, port, ttl, loop, interface?, source?): the
  // channel's multicast group (replicate::MulticastSink), opened here so
  // that every error is this call's.
  Napi::Value AddGroup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t id, port, ttl;
    bool loop;
    replicate::MulticastConfig c;
    if (!Open(env) || !ArgChannel(info, 0, &id) ||
        !ArgUint32(info, 2, "port", 1, 65535, &port) ||
        !ArgGroup(info, 1, static_cast<uint16_t>(port), &c.group) ||
        !ArgUint32(info, 3, "ttl", 0, 255, &ttl) ||
        !ArgBool(info, 4, "loop", &loop) ||
        !ArgGroupInterface(info, 5, c.group, &c.interface) ||
        !ArgGroupSource(info, 6, c.group.family(), &c.source))
      return env.Undefined();
    c.hops = static_cast<int>(ttl);
    c.loop = loop;
    replicate::MulticastStage stage = replicate::MulticastStage::kNone;
    int rc = engine_->add_group(id, c, &stage);
    if (rc == 0) return env.Undefined();
    // The group, ttl, interface and source were checked above, so what the
    // sink's setup can still refuse is the interface, the source's bind or
    // the socket itself; the engine's own answers (EEXIST, ENOENT,
    // ESHUTDOWN) come with stage kNone.
    switch (stage) {
      case replicate::MulticastStage::kInterface:
        ThrowErrnoCode(env, kErrNoSuchInterface, rc,
                       "addGroup: the interface cannot send multicast: " + ErrnoText(rc));
        break;
      case replicate::MulticastStage::kSource:
        ThrowErrnoCode(env, kErrBadAddress, rc,
                       rc == EADDRNOTAVAIL
                           ? "addGroup: source is not an address of this host"
                           : "addGroup: source cannot be bound: " + ErrnoText(rc));
        break;
      default:
        if (rc == EEXIST)
          ThrowErrnoCode(env, kErrGroupExists, rc, "addGroup: channel already has a group");
        else
          ThrowErrno(env, rc, "addGroup");
    }
    return env.Undefined();
  }

  // removeGroup(id): a channel without a group is left as it is.
  Napi::Value RemoveGroup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t id;
    if (!Open(env) || !ArgChannel(info, 0, &id)) return env.Undefined();
    int rc = engine_->remove_group(id);
    if (rc != 0) ThrowErrno(env, rc, "removeGroup");
    return env.Undefined();
  }

  // setRate(id, rate, burst): burst 0 = the default for the rate.
  Napi::Value SetRate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t id;
    uint64_t rate, burst;
    if (!Open(env) || !ArgChannel(info, 0, &id) ||
        !ArgUint(info, 1, "rateBytesPerSec", 0, 1ull << 50, &rate) ||
        !ArgUint(info, 2, "burstBytes", 0, 1ull << 50, &burst))
      return env.Undefined();
    int rc = engine_->set_rate(id, rate, burst);
    if (rc != 0) ThrowErrno(env, rc, "setRate");
    return env.Undefined();
  }

  Napi::Value SetPaused(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t id;
    bool paused;
    if (!Open(env) || !ArgChannel(info, 0, &id) ||
        !ArgBool(info, 1, "paused", &paused))
      return env.Undefined();
    int rc = engine_->set_paused(id, paused);
    if (rc != 0) ThrowErrno(env, rc, "setPaused");
    return env.Undefined();
  }

  // push(id, packets, packetSize, count) → packets accepted.
  Napi::Value Push(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t id, size, count;
    Napi::Uint8Array bytes;
    if (!Open(env) || !ArgChannel(info, 0, &id) ||
        !ArgBytes(info, 1, "packets", &bytes) ||
        !ArgUint32(info, 2, "packetSize", 1, 0xFFFFFFFFu, &size) ||
        !ArgUint32(info, 3, "count", 0, 0xFFFFFFFFu, &count))
      return Napi::Value();
    if (static_cast<uint64_t>(size) * count > bytes.ByteLength()) {
      ThrowInvalid(env, "packets holds fewer than count * packetSize bytes");
      return Napi::Value();
    }
    uint32_t accepted = 0;
    int rc = engine_->push_packets(id, bytes.Data(), size, count, &accepted);
    if (rc != 0) {
      ThrowErrno(env, rc, "push");
      return Napi::Value();
    }
    return Napi::Number::New(env, accepted);
  }

  // sendTo(address, port, data, id?)
  Napi::Value SendTo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    udp::Endpoint to;
    Napi::Uint8Array bytes;
    uint32_t id = 0;
    bool has_id = info.Length() > 3 && !info[3].IsUndefined();
    if (!Open(env) || !ArgEndpoint(info, 0, &to) ||
        !ArgBytes(info, 2, "data", &bytes) ||
        (has_id && !ArgChannel(info, 3, &id)))
      return env.Undefined();
    int rc = engine_->send_to(has_id ? &id : nullptr, to, bytes.Data(),
                              bytes.ByteLength());
    if (rc != 0) ThrowErrno(env, rc, "sendTo");
    return env.Undefined();
  }

  // Readable after close (final counters).
  Napi::Value ChannelStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t id;
    if (!ArgChannel(info, 0, &id)) return Napi::Value();
    replicate::ChannelStats s;
    int rc = engine_ ? engine_->channel_stats(id, &s) : ESHUTDOWN;
    if (rc != 0) {
      ThrowErrno(env, rc, "channelStats");
      return Napi::Value();
    }
    Napi::Object o = Napi::Object::New(env);
    SetCount(o, "streamPackets", s.stream_packets);
    SetCount(o, "datagrams", s.datagrams);
    SetCount(o, "bytes", s.bytes);
    SetCount(o, "syscalls", s.syscalls);
    SetCount(o, "gsoSends", s.gso_sends);
    SetCount(o, "dropsEagain", s.drops_eagain);
    SetCount(o, "dropsEnobufs", s.drops_enobufs);
    SetCount(o, "errors", s.errors);
    SetCount(o, "oneOffs", s.one_offs);
    SetCount(o, "tcpPackets", s.tcp_packets);
    SetCount(o, "tcpBytes", s.tcp_bytes);
    SetCount(o, "pacingForfeitedBytes", s.pacing_forfeited);
    SetCount(o, "pacingRepaidBytes", s.pacing_repaid);
    SetCount(o, "destinations", s.destinations);
    SetCount(o, "groups", s.groups);
    SetCount(o, "queued", s.queued);
    return o;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    replicate::EngineStats s;
    if (engine_) s = engine_->stats();
    Napi::Object o = Napi::Object::New(env);
    o.Set("gsoActive", Napi::Boolean::New(env, s.gso_active));
    o.Set("gsoSupported",
          Napi::Boolean::New(env, engine_ && engine_->gso_supported()));
    SetCount(o, "gsoFallbacks", s.gso_fallbacks);
    SetCount(o, "syscalls", s.syscalls);
    SetCount(o, "oneOffs", s.one_offs);
    SetCount(o, "oneOffErrors", s.one_off_errors);
    SetCount(o, "commands", s.commands);
    return o;
  }

  // barrier(): blocks until the sender thread finished a loop that saw
  // every call made before (tests; an orderly drain before close).
  Napi::Value Barrier(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    int rc = engine_->barrier();
    if (rc != 0) ThrowErrno(env, rc, "barrier");
    return env.Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  napi_env env_;
  // Shared with the TCP servers that add sinks to it (ReplicatorEngine).
  std::shared_ptr<replicate::Engine> engine_;
  std::shared_ptr<LowWaterQueue> queue_;
  Napi::ThreadSafeFunction tsfn_;
  bool have_tsfn_ = false;
  bool hook_ = false;
};

}  // namespace

std::shared_ptr<replicate::Engine> ReplicatorEngine(Napi::Env env, Napi::Value value) {
  std::shared_ptr<replicate::Engine> e;
  if (value.IsObject() && Replicator::Is(value.As<Napi::Object>()))
    e = Replicator::EngineOf(value.As<Napi::Object>());
  if (!e) {
    if (value.IsObject() && Replicator::Is(value.As<Napi::Object>()))
      ThrowCode(env, kErrReplicatorClosed, "replicator is closed");
    else
      ThrowInvalid(env, "a native Replicator expected");
  }
  return e;
}

void RegisterReplicator(Napi::Env env, Napi::Object exports) {
  exports.Set("Replicator", Replicator::Define(env));
}

}  // namespace napi
}  // namespace rqcast

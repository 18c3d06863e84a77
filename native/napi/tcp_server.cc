// The TCP server binding: one ObjectWrap over tcp::Service (native/tcp),
// the user-space TCP that carries a replicator's channels to TCP clients
// (docs/PROTOCOL.md §3 framing, §10.10 fallback).
//
//   new TcpServer(replicator, options, onEvents)
//
// Calls only check their arguments and hand them on: control packets go
// into the connection's FramePool, membership is a TcpSink added to the
// replicator's engine, close/abort are commands to the service thread.
// Events (open, data, close) travel from that thread to JS through one
// ThreadSafeFunction, batched as the Replicator's low-water signals are:
// the thread appends to a shared list and schedules at most one JS call at
// a time, which takes the whole list. Peer bytes handed to JS are counted
// back to the service after the call (DataConsumed), so a JS side that
// falls behind closes the peers' windows instead of growing a queue.
//
// Lifetime: stop() aborts every connection, joins the thread and releases
// the thread-safe function (which holds the event loop open while the
// server runs); the environment's cleanup hook and the finalizer run it
// too. A stopped server does not start again.
#include <arpa/inet.h>
#include <errno.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "napi/register.h"
#include "napi/replicator.h"
#include "napi/util.h"
#include "replicate/engine.h"
#include "tcp/service.h"

namespace rqcast {
namespace napi {
namespace {

constexpr const char* kErrUnknownChannel = "ERR_RQ_UNKNOWN_CHANNEL";
constexpr const char* kErrReplicatorClosed = "ERR_RQ_REPLICATOR_CLOSED";

// start()'s errors carry the errno's own name as their code (EPERM,
// EADDRINUSE, EADDRNOTAVAIL, EINVAL) and the number as .errno.
const char* ErrnoName(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EINVAL: return "EINVAL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ENOMEM: return "ENOMEM";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    default: return kErrSocket;
  }
}

const char* ReasonName(tcp::CloseReason r) {
  switch (r) {
    case tcp::CloseReason::kNormal: return "normal";
    case tcp::CloseReason::kReset: return "reset";
    case tcp::CloseReason::kTimeout: return "timeout";
    case tcp::CloseReason::kAborted: return "aborted";
    case tcp::CloseReason::kProtocol: return "protocol";
    case tcp::CloseReason::kNone: break;
  }
  return "aborted";  // closed without a reason recorded: ours to name
}

std::string AddressText(uint32_t addr) {
  char buf[INET_ADDRSTRLEN];
  in_addr a;
  a.s_addr = htonl(addr);
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

// What the service thread and the JS thread share about events. Owned by a
// shared_ptr held by the server and by each scheduled call.
struct EventQueue {
  std::mutex mu;
  std::vector<tcp::ServiceEvent> pending;
  bool scheduled = false;
  bool closed = false;
  std::shared_ptr<tcp::Service> service;  // for DataConsumed; reset on stop
};

class TcpServer : public Napi::ObjectWrap<TcpServer>, public tcp::ServiceEvents {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TcpServer",
                       {
                           InstanceMethod<&TcpServer::Start>("start"),
                           InstanceMethod<&TcpServer::Send>("send"),
                           InstanceMethod<&TcpServer::AddMember>("addMember"),
                           InstanceMethod<&TcpServer::RemoveMember>("removeMember"),
                           InstanceMethod<&TcpServer::Close>("close"),
                           InstanceMethod<&TcpServer::Abort>("abort"),
                           InstanceMethod<&TcpServer::Stats>("stats"),
                           InstanceMethod<&TcpServer::ConnectionStats>("connectionStats"),
                           InstanceMethod<&TcpServer::Stop>("stop"),
                       });
  }

  // new TcpServer(replicator, {address, port, maxConnections?, maxHalfOpen?,
  //               mss?, poolPackets?, maxControlBytes?, gsoSegments?}, onEvents)
  explicit TcpServer(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<TcpServer>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[1].IsObject() || !info[2].IsFunction()) {
      ThrowInvalid(env, "TcpServer(replicator, options, onEvents) expected");
      return;
    }
    engine_ = ReplicatorEngine(env, info[0]);
    if (!engine_) return;
    Napi::Object o = info[1].As<Napi::Object>();
    Napi::Value address = o.Get("address");
    in_addr a;
    if (!address.IsString() || address.As<Napi::String>().Utf8Value().size() > 15 ||
        inet_pton(AF_INET, address.As<Napi::String>().Utf8Value().c_str(), &a) != 1) {
      ThrowCode(env, kErrBadAddress, "options.address must be a numeric IPv4 address");
      return;
    }
    tcp::ListenerConfig& l = config_.listener;
    l.local.addr = ntohl(a.s_addr);
    uint64_t port, max_conn, max_half, mss, pool, control, gso;
    if (!Option(o, "port", 1, 65535, 0, &port) ||
        !Option(o, "maxConnections", 1, 1u << 20, 4096, &max_conn) ||
        !Option(o, "maxHalfOpen", 1, 1u << 20, 1024, &max_half) ||
        !Option(o, "mss", 1, 65535, 1460, &mss) ||
        !Option(o, "poolPackets", 1, 1u << 16, 256, &pool) ||
        !Option(o, "maxControlBytes", 1, 1ull << 31, 1u << 20, &control) ||
        !Option(o, "gsoSegments", 0, 64, 64, &gso))
      return;
    config_.max_train_segments = static_cast<uint32_t>(gso);
    l.local.port = static_cast<uint16_t>(port);
    l.max_connections = static_cast<uint32_t>(max_conn);
    l.max_half_open = static_cast<uint32_t>(max_half);
    // RFC 9293 §3.7.1: 536 is the least every host takes; 65495 fills the
    // largest IPv4 packet with the headers.
    l.connection.mss = static_cast<uint16_t>(mss < 536 ? 536 : mss > 65495 ? 65495 : mss);
    l.pool.pool_packets = static_cast<uint32_t>(pool);
    l.pool.reserve = std::min<uint32_t>(l.pool.reserve, l.pool.pool_packets / 4);
    l.pool.max_control_bytes = control;
    callback_ = Napi::Persistent(info[2].As<Napi::Function>());
    queue_ = std::make_shared<EventQueue>();
    napi_add_env_cleanup_hook(env, &TcpServer::OnEnvCleanup, this);
    hook_ = true;
  }

  ~TcpServer() override { Shutdown(); }

  // Service thread.
  void OnEvents(std::vector<tcp::ServiceEvent>* events) override {
    bool schedule = false;
    {
      std::lock_guard<std::mutex> lk(queue_->mu);
      for (auto& e : *events) queue_->pending.push_back(std::move(e));
      if (!queue_->scheduled) schedule = queue_->scheduled = true;
    }
    events->clear();
    if (!schedule) return;
    std::shared_ptr<EventQueue> q = queue_;
    napi_status st = tsfn_.NonBlockingCall(
        [q](Napi::Env env, Napi::Function fn) { Deliver(env, fn, q); });
    if (st != napi_ok) {
      std::lock_guard<std::mutex> lk(queue_->mu);
      queue_->scheduled = false;
    }
  }

 private:
  // Reads an optional integer option into *out (def when absent).
  bool Option(Napi::Object o, const char* name, uint64_t min, uint64_t max, uint64_t def,
              uint64_t* out) {
    Napi::Value v = o.Get(name);
    if (v.IsUndefined()) {
      if (def == 0) return ThrowInvalid(Env(), std::string("options.") + name + " is required");
      *out = def;
      return true;
    }
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) ||
        d != static_cast<double>(static_cast<uint64_t>(d)))
      return ThrowInvalid(Env(), std::string("options.") + name + " must be an integer in [" +
                                     std::to_string(min) + ", " + std::to_string(max) + "]");
    *out = static_cast<uint64_t>(d);
    return true;
  }

  // JS thread: one call hands over every event raised since the last one.
  static void Deliver(Napi::Env env, Napi::Function fn, const std::shared_ptr<EventQueue>& q) {
    std::vector<tcp::ServiceEvent> events;
    std::shared_ptr<tcp::Service> service;
    {
      std::lock_guard<std::mutex> lk(q->mu);
      events.swap(q->pending);
      q->scheduled = false;
      if (q->closed) return;
      service = q->service;
    }
    if (env == nullptr || fn.IsEmpty() || events.empty()) return;
    size_t data_bytes = 0;
    Napi::Array arr = Napi::Array::New(env, events.size());
    for (size_t i = 0; i < events.size(); ++i) {
      tcp::ServiceEvent& e = events[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("id", Napi::Number::New(env, e.id));
      switch (e.type) {
        case tcp::ServiceEvent::kOpen:
          o.Set("type", "open");
          o.Set("address", AddressText(e.remote.addr));
          o.Set("port", Napi::Number::New(env, e.remote.port));
          break;
        case tcp::ServiceEvent::kData:
          o.Set("type", "data");
          o.Set("bytes", Napi::Buffer<uint8_t>::Copy(env, e.bytes.data(), e.bytes.size()));
          data_bytes += e.bytes.size();
          break;
        case tcp::ServiceEvent::kClose:
          o.Set("type", "close");
          o.Set("reason", ReasonName(e.reason));
          break;
      }
      arr.Set(static_cast<uint32_t>(i), o);
    }
    fn.Call({arr});
    // After the listener ran: the next bytes are read once JS had these.
    if (service && data_bytes > 0) service->DataConsumed(data_bytes);
  }

  static void OnEnvCleanup(void* arg) {
    TcpServer* self = static_cast<TcpServer*>(arg);
    self->hook_ = false;
    self->Shutdown();
  }

  // Idempotent: stop the thread (no more events), then release the TSFN.
  void Shutdown() {
    stopped_ = true;
    if (service_) service_->Stop();
    if (queue_) {
      std::lock_guard<std::mutex> lk(queue_->mu);
      queue_->closed = true;
      queue_->service.reset();
    }
    if (have_tsfn_) {
      have_tsfn_ = false;
      tsfn_.Release();
    }
    if (hook_) {
      hook_ = false;
      napi_remove_env_cleanup_hook(env_, &TcpServer::OnEnvCleanup, this);
    }
  }

  bool Running() const { return service_ && service_->running(); }

  static bool ArgId(const Napi::CallbackInfo& info, size_t i, uint32_t* id) {
    return ArgUint32(info, i, "connection id", 0, 0xFFFFFFFFu, id);
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (stopped_) {
      ThrowCode(env, kErrClosed, "TcpServer is stopped");
      return env.Undefined();
    }
    if (Running()) return env.Undefined();
    service_ = std::make_shared<tcp::Service>(config_, engine_, this);
    tsfn_ = Napi::ThreadSafeFunction::New(env, callback_.Value(), "rqcast-tcp-server", 0, 1);
    if (env.IsExceptionPending()) {
      service_.reset();
      return env.Undefined();
    }
    have_tsfn_ = true;
    {
      std::lock_guard<std::mutex> lk(queue_->mu);
      queue_->service = service_;
    }
    int rc = service_->Start();
    if (rc != 0) {
      service_.reset();
      {
        std::lock_guard<std::mutex> lk(queue_->mu);
        queue_->service.reset();
      }
      have_tsfn_ = false;
      tsfn_.Release();
      std::string what = rc == EPERM || rc == EACCES
                             ? "TcpServer.start: raw sockets need CAP_NET_RAW"
                             : "TcpServer.start: " + ErrnoText(rc);
      ThrowErrnoCode(env, ErrnoName(rc), rc, what);
    }
    return env.Undefined();
  }

  // send(id, packet) → false if the connection is gone (or was aborted for
  // holding too many unsent control bytes).
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t id;
    Napi::Uint8Array bytes;
    if (!ArgId(info, 0, &id) || !ArgBytes(info, 1, "packet", &bytes)) return Napi::Value();
    if (bytes.ByteLength() == 0 || bytes.ByteLength() > tcp::kMaxFramedPacket) {
      ThrowCode(env, kErrPacketTooLarge, "send: a packet is 1..65535 bytes");
      return Napi::Value();
    }
    bool ok = Running() && service_->SendControl(id, bytes.Data(), bytes.ByteLength());
    return Napi::Boolean::New(env, ok);
  }

  Napi::Value Membership(const Napi::CallbackInfo& info, bool add) {
    Napi::Env env = info.Env();
    uint32_t channel, id;
    if (!ArgUint32(info, 0, "channel id", 0, 0xFFFFFFFFu, &channel) || !ArgId(info, 1, &id))
      return env.Undefined();
    if (!Running()) return env.Undefined();  // every connection is gone
    int rc = add ? service_->AddMember(channel, id) : service_->RemoveMember(channel, id);
    const std::string what = add ? "addMember: " : "removeMember: ";
    if (rc == ENOENT)
      ThrowErrnoCode(env, kErrUnknownChannel, rc, what + "unknown channel");
    else if (rc == ESHUTDOWN)
      ThrowErrnoCode(env, kErrReplicatorClosed, rc, what + "replicator is closed");
    else if (rc != 0)
      ThrowErrnoCode(env, kErrSocket, rc, what + ErrnoText(rc));
    return env.Undefined();
  }
  Napi::Value AddMember(const Napi::CallbackInfo& info) { return Membership(info, true); }
  Napi::Value RemoveMember(const Napi::CallbackInfo& info) { return Membership(info, false); }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    uint32_t id;
    if (ArgId(info, 0, &id) && Running()) service_->Close(id);
    return info.Env().Undefined();
  }

  Napi::Value Abort(const Napi::CallbackInfo& info) {
    uint32_t id;
    if (ArgId(info, 0, &id) && Running()) service_->Abort(id);
    return info.Env().Undefined();
  }

  // Readable after stop (the last counters).
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    tcp::ServiceStats s;
    if (service_) s = service_->stats();
    Napi::Object o = Napi::Object::New(env);
    SetCount(o, "connections", s.connections);
    SetCount(o, "halfOpen", s.half_open);
    SetCount(o, "accepted", s.accepted);
    SetCount(o, "refused", s.refused);
    SetCount(o, "resetsSent", s.resets_sent);
    SetCount(o, "resetsSuppressed", s.resets_suppressed);
    SetCount(o, "ignored", s.ignored);
    SetCount(o, "segmentsIn", s.segments_in);
    SetCount(o, "segmentsOut", s.segments_out);
    SetCount(o, "badSegments", s.bad_segments);
    SetCount(o, "martians", s.martians);
    SetCount(o, "sendErrors", s.send_errors);
    SetCount(o, "receiveErrors", s.receive_errors);
    SetCount(o, "freshFrames", s.fresh_frames);
    SetCount(o, "staleFrames", s.stale_frames);
    SetCount(o, "retransmittedSegments", s.retransmitted_segments);
    SetCount(o, "poolEvicted", s.pool_evicted);
    SetCount(o, "controlRefused", s.control_refused);
    SetCount(o, "pendingData", s.pending_data);
    SetCount(o, "packetsOut", s.packets_out);
    SetCount(o, "gsoPackets", s.gso_packets);
    SetCount(o, "gsoSegments", s.gso_segments);
    o.Set("packetPath", Napi::Boolean::New(env, s.packet_path));
    SetCount(o, "packetPathError", static_cast<uint64_t>(s.packet_path_error < 0 ? 0 : s.packet_path_error));
    return o;
  }

  Napi::Value ConnectionStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t id;
    if (!ArgId(info, 0, &id)) return Napi::Value();
    tcp::ConnectionSnapshot s;
    if (!service_ || !service_->Snapshot(id, &s)) return env.Undefined();
    Napi::Object o = Napi::Object::New(env);
    SetCount(o, "id", s.id);
    o.Set("state", tcp::StateName(s.state));
    SetCount(o, "segmentsSent", s.stats.segments_sent);
    SetCount(o, "bytesSent", s.stats.bytes_sent);
    SetCount(o, "retransmittedSegments", s.stats.retransmitted_segments);
    SetCount(o, "fastRetransmits", s.stats.fast_retransmits);
    SetCount(o, "rtoTimeouts", s.stats.rto_timeouts);
    SetCount(o, "rtoInRecovery", s.stats.rto_in_recovery);
    SetCount(o, "rtoAfterRto", s.stats.rto_after_rto);
    SetCount(o, "rackLost", s.stats.rack_lost);
    SetCount(o, "tlpProbes", s.stats.tlp_probes);
    SetCount(o, "recoveryProbes", s.stats.recovery_probes);
    SetCount(o, "ssthresh", s.stats.ssthresh);
    SetCount(o, "freshFrames", s.stats.fresh_frames);
    SetCount(o, "staleFrames", s.stats.stale_frames);
    SetCount(o, "poolEvicted", s.pool.evicted);
    SetCount(o, "segmentsReceived", s.stats.segments_received);
    SetCount(o, "cwnd", s.stats.cwnd);
    SetCount(o, "srttUs", s.stats.srtt_us);
    SetCount(o, "rtoMs", s.stats.rto_ms);
    SetCount(o, "poolQueued", s.pool.queued);
    SetCount(o, "controlBytes", s.pool.control_bytes);
    return o;
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  napi_env env_;
  std::shared_ptr<replicate::Engine> engine_;
  tcp::ServiceConfig config_;
  std::shared_ptr<tcp::Service> service_;
  std::shared_ptr<EventQueue> queue_;
  Napi::FunctionReference callback_;
  Napi::ThreadSafeFunction tsfn_;
  bool have_tsfn_ = false;
  bool hook_ = false;
  bool stopped_ = false;
};

}  // namespace

void RegisterTcpServer(Napi::Env env, Napi::Object exports) {
  exports.Set("TcpServer", TcpServer::Define(env));
}

}  // namespace napi
}  // namespace rqcast

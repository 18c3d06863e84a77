// The batched UDP receiver binding: one bound socket read by a native
// thread with recvmmsg (udp::BatchReceiver), many datagrams handed to JS per
// callback as one packed Buffer + a Uint32Array of lengths + a Buffer of
// 20-byte source records (udp/batch_receiver.h). The same socket sends
// (control messages), so a client keeps one socket for everything.
//
// The batch's datagrams are not copied for JS: their buffer is lent to it as
// an external Buffer, and goes back to a small pool of batches (keeping its
// capacity) when the Buffer is collected, for the thread to receive into
// again. A fetch at 200 Mbit/s is 25 MB/s of datagrams: copying them all
// once more, into freshly allocated memory, is what this saves.
//
// Back-pressure: batches go through a ThreadSafeFunction with a bounded
// queue and BlockingCall, so when JS falls behind the thread stops reading
// and the kernel's receive buffer absorbs (then drops) what comes, instead
// of this process buffering without bound.
//
// Lifetime: close() wakes the thread, aborts the thread-safe function
// (which also unblocks a BlockingCall) and joins. The environment's cleanup
// hook and the finalizer run close() as well.
#include <errno.h>
#include <string.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "napi/register.h"
#include "napi/util.h"
#include "udp/batch_receiver.h"
#include "udp/udp.h"

namespace rqcast {
namespace napi {
namespace {

constexpr const char* kErrReceiverClosed = "ERR_RQ_RECEIVER_CLOSED";
constexpr size_t kQueuedBatches = 16;
// Batches kept for reuse once JS has let go of them.
constexpr size_t kPooledBatches = 32;

// Batches whose storage JS has let go of, for the receiving thread to fill
// again. Shared (shared_ptr) by the receiver and every lent Buffer, which
// may be collected after the receiver is gone.
class BatchPool {
 public:
  udp::ReceivedBatch* Get() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        udp::ReceivedBatch* b = free_.back();
        free_.pop_back();
        return b;
      }
    }
    return new udp::ReceivedBatch();
  }
  void Put(udp::ReceivedBatch* b) {
    b->clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (free_.size() < kPooledBatches) {
        free_.push_back(b);
        return;
      }
    }
    delete b;
  }
  ~BatchPool() {
    for (udp::ReceivedBatch* b : free_) delete b;
  }

 private:
  std::mutex mu_;
  std::vector<udp::ReceivedBatch*> free_;
};

// What a lent Buffer's finalizer needs.
struct Lent {
  std::shared_ptr<BatchPool> pool;
  udp::ReceivedBatch* batch;
};

bool ThrowSocket(Napi::Env env, int err, const char* what) {
  const char* code = kErrSocket;
  if (err == EMSGSIZE) code = kErrPacketTooLarge;
  if (err == EAFNOSUPPORT) code = kErrAddressFamily;
  return ThrowErrnoCode(env, code, err, std::string(what) + ": " + ErrnoText(err));
}

using PoolRef = std::shared_ptr<BatchPool>;
void DeliverBatch(Napi::Env env, Napi::Function fn, PoolRef* context,
                  udp::ReceivedBatch* batch);
using BatchTsfn =
    Napi::TypedThreadSafeFunction<PoolRef, udp::ReceivedBatch, &DeliverBatch>;

// JS thread. The context is the receiver's pool (a PoolRef the function's
// finalizer deletes). env is null when the function is being torn down
// with batches still queued, after its finalizer ran: those are only freed.
void DeliverBatch(Napi::Env env, Napi::Function fn, PoolRef* context,
                  udp::ReceivedBatch* batch) {
  if (!batch) return;
  if (static_cast<napi_env>(env) == nullptr || fn.IsEmpty() || !context) {
    delete batch;
    return;
  }
  const PoolRef& pool = *context;
  const size_t n = batch->count();
  Napi::Buffer<uint8_t> data;
  if (batch->data.empty()) {
    data = Napi::Buffer<uint8_t>::New(env, 0);
  } else {
    Lent* lent = new Lent{pool, batch};
    data = Napi::Buffer<uint8_t>::New(
        env, batch->data.data(), batch->data.size(),
        [](Napi::Env, uint8_t*, Lent* l) {
          l->pool->Put(l->batch);
          delete l;
        },
        lent);
    if (env.IsExceptionPending()) {
      delete lent;
      pool->Put(batch);
      return;
    }
  }
  // From here the Buffer owns the batch's storage; the small arrays are
  // copied so that the batch is only read until the Buffer goes.
  Napi::Uint32Array lengths = Napi::Uint32Array::New(env, n);
  if (n) std::memcpy(lengths.Data(), batch->lengths.data(), n * sizeof(uint32_t));
  Napi::Buffer<uint8_t> sources = Napi::Buffer<uint8_t>::Copy(
      env, batch->sources.data(), batch->sources.size());
  const uint32_t truncated = batch->truncated;
  if (batch->data.empty()) pool->Put(batch);
  fn.Call({data, lengths, sources, Napi::Number::New(env, truncated)});
}

struct Counters {
  std::atomic<uint64_t> datagrams{0}, bytes{0}, batches{0}, truncated{0},
      errors{0};
};

class UdpReceiver : public Napi::ObjectWrap<UdpReceiver> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "UdpReceiver",
                       {
                           InstanceMethod<&UdpReceiver::Send>("send"),
                           InstanceMethod<&UdpReceiver::LocalAddress>("localAddress"),
                           InstanceMethod<&UdpReceiver::AddMembership>("addMembership"),
                           InstanceMethod<&UdpReceiver::DropMembership>("dropMembership"),
                           InstanceMethod<&UdpReceiver::Stats>("stats"),
                           InstanceMethod<&UdpReceiver::SetGatherMicros>("setGatherMicros"),
                           InstanceMethod<&UdpReceiver::Ref>("ref"),
                           InstanceMethod<&UdpReceiver::Unref>("unref"),
                           InstanceMethod<&UdpReceiver::Close>("close"),
                       });
  }

  // new UdpReceiver(address, port, receiveBufferBytes, maxDatagram, batch,
  //                 onBatch(data, lengths, sources, truncated)[, gatherMicros
  //                 [, reuseAddress]])
  explicit UdpReceiver(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<UdpReceiver>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    uint32_t port, rcvbuf, max_datagram, batch;
    if (info.Length() < 1 || !info[0].IsString()) {
      ThrowCode(env, kErrBadAddress, "address must be a string");
      return;
    }
    if (!ArgUint32(info, 1, "port", 0, 65535, &port) ||
        !ArgUint32(info, 2, "receiveBufferBytes", 0, 1u << 30, &rcvbuf) ||
        !ArgUint32(info, 3, "maxDatagram", 1, 65535, &max_datagram) ||
        !ArgUint32(info, 4, "batch", 1, udp::kMaxBatch, &batch))
      return;
    if (info.Length() < 6 || !info[5].IsFunction()) {
      ThrowInvalid(env, "onBatch must be a function");
      return;
    }
    // Optional: the gather window (udp::BatchReceiver::set_gather_ns).
    uint32_t gather_us = 0;
    if (info.Length() > 6 && !info[6].IsUndefined() &&
        !ArgUint32(info, 6, "gatherMicros", 0, 1000000, &gather_us))
      return;
    // Optional: SO_REUSEADDR, for several receivers of one group port.
    bool reuse_address = false;
    if (info.Length() > 7 && !info[7].IsUndefined() &&
        !ArgBool(info, 7, "reuseAddress", &reuse_address))
      return;
    std::string a = info[0].As<Napi::String>().Utf8Value();
    udp::Endpoint local;
    if (a.size() > 80 ||
        !udp::parse_endpoint(a.c_str(), static_cast<uint16_t>(port), &local)) {
      ThrowCode(env, kErrBadAddress,
                "address must be a numeric IPv4 or IPv6 address");
      return;
    }
    rx_.reset(new udp::BatchReceiver());
    int rc = rx_->open(local, static_cast<int>(rcvbuf), max_datagram, batch,
                       true, reuse_address);
    if (rc != 0) {
      rx_.reset();
      ThrowSocket(env, rc, "bind");
      return;
    }
    rx_->set_gather_ns(static_cast<uint64_t>(gather_us) * 1000u);
    counters_ = std::make_shared<Counters>();
    // The function's context: a reference to the pool, deleted with the
    // function (lent Buffers hold their own references).
    PoolRef* context = new PoolRef(pool_);
    tsfn_ = BatchTsfn::New(env, info[5].As<Napi::Function>(),
                           "rqcast-udp-receiver", kQueuedBatches, 1, context,
                           [](Napi::Env, void*, PoolRef* ctx) { delete ctx; });
    if (env.IsExceptionPending()) {
      delete context;
      rx_.reset();
      return;
    }
    open_ = true;
    thread_ = std::thread([this] { Run(); });
    napi_add_env_cleanup_hook(env, &UdpReceiver::OnEnvCleanup, this);
    hook_ = true;
  }

  ~UdpReceiver() override { Shutdown(); }

 private:
  // Receiver thread.
  void Run() {
    std::shared_ptr<Counters> counters = counters_;
    std::shared_ptr<BatchPool> pool = pool_;
    while (true) {
      udp::ReceivedBatch* batch = pool->Get();
      int rc = rx_->receive(batch);
      if (rc == ECANCELED) {
        pool->Put(batch);
        return;
      }
      if (rc != 0) {
        // A transient error (ENOMEM, a queued ICMP error): count, go on.
        counters->errors.fetch_add(1, std::memory_order_relaxed);
        pool->Put(batch);
        continue;
      }
      if (batch->count() == 0 && batch->truncated == 0) {
        pool->Put(batch);
        continue;
      }
      counters->datagrams.fetch_add(batch->count(), std::memory_order_relaxed);
      counters->bytes.fetch_add(batch->data.size(), std::memory_order_relaxed);
      counters->batches.fetch_add(1, std::memory_order_relaxed);
      counters->truncated.fetch_add(batch->truncated, std::memory_order_relaxed);
      napi_status st = tsfn_.BlockingCall(batch);
      if (st != napi_ok) {  // aborted: closing
        pool->Put(batch);
        return;
      }
    }
  }

  static void OnEnvCleanup(void* arg) {
    auto* self = static_cast<UdpReceiver*>(arg);
    self->hook_ = false;
    self->Shutdown();
  }

  void Shutdown() {
    if (open_) {
      open_ = false;
      rx_->stop();
      tsfn_.Abort();  // also ends a BlockingCall waiting for queue space
      if (thread_.joinable()) thread_.join();
      rx_->socket().close();
    }
    if (hook_) {
      hook_ = false;
      napi_remove_env_cleanup_hook(env_, &UdpReceiver::OnEnvCleanup, this);
    }
  }

  bool Open(Napi::Env env) {
    if (open_) return true;
    return ThrowCode(env, kErrReceiverClosed, "receiver is closed");
  }

  // send(data, address, port) → true if the kernel took it, false if its
  // send buffer was full (EAGAIN/ENOBUFS: a dropped datagram, as on a wire).
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Uint8Array bytes;
    uint32_t port;
    if (!Open(env) || !ArgBytes(info, 0, "data", &bytes)) return Napi::Value();
    if (info.Length() < 2 || !info[1].IsString()) {
      ThrowCode(env, kErrBadAddress, "address must be a string");
      return Napi::Value();
    }
    if (!ArgUint32(info, 2, "port", 1, 65535, &port)) return Napi::Value();
    std::string a = info[1].As<Napi::String>().Utf8Value();
    udp::Endpoint to;
    if (a.size() > 80 ||
        !udp::parse_endpoint(a.c_str(), static_cast<uint16_t>(port), &to)) {
      ThrowCode(env, kErrBadAddress,
                "address must be a numeric IPv4 or IPv6 address");
      return Napi::Value();
    }
    if (bytes.ByteLength() > udp::kMaxDatagramPayload) {
      ThrowCode(env, kErrPacketTooLarge, "datagram larger than 65507 bytes");
      return Napi::Value();
    }
    int rc = rx_->socket().send_one_nonblocking(to, bytes.Data(),
                                                bytes.ByteLength());
    if (rc == EAGAIN || rc == EWOULDBLOCK || rc == ENOBUFS)
      return Napi::Boolean::New(env, false);
    if (rc != 0) {
      ThrowSocket(env, rc, "send");
      return Napi::Value();
    }
    return Napi::Boolean::New(env, true);
  }

  // addMembership(group, interface?, source?) / dropMembership(...): any-
  // source membership, or source-specific with a source (RFC 4607); both
  // idempotent (udp::Socket::join_group). The socket gets the groups it
  // joined and no others (udp::BatchReceiver::open). Datagrams keep
  // arriving on the receiving thread as before.
  Napi::Value AddMembership(const Napi::CallbackInfo& info) {
    return Membership(info, true);
  }
  Napi::Value DropMembership(const Napi::CallbackInfo& info) {
    return Membership(info, false);
  }

  Napi::Value Membership(const Napi::CallbackInfo& info, bool join) {
    Napi::Env env = info.Env();
    const char* what = join ? "addMembership" : "dropMembership";
    udp::Endpoint group, source;
    udp::Interface iface;
    if (!Open(env) || !ArgGroup(info, 0, 0, &group)) return env.Undefined();
    udp::Socket& sock = rx_->socket();
    if (group.family() != sock.family()) {
      ThrowErrnoCode(env, kErrAddressFamily, EAFNOSUPPORT,
                     std::string(what) + ": the group is not of the bound address's family");
      return env.Undefined();
    }
    if (!ArgGroupInterface(info, 1, group, &iface) ||
        !ArgGroupSource(info, 2, group.family(), &source))
      return env.Undefined();
    const udp::Endpoint* src = source.family() != 0 ? &source : nullptr;
    int rc = join ? sock.join_group(group, iface.index, src)
                  : sock.leave_group(group, iface.index, src);
    if (rc == 0) return env.Undefined();
    if (rc == EINVAL) {
      ThrowInvalid(env, std::string(what) +
                            ": any-source and source-specific membership of one "
                            "group do not mix on one receiver");
    } else if (rc == ENODEV) {
      ThrowErrnoCode(env, kErrNoSuchInterface, rc,
                     std::string(what) + ": no interface to join the group on");
    } else {
      ThrowSocket(env, rc, what);
    }
    return env.Undefined();
  }

  // {address, port, family} of the bound socket.
  Napi::Value LocalAddress(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return Napi::Value();
    udp::Endpoint e;
    int rc = rx_->socket().local_endpoint(&e);
    if (rc != 0) {
      ThrowSocket(env, rc, "getsockname");
      return Napi::Value();
    }
    char buf[64];
    udp::format_address(e, buf, sizeof buf);
    Napi::Object o = Napi::Object::New(env);
    o.Set("address", Napi::String::New(env, buf));
    o.Set("port", Napi::Number::New(env, e.port()));
    o.Set("family", Napi::String::New(env, e.family() == AF_INET6 ? "IPv6" : "IPv4"));
    return o;
  }

  // setGatherMicros(us): the gather window from the next receive on (0..1 s),
  // e.g. none while a session's handshake waits for single replies, then
  // one for its paced stream.
  Napi::Value SetGatherMicros(const Napi::CallbackInfo& info) {
    uint32_t gather_us;
    if (!Open(info.Env()) ||
        !ArgUint32(info, 0, "gatherMicros", 0, 1000000, &gather_us))
      return Napi::Value();
    rx_->set_gather_ns(static_cast<uint64_t>(gather_us) * 1000u);
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    SetCount(o, "datagrams", counters_->datagrams.load());
    SetCount(o, "bytes", counters_->bytes.load());
    SetCount(o, "batches", counters_->batches.load());
    SetCount(o, "truncated", counters_->truncated.load());
    SetCount(o, "errors", counters_->errors.load());
    // UDP_GRO: whether the kernel accepted it, and messages that arrived
    // coalesced (split back into datagrams by udp::BatchReceiver).
    o.Set("gro", Napi::Boolean::New(env, rx_ && rx_->gro()));
    o.Set("coalesced", Napi::Number::New(env, rx_ ? static_cast<double>(rx_->coalesced_messages()) : 0.0));
    return o;
  }

  // Like dgram's: an unref'd receiver does not keep the event loop alive.
  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (open_) tsfn_.Ref(info.Env());
    return info.Env().Undefined();
  }
  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (open_) tsfn_.Unref(info.Env());
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  napi_env env_;
  std::unique_ptr<udp::BatchReceiver> rx_;
  std::shared_ptr<Counters> counters_ = std::make_shared<Counters>();
  std::shared_ptr<BatchPool> pool_ = std::make_shared<BatchPool>();
  BatchTsfn tsfn_;
  std::thread thread_;
  bool open_ = false;
  bool hook_ = false;
};

}  // namespace

void RegisterReceiver(Napi::Env env, Napi::Object exports) {
  exports.Set("UdpReceiver", UdpReceiver::Define(env));
}

}  // namespace napi
}  // namespace rqcast

#include "tcp/listener.h"

#include <algorithm>
#include <cstring>

namespace rqcast {
namespace tcp {

namespace {

inline uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline uint64_t Le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// An address no peer can have (RFC 9293 §3.10.7.2, RFC 1122 §3.2.1.3):
// "this host" 0/8, multicast 224/4, class E and broadcast 240/4.
bool BadPeerAddress(uint32_t a) {
  return (a >> 24) == 0 || (a >> 28) == 0xe || (a >> 28) == 0xf;
}

void PutTuple(uint8_t* b, const Endpoint4& local, const Endpoint4& remote) {
  const uint32_t w[3] = {local.addr, remote.addr,
                         (static_cast<uint32_t>(local.port) << 16) | remote.port};
  std::memcpy(b, w, sizeof w);
}

}  // namespace

uint64_t SipHash24(const uint8_t key[16], const uint8_t* in, size_t len) {
  // Aumasson & Bernstein, "SipHash: a fast short-input PRF" (2012).
  const uint64_t k0 = Le64(key), k1 = Le64(key + 8);
  uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1,
           v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
  auto round = [&] {
    v0 += v1; v1 = Rotl(v1, 13); v1 ^= v0; v0 = Rotl(v0, 32);
    v2 += v3; v3 = Rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = Rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = Rotl(v1, 17); v1 ^= v2; v2 = Rotl(v2, 32);
  };
  const size_t whole = len & ~size_t{7};
  for (size_t i = 0; i < whole; i += 8) {
    const uint64_t m = Le64(in + i);
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  uint64_t b = static_cast<uint64_t>(len) << 56;
  for (size_t i = 0; i < (len & 7); ++i) b |= static_cast<uint64_t>(in[whole + i]) << (8 * i);
  v3 ^= b;
  round();
  round();
  v0 ^= b;
  v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) round();
  return v0 ^ v1 ^ v2 ^ v3;
}

uint32_t InitialSequenceNumber(const uint8_t key[16], const Endpoint4& local,
                               const Endpoint4& remote, uint64_t now_ns) {
  uint8_t b[12];
  PutTuple(b, local, remote);
  return static_cast<uint32_t>(now_ns / 4000) +
         static_cast<uint32_t>(SipHash24(key, b, sizeof b));
}

size_t Listener::TupleHash::operator()(const Tuple& t) const {
  uint8_t b[12];
  PutTuple(b, Endpoint4{t.local_addr, t.local_port}, Endpoint4{t.remote_addr, t.remote_port});
  return static_cast<size_t>(SipHash24(key, b, sizeof b));
}

Listener::Listener(const ListenerConfig& config, SegmentOutput* out)
    : config_(config),
      out_(out),
      by_tuple_(16, TupleHash{config_.isn_key}),
      reset_tokens_(config.max_resets_per_second) {}

Listener::~Listener() = default;

Listener::Entry* Listener::Find(uint32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second.get();
}

void Listener::Touch(Entry& e) {
  if (e.dirty) return;
  e.dirty = true;
  dirty_.push_back(e.id);
}

void Listener::OnSegment(const Segment& seg, uint64_t now_ns) {
  ++stats_.segments_in;
  if (seg.dst.port != config_.local.port ||
      (config_.local.addr != 0 && seg.dst.addr != config_.local.addr) ||
      BadPeerAddress(seg.src.addr) || BadPeerAddress(seg.dst.addr) ||
      seg.src.port == 0) {
    ++stats_.ignored;
    return;
  }
  const Tuple t{seg.dst.addr, seg.src.addr, seg.dst.port, seg.src.port};
  auto it = by_tuple_.find(t);
  if (it != by_tuple_.end()) {
    Entry* e = Find(it->second);
    if (e->conn->state() != State::kClosed) e->conn->OnSegment(seg, now_ns);
    Touch(*e);
    return;
  }
  if (seg.has(kRst)) {  // RFC 9293 §3.10.7.1: "An incoming segment containing a RST is discarded"
    ++stats_.ignored;
    return;
  }
  if (seg.has(kSyn) && !seg.has(kAck)) {
    // SYN+FIN is no opening anyone means (Linux drops it too).
    if (seg.has(kFin)) {
      ++stats_.ignored;
      return;
    }
    Accept(seg, t, now_ns);
    return;
  }
  SendReset(seg, now_ns);
}

void Listener::SendReset(const Segment& seg, uint64_t now_ns) {
  // The budget refills by whole tokens as time passes.
  if (config_.max_resets_per_second != 0) {
    const uint64_t per_token = 1000000000ull / config_.max_resets_per_second;
    if (reset_refill_ns_ == 0 || now_ns < reset_refill_ns_) reset_refill_ns_ = now_ns;
    const uint64_t earned = per_token ? (now_ns - reset_refill_ns_) / per_token : 0;
    if (earned > 0) {
      reset_tokens_ = std::min<uint64_t>(config_.max_resets_per_second, reset_tokens_ + earned);
      reset_refill_ns_ += earned * per_token;
    }
  }
  if (reset_tokens_ == 0) {
    ++stats_.resets_suppressed;
    return;
  }
  --reset_tokens_;
  // RFC 9293 §3.10.7.1: <SEQ=SEG.ACK><CTL=RST> if the ACK bit is on, else
  // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
  OutSegment r;
  r.src = seg.dst;
  r.dst = seg.src;
  r.link = seg.link;
  if (seg.has(kAck)) {
    r.seq = seg.ack;
    r.flags = kRst;
  } else {
    r.seq = 0;
    r.ack = seg.seq + static_cast<uint32_t>(seg.payload_len) + (seg.has(kSyn) ? 1 : 0) +
            (seg.has(kFin) ? 1 : 0);
    r.flags = kRst | kAck;
  }
  out_->Transmit(r, nullptr, 0);
  ++stats_.resets_sent;
}

void Listener::Accept(const Segment& seg, const Tuple& t, uint64_t now_ns) {
  if (by_id_.size() >= config_.max_connections || stats_.half_open >= config_.max_half_open) {
    ++stats_.refused;
    return;
  }
  while (next_id_ == 0 || by_id_.count(next_id_)) ++next_id_;
  std::unique_ptr<Entry> e(new Entry);
  e->id = next_id_++;
  e->tuple = t;
  e->pool = std::make_shared<FramePool>(config_.pool);
  const uint32_t iss = InitialSequenceNumber(config_.isn_key, seg.dst, seg.src, now_ns);
  e->conn.reset(new Connection(config_.connection, seg, iss, now_ns, e->pool.get(), out_));
  ++stats_.accepted;
  ++stats_.half_open;
  Entry& ref = *e;
  by_tuple_.emplace(t, e->id);
  by_id_.emplace(e->id, std::move(e));
  stats_.connections = static_cast<uint32_t>(by_id_.size());
  Touch(ref);
}

void Listener::MarkReady(uint32_t id) {
  if (Entry* e = Find(id)) Touch(*e);
}

void Listener::Poll(uint64_t now_ns) {
  while (!timers_.empty() && timers_.top().first <= now_ns) {
    const Timer t = timers_.top();
    timers_.pop();
    Entry* e = Find(t.second);
    if (e && e->deadline == t.first) {
      e->deadline = UINT64_MAX;  // spent: Settle pushes the next one
      Touch(*e);
    }
  }
  // Settle may close connections (peer FIN) and so touch them again: take
  // the list first, and let the next Poll see those.
  std::vector<uint32_t> ids;
  ids.swap(dirty_);
  for (uint32_t id : ids) {
    Entry* e = Find(id);
    if (!e) continue;
    e->dirty = false;
    e->pool->TakeReady();  // whatever woke it, Poll takes what the pool has
    if (e->conn->state() != State::kClosed) e->conn->Poll(now_ns);
    touched_.push_back(id);
    Settle(*e, now_ns);
  }
  if (timers_.size() > 4 * by_id_.size() + 1024) RebuildTimers();
  // Stale entries (re-armed or gone connections) off the top, so that
  // NextDeadline names a real timer and the thread does not wake for
  // nothing.
  while (!timers_.empty()) {
    Entry* e = Find(timers_.top().second);
    if (e && e->deadline == timers_.top().first) break;
    timers_.pop();
  }
}

bool Listener::Settle(Entry& e, uint64_t now_ns) {
  Connection& c = *e.conn;
  State s = c.state();
  if (!e.opened && s != State::kSynReceived && s != State::kClosed) {
    e.opened = true;
    --stats_.half_open;
    ++stats_.opened;
    ListenerEvent ev;
    ev.type = ListenerEvent::kOpened;
    ev.id = e.id;
    ev.remote = c.remote();
    events_.push_back(ev);
  }
  if (e.opened && !e.closing && config_.close_on_peer_fin && c.PeerFinished() &&
      s != State::kClosed) {
    e.closing = true;
    e.pool->CloseSource();
    c.Close(now_ns);
    Touch(e);  // its FIN may wait for the next Poll
    s = c.state();
  }
  if (e.opened && !e.reported && s == State::kTimeWait && c.Readable() == 0)
    ReportClosed(e, CloseReason::kNormal);
  const size_t readable = c.Readable();
  if (s == State::kClosed && (readable == 0 || c.close_reason() != CloseReason::kNormal)) {
    Remove(e);
    return false;
  }
  if (readable > 0 && !e.readable) {
    e.readable = true;
    readable_.push_back(e.id);
  }
  const uint64_t d = c.NextDeadline();
  if (d != e.deadline) {
    e.deadline = d;
    if (d != UINT64_MAX) timers_.push(Timer(d, e.id));
  }
  return true;
}

void Listener::ReportClosed(Entry& e, CloseReason reason) {
  e.reported = true;
  ++stats_.closed;
  ListenerEvent ev;
  ev.type = ListenerEvent::kClosed;
  ev.id = e.id;
  ev.remote = e.conn->remote();
  ev.reason = reason;
  ev.final_stats = e.conn->stats();
  ev.pool_stats = e.pool->stats();
  events_.push_back(ev);
  e.pool->Detach();
}

void Listener::Remove(Entry& e) {
  if (!e.opened) {
    --stats_.half_open;
    ++stats_.half_open_failed;
  } else if (!e.reported) {
    ReportClosed(e, e.conn->close_reason());
  }
  e.pool->Detach();
  by_tuple_.erase(e.tuple);
  by_id_.erase(e.id);  // frees e
  stats_.connections = static_cast<uint32_t>(by_id_.size());
}

void Listener::RebuildTimers() {
  std::vector<Timer> live;
  for (auto& kv : by_id_)
    if (kv.second->deadline != UINT64_MAX) live.push_back(Timer(kv.second->deadline, kv.first));
  timers_ = decltype(timers_)(std::greater<Timer>(), std::move(live));
}

uint64_t Listener::NextDeadline() const {
  if (!dirty_.empty()) return 0;
  return timers_.empty() ? UINT64_MAX : timers_.top().first;
}

bool Listener::Close(uint32_t id, uint64_t now_ns) {
  Entry* e = Find(id);
  if (!e) return false;
  if (!e->closing) {
    e->closing = true;
    e->pool->CloseSource();
    if (e->conn->state() != State::kClosed) e->conn->Close(now_ns);
  }
  Touch(*e);
  return true;
}

bool Listener::Abort(uint32_t id, uint64_t now_ns) {
  Entry* e = Find(id);
  if (!e) return false;
  e->closing = true;
  e->pool->CloseSource();
  if (e->conn->state() != State::kClosed) e->conn->Abort(now_ns);
  Touch(*e);
  return true;
}

void Listener::AbortAll(uint64_t now_ns) {
  for (auto& kv : by_id_) {
    Entry& e = *kv.second;
    if (e.conn->state() != State::kClosed) e.conn->Abort(now_ns);
    e.pool->Detach();
  }
  by_tuple_.clear();
  by_id_.clear();
  dirty_.clear();
  readable_.clear();
  timers_ = decltype(timers_)();
  stats_.connections = 0;
  stats_.half_open = 0;
}

void Listener::ReadableIds(std::vector<uint32_t>* out) {
  // Drop the ids drained or gone since they were listed.
  readable_.erase(std::remove_if(readable_.begin(), readable_.end(),
                                 [this](uint32_t id) {
                                   Entry* e = Find(id);
                                   if (e && e->conn->Readable() > 0) return false;
                                   if (e) e->readable = false;
                                   return true;
                                 }),
                  readable_.end());
  out->assign(readable_.begin(), readable_.end());
}

size_t Listener::Read(uint32_t id, uint8_t* out, size_t cap) {
  Entry* e = Find(id);
  if (!e || cap == 0) return 0;
  const size_t n = e->conn->Read(out, cap);
  if (n > 0) Touch(*e);  // a window update, or a close that waited for this
  return n;
}

std::shared_ptr<FramePool> Listener::pool(uint32_t id) const {
  Entry* e = Find(id);
  return e ? e->pool : nullptr;
}

const Connection* Listener::connection(uint32_t id) const {
  Entry* e = Find(id);
  return e ? e->conn.get() : nullptr;
}

void Listener::TakeTouched(std::vector<uint32_t>* out) {
  out->clear();
  out->swap(touched_);
}

void Listener::TakeEvents(std::vector<ListenerEvent>* out) {
  out->insert(out->end(), events_.begin(), events_.end());
  events_.clear();
}

}  // namespace tcp
}  // namespace rqcast

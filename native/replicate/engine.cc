#include "replicate/engine.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace rqcast {
namespace replicate {

namespace {

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull +
         static_cast<uint64_t>(ts.tv_nsec);
}

// Messages a run may put on the wire before the sender looks at its command
// queue and the other channels again (bounds latency of add/remove).
constexpr uint64_t kRunMessageBudget = 4096;
constexpr uint32_t kMaxRunPackets = 1024;

struct Counter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n) { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

}  // namespace

struct Engine::Channel {
  Channel(uint32_t i, const ChannelConfig& c)
      : id(i), config(c), ring(std::make_shared<PacketRing>(c.capacity, c.slot_size)) {}

  const uint32_t id;
  ChannelConfig config;
  std::shared_ptr<PacketRing> ring;
  std::mutex producer_mutex;             // one producer at a time
  std::atomic<bool> low_signalled{false};
  // The destination set as the callers see it (guarded by map_mutex_):
  // answers add/remove at once and keeps no-op commands off the queue.
  DestinationSet members;

  // Sender thread only.
  DestinationSet dests[2];  // [0] IPv4, [1] IPv6
  TokenBucket bucket;
  bool paused = false;
  uint64_t visible_tail = 0;

  // Stats (sender thread writes).
  Counter stream_packets, datagrams, bytes, syscalls, gso_sends, drops_eagain,
      drops_enobufs, errors, one_offs;

  size_t dest_count() const { return dests[0].size() + dests[1].size(); }
};

struct Engine::Command {
  enum Kind {
    kAddChannel,
    kRemoveChannel,
    kAddDestination,
    kRemoveDestination,
    kClearDestinations,
    kSetRate,
    kSetPaused,
    kSendOne,
    kStop
  };
  explicit Command(Kind k) : kind(k) {}
  Kind kind;
  uint32_t channel = 0;
  bool has_channel = false;
  std::shared_ptr<Channel> ch;
  udp::Endpoint endpoint;
  uint64_t rate = 0, burst = 0;
  bool flag = false;
  std::vector<uint8_t> payload;
};

// One run: `groups` datagrams (each a GSO super-datagram or a single packet)
// sharing the iovec array; iov[first[k] .. first[k]+segs[k]) is group k.
struct Engine::Run {
  iovec iov[kMaxRunPackets];
  uint32_t first[kMaxRunPackets];
  uint32_t segs[kMaxRunPackets];
  uint64_t bytes[kMaxRunPackets];
  alignas(cmsghdr) uint8_t control[kMaxRunPackets][udp::kGsoControlSize];
  uint32_t groups = 0;
};

Engine::Engine(const EngineOptions& options, EventSink* sink)
    : options_(options), sink_(sink) {
  if (options_.max_batch == 0 || options_.max_batch > udp::kMaxBatch)
    options_.max_batch = udp::kMaxBatch;
  if (options_.max_segments == 0 || options_.max_segments > udp::kMaxGsoSegments)
    options_.max_segments = udp::kMaxGsoSegments;
}

Engine::~Engine() { stop(); }

int Engine::start() {
  if (thread_.joinable()) return EALREADY;
  int rc = v4_.open(AF_INET, options_.send_buffer_bytes, options_.send_timeout_ms);
  if (rc != 0) return rc;
  // A host without IPv6 still replicates to IPv4 destinations.
  if (v6_.open(AF_INET6, options_.send_buffer_bytes, options_.send_timeout_ms) != 0)
    v6_.close();
  gso_supported_ = v4_.gso_supported();
  gso_active_.store(options_.gso && gso_supported_);
  if (!run_) run_.reset(new Run());
  msgs_.resize(options_.max_batch);
  msg_segs_.resize(options_.max_batch);
  msg_bytes_.resize(options_.max_batch);
  {
    std::lock_guard<std::mutex> lk(queue_mutex_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
  return 0;
}

void Engine::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lk(queue_mutex_);
    stopping_ = true;
    wake_pending_ = true;
  }
  queue_cv_.notify_one();
  barrier_cv_.notify_all();
  thread_.join();
  active_.clear();
  queue_.clear();
  v4_.close();
  v6_.close();
}

uint64_t Engine::now() const {
  return options_.clock ? options_.clock() : monotonic_ns();
}

udp::Socket* Engine::socket_for(int family) {
  if (family == AF_INET) return &v4_;
  if (family == AF_INET6 && v6_.is_open()) return &v6_;
  return nullptr;
}

int Engine::enqueue(Command&& c) {
  {
    std::lock_guard<std::mutex> lk(queue_mutex_);
    if (stopping_ || !thread_.joinable()) return ESHUTDOWN;
    queue_.push_back(std::move(c));
    wake_pending_ = true;
  }
  queue_cv_.notify_one();
  return 0;
}

int Engine::barrier() {
  std::unique_lock<std::mutex> lk(queue_mutex_);
  if (stopping_ || !thread_.joinable()) return ESHUTDOWN;
  uint64_t target = ++barrier_requested_;
  wake_pending_ = true;
  queue_cv_.notify_one();
  barrier_cv_.wait(lk, [&] { return stopping_ || barrier_done_ >= target; });
  return barrier_done_ >= target ? 0 : ESHUTDOWN;
}

void Engine::wake() {
  {
    std::lock_guard<std::mutex> lk(queue_mutex_);
    wake_pending_ = true;
  }
  queue_cv_.notify_one();
}

int Engine::create_channel(uint32_t id, const ChannelConfig& config) {
  if (config.slot_size == 0 || config.slot_size > udp::kMaxDatagramPayload ||
      config.capacity == 0 || config.capacity > (1u << 24))
    return EINVAL;
  auto ch = std::make_shared<Channel>(id, config);
  if (ch->config.burst_bytes == 0)
    ch->config.burst_bytes = default_burst(config.rate_bytes_per_s, config.slot_size);
  ch->bucket = TokenBucket(config.rate_bytes_per_s, ch->config.burst_bytes, now());
  {
    std::lock_guard<std::mutex> lk(map_mutex_);
    if (channels_.count(id)) return EEXIST;
    channels_.emplace(id, ch);
  }
  Command c(Command::kAddChannel);
  c.channel = id;
  c.ch = ch;
  int rc = enqueue(std::move(c));
  if (rc != 0) {
    std::lock_guard<std::mutex> lk(map_mutex_);
    channels_.erase(id);
  }
  return rc;
}

int Engine::remove_channel(uint32_t id) {
  {
    std::lock_guard<std::mutex> lk(map_mutex_);
    if (channels_.erase(id) == 0) return ENOENT;
  }
  Command c(Command::kRemoveChannel);
  c.channel = id;
  return enqueue(std::move(c));
}

#define RQ_REQUIRE_CHANNEL(id)                       \
  do {                                               \
    std::lock_guard<std::mutex> lk(map_mutex_);      \
    if (!channels_.count(id)) return ENOENT;         \
  } while (0)

int Engine::add_destination(uint32_t id, const udp::Endpoint& to) {
  if (to.family() != AF_INET && to.family() != AF_INET6) return EAFNOSUPPORT;
  if (to.family() == AF_INET6 && thread_.joinable() && !v6_.is_open())
    return EAFNOSUPPORT;
  return change_members(id, Command::kAddDestination, &to);
}

int Engine::remove_destination(uint32_t id, const udp::Endpoint& to) {
  return change_members(id, Command::kRemoveDestination, &to);
}

int Engine::clear_destinations(uint32_t id) {
  return change_members(id, Command::kClearDestinations, nullptr);
}

// Updates the callers' view and queues the change for the sender thread,
// under one lock so that the queue order is the order of the views.
int Engine::change_members(uint32_t id, int kind, const udp::Endpoint* to) {
  std::lock_guard<std::mutex> lk(map_mutex_);
  auto it = channels_.find(id);
  if (it == channels_.end()) return ENOENT;
  Channel& ch = *it->second;
  {
    std::lock_guard<std::mutex> q(queue_mutex_);
    if (stopping_ || !thread_.joinable()) return ESHUTDOWN;
  }
  bool changed;
  if (kind == Command::kAddDestination)
    changed = ch.members.add(*to);
  else if (kind == Command::kRemoveDestination)
    changed = ch.members.remove(*to);
  else {
    changed = !ch.members.empty();
    ch.members.clear();
  }
  if (!changed) return 0;
  Command c(static_cast<Command::Kind>(kind));
  c.channel = id;
  if (to) c.endpoint = *to;
  return enqueue(std::move(c));
}

int Engine::set_rate(uint32_t id, uint64_t rate, uint64_t burst) {
  RQ_REQUIRE_CHANNEL(id);
  Command c(Command::kSetRate);
  c.channel = id;
  c.rate = rate;
  c.burst = burst;
  return enqueue(std::move(c));
}

int Engine::set_paused(uint32_t id, bool paused) {
  RQ_REQUIRE_CHANNEL(id);
  Command c(Command::kSetPaused);
  c.channel = id;
  c.flag = paused;
  return enqueue(std::move(c));
}

int Engine::push_packets(uint32_t id, const uint8_t* packets,
                         uint32_t packet_size, uint32_t count,
                         uint32_t* accepted) {
  *accepted = 0;
  std::shared_ptr<Channel> ch;
  {
    std::lock_guard<std::mutex> lk(map_mutex_);
    auto it = channels_.find(id);
    if (it == channels_.end()) return ENOENT;
    ch = it->second;
  }
  if (packet_size == 0) return EINVAL;
  if (packet_size > ch->config.slot_size) return EMSGSIZE;
  {
    std::lock_guard<std::mutex> lk(ch->producer_mutex);
    *accepted = ch->ring->push(packets, packet_size, count);
  }
  if (*accepted > 0) {
    ch->low_signalled.store(false, std::memory_order_release);
    wake();
  }
  return 0;
}

std::shared_ptr<PacketRing> Engine::ring(uint32_t id) {
  std::lock_guard<std::mutex> lk(map_mutex_);
  auto it = channels_.find(id);
  return it == channels_.end() ? nullptr : it->second->ring;
}

void Engine::producer_pushed(uint32_t id) {
  {
    std::lock_guard<std::mutex> lk(map_mutex_);
    auto it = channels_.find(id);
    if (it != channels_.end())
      it->second->low_signalled.store(false, std::memory_order_release);
  }
  wake();
}

int Engine::send_to(const uint32_t* channel, const udp::Endpoint& to,
                    const uint8_t* data, size_t len) {
  if (to.family() != AF_INET && to.family() != AF_INET6) return EAFNOSUPPORT;
  if (len > udp::kMaxDatagramPayload) return EMSGSIZE;
  if (channel) RQ_REQUIRE_CHANNEL(*channel);
  Command c(Command::kSendOne);
  if (channel) {
    c.has_channel = true;
    c.channel = *channel;
  }
  c.endpoint = to;
  c.payload.assign(data, data + len);
  return enqueue(std::move(c));
}

int Engine::channel_stats(uint32_t id, ChannelStats* out) const {
  std::lock_guard<std::mutex> lk(map_mutex_);
  auto it = channels_.find(id);
  if (it == channels_.end()) return ENOENT;
  const Channel& c = *it->second;
  out->id = c.id;
  out->stream_packets = c.stream_packets.get();
  out->datagrams = c.datagrams.get();
  out->bytes = c.bytes.get();
  out->syscalls = c.syscalls.get();
  out->gso_sends = c.gso_sends.get();
  out->drops_eagain = c.drops_eagain.get();
  out->drops_enobufs = c.drops_enobufs.get();
  out->errors = c.errors.get();
  out->one_offs = c.one_offs.get();
  out->destinations = c.members.size();
  out->queued = c.ring->queued();
  return 0;
}

void Engine::all_channel_stats(std::vector<ChannelStats>* out) const {
  std::vector<uint32_t> ids;
  {
    std::lock_guard<std::mutex> lk(map_mutex_);
    for (auto& kv : channels_) ids.push_back(kv.first);
  }
  std::sort(ids.begin(), ids.end());
  out->clear();
  for (uint32_t id : ids) {
    ChannelStats s;
    if (channel_stats(id, &s) == 0) out->push_back(s);
  }
}

EngineStats Engine::stats() const {
  EngineStats s;
  s.gso_active = gso_active_.load();
  s.gso_fallbacks = gso_fallbacks_.load();
  s.syscalls = syscalls_.load();
  s.one_offs = one_offs_.load();
  s.one_off_errors = one_off_errors_.load();
  s.commands = commands_.load();
  return s;
}

// ------------------------------------------------------------ sender thread

void Engine::apply(Command& c) {
  commands_.fetch_add(1, std::memory_order_relaxed);
  if (c.kind == Command::kAddChannel) {
    // Its tail was not read at the top of this loop: packets pushed after
    // this command wait for the next loop, which must not sleep first (their
    // wake-up may already have been consumed by this one).
    c.ch->visible_tail = c.ch->ring->head();
    active_.push_back(std::move(c.ch));
    rescan_ = true;
    return;
  }
  auto it = std::find_if(active_.begin(), active_.end(),
                         [&](const std::shared_ptr<Channel>& x) { return x->id == c.channel; });
  Channel* ch = it == active_.end() ? nullptr : it->get();
  switch (c.kind) {
    case Command::kRemoveChannel:
      if (ch) active_.erase(it);
      break;
    case Command::kAddDestination:
    case Command::kRemoveDestination:
      if (ch) {
        DestinationSet& set = ch->dests[c.endpoint.family() == AF_INET6 ? 1 : 0];
        if (c.kind == Command::kAddDestination)
          set.add(c.endpoint);
        else
          set.remove(c.endpoint);
      }
      break;
    case Command::kClearDestinations:
      if (ch) {
        ch->dests[0].clear();
        ch->dests[1].clear();
      }
      break;
    case Command::kSetRate:
      if (ch) {
        uint64_t burst = c.burst ? c.burst : default_burst(c.rate, ch->config.slot_size);
        ch->bucket.reconfigure(c.rate, burst, now());
      }
      break;
    case Command::kSetPaused:
      if (ch) ch->paused = c.flag;
      break;
    case Command::kSendOne: {
      udp::Socket* s = socket_for(c.endpoint.family());
      int err = s ? s->send_one(c.endpoint, c.payload.data(), c.payload.size())
                  : EAFNOSUPPORT;
      if (c.has_channel && ch) {
        ch->syscalls.add(1);
        if (err == 0) {
          ch->one_offs.add(1);
          ch->bytes.add(c.payload.size());
          ch->datagrams.add(1);
          ch->bucket.force_take(c.payload.size());
        } else {
          count_error(*ch, err, 1);
        }
      } else {
        (err == 0 ? one_offs_ : one_off_errors_).fetch_add(1, std::memory_order_relaxed);
      }
      syscalls_.fetch_add(1, std::memory_order_relaxed);
      break;
    }
    default:
      break;
  }
}

bool Engine::drain_commands() {
  std::deque<Command> batch;
  {
    std::lock_guard<std::mutex> lk(queue_mutex_);
    if (stopping_) return false;
    batch.swap(queue_);
  }
  for (Command& c : batch) apply(c);
  return true;
}

uint32_t Engine::run_limit(const Channel& c) const {
  uint64_t per_msg = gso_active_.load(std::memory_order_relaxed) ? options_.max_segments : 1;
  uint64_t d = c.dest_count();
  uint64_t n = d ? kRunMessageBudget * per_msg / d : per_msg;
  if (n < per_msg) n = per_msg;
  if (n > kMaxRunPackets) n = kMaxRunPackets;
  return static_cast<uint32_t>(n);
}

// A paced channel sends in runs of this many packets, not one packet per
// loop as soon as its tokens cover one: half the burst (2.5 ms of the rate
// by default), at most one GSO datagram. Sending each packet the moment it
// is due turns a 200 Mbit/s stream into ~20 000 one-segment sendmmsg calls
// per second per destination, and as many receive wake-ups at each client;
// a run is one GSO datagram per destination (one GRO message at a client
// that asks for them), the same bytes per second in coarser steps.
uint32_t Engine::pacing_quantum(const Channel& c) const {
  uint64_t per_msg = gso_active_.load(std::memory_order_relaxed) ? options_.max_segments : 1;
  uint64_t q = c.bucket.burst() / (2ull * c.config.slot_size);
  if (q > per_msg && per_msg > 1) q = per_msg;
  if (q > kMaxRunPackets) q = kMaxRunPackets;
  return q < 1 ? 1 : static_cast<uint32_t>(q);
}

void Engine::run() {
  while (true) {
    // Clear the wake flag before looking: a push or command that lands
    // after this point sets it again, so the wait below cannot miss it.
    uint64_t barrier_seen;
    {
      std::lock_guard<std::mutex> lk(queue_mutex_);
      wake_pending_ = false;
      barrier_seen = barrier_requested_;
    }
    // Tails first, then commands: every command issued before a push that
    // this loop can see is applied before that push's packets go out.
    for (auto& c : active_) c->visible_tail = c->ring->tail();
    rescan_ = false;
    if (!drain_commands()) break;

    uint64_t t = now();
    uint64_t min_wait = UINT64_MAX;
    bool sent_any = false;
    for (size_t k = 0; k < active_.size(); ++k) {
      Channel& c = *active_[k];
      if (c.paused || c.dest_count() == 0) continue;
      uint64_t head = c.ring->head();
      uint64_t avail = c.visible_tail - head;
      if (avail == 0) continue;
      uint32_t limit = run_limit(c);
      if (avail < limit) limit = static_cast<uint32_t>(avail);
      c.bucket.refill(t);
      if (!c.bucket.unpaced()) {
        uint32_t want = std::min(limit, pacing_quantum(c));
        uint64_t bytes = static_cast<uint64_t>(want) * c.ring->length(head);
        if (c.bucket.tokens() < static_cast<int64_t>(bytes)) {
          min_wait = std::min(min_wait, c.bucket.wait_ns(bytes));
          continue;
        }
      }
      uint32_t n = 0;
      while (n < limit && c.bucket.try_take(c.ring->length(head + n))) ++n;
      if (n == 0) {
        min_wait = std::min(min_wait, c.bucket.wait_ns(c.ring->length(head)));
        continue;
      }
      send_run(c, head, n);
      c.ring->release(n);
      c.stream_packets.add(n);
      sent_any = true;
      if (c.ring->queued() <= c.config.low_water &&
          !c.low_signalled.exchange(true, std::memory_order_acq_rel))
        low_.push_back(c.id);
    }
    if (!low_.empty()) {
      if (sink_) sink_->on_low_water(low_.data(), low_.size());
      low_.clear();
    }
    std::unique_lock<std::mutex> lk(queue_mutex_);
    // A loop that added a channel has not looked at its packets yet, so it
    // does not answer a barrier.
    if (!rescan_ && barrier_seen > barrier_done_) {
      barrier_done_ = barrier_seen;
      barrier_cv_.notify_all();
    }
    if (stopping_) break;
    if (sent_any || rescan_) continue;
    if (min_wait == UINT64_MAX)
      queue_cv_.wait(lk, [this] { return wake_pending_; });
    else
      queue_cv_.wait_for(lk, std::chrono::nanoseconds(min_wait),
                         [this] { return wake_pending_; });
  }
  std::lock_guard<std::mutex> lk(queue_mutex_);
  barrier_cv_.notify_all();
}

void Engine::send_run(Channel& c, uint64_t head, uint32_t count) {
  // Group consecutive packets into GSO super-datagrams: every segment of
  // one datagram has the group's first size, except a shorter last one
  // (the kernel's rule for UDP_SEGMENT).
  Run& run = *run_;
  bool gso = gso_active_.load(std::memory_order_relaxed);
  run.groups = 0;
  uint32_t i = 0;
  while (i < count) {
    uint32_t seg = c.ring->length(head + i);
    uint32_t g = 1;
    uint64_t total = seg;
    if (gso) {
      while (i + g < count && g < options_.max_segments) {
        uint32_t l = c.ring->length(head + i + g);
        if (l > seg || total + l > udp::kMaxDatagramPayload) break;
        total += l;
        ++g;
        if (l < seg) break;
      }
    }
    uint32_t k = run.groups++;
    run.first[k] = i;
    run.segs[k] = g;
    run.bytes[k] = total;
    for (uint32_t j = 0; j < g; ++j) {
      run.iov[i + j].iov_base = const_cast<uint8_t*>(c.ring->packet(head + i + j));
      run.iov[i + j].iov_len = c.ring->length(head + i + j);
    }
    if (g > 1) udp::write_gso_control(run.control[k], static_cast<uint16_t>(seg));
    i += g;
  }
  if (!c.dests[0].empty()) send_family(c, 0, run);
  if (!c.dests[1].empty()) send_family(c, 1, run);
}

void Engine::send_family(Channel& c, int fam, const Run& run) {
  udp::Socket& s = fam == 0 ? v4_ : v6_;
  if (!s.is_open()) {
    uint64_t packets = 0;
    for (uint32_t k = 0; k < run.groups; ++k) packets += run.segs[k];
    c.errors.add(c.dests[fam].size() * packets);
    return;
  }
  DestinationSet& set = c.dests[fam];
  const size_t nd = set.size();
  const unsigned cap = options_.max_batch;
  unsigned m = 0;
  auto add = [&](size_t d, iovec* iov, uint32_t g, void* control,
                 size_t controllen, uint64_t bytes) {
    msghdr& h = msgs_[m].msg_hdr;
    h.msg_name = const_cast<sockaddr_storage*>(&set[d].addr);
    h.msg_namelen = set[d].len;
    h.msg_iov = iov;
    h.msg_iovlen = g;
    h.msg_control = control;
    h.msg_controllen = controllen;
    h.msg_flags = 0;
    msg_segs_[m] = g;
    msg_bytes_[m] = bytes;
    if (++m == cap) {
      flush(c, s, set, m, msg_segs_.data(), msg_bytes_.data());
      m = 0;
    }
  };
  // Packet-major: each destination gets the groups in order.
  for (uint32_t k = 0; k < run.groups; ++k) {
    iovec* iov = const_cast<iovec*>(&run.iov[run.first[k]]);
    const uint32_t g = run.segs[k];
    void* control = g > 1 ? const_cast<uint8_t*>(run.control[k]) : nullptr;
    const size_t controllen = g > 1 ? udp::kGsoControlSize : 0;
    for (size_t d = 0; d < nd; ++d) {
      if (g > 1 && set.plain_only(d)) {
        for (uint32_t j = 0; j < g; ++j) add(d, iov + j, 1, nullptr, 0, iov[j].iov_len);
      } else {
        add(d, iov, g, control, controllen, run.bytes[k]);
      }
    }
  }
  if (m) flush(c, s, set, m, msg_segs_.data(), msg_bytes_.data());
}

// Counts the datagrams a failed message carried.
void Engine::count_error(Channel& c, int err, uint64_t datagrams) {
  if (err == EAGAIN || err == EWOULDBLOCK)
    c.drops_eagain.add(datagrams);
  else if (err == ENOBUFS)
    c.drops_enobufs.add(datagrams);
  else
    c.errors.add(datagrams);
}

// A GSO message the kernel would not take. EIO/ENOPROTOOPT: the device
// (or kernel) cannot segment at all, so GSO is off from now on. EINVAL or
// EMSGSIZE: this route's MTU is smaller than a segment (udp_send_skb checks
// gso_size against the path's fragment size), so this message is sent plain,
// the destination gets plain datagrams from then on (no failing call per
// run), and GSO stays on for everyone else.
static bool gso_refused(int err) {
  return err == EIO || err == ENOPROTOOPT || err == EINVAL || err == EMSGSIZE;
}

void Engine::flush(Channel& c, udp::Socket& s, DestinationSet& set,
                   unsigned count, const uint32_t* segs, const uint64_t* bytes) {
  unsigned off = 0;
  uint64_t calls = 0, dgrams = 0, nbytes = 0, gsos = 0;
  while (off < count) {
    if (segs[off] > 1 && !gso_active_.load(std::memory_order_relaxed)) {
      // GSO was switched off earlier in this run.
      send_segments_plain(c, s, msgs_[off].msg_hdr);
      ++off;
      continue;
    }
    int err = 0;
    int r = s.send_batch(&msgs_[off], count - off, &err);
    ++calls;
    if (r > 0) {
      for (unsigned j = off; j < off + static_cast<unsigned>(r); ++j) {
        dgrams += segs[j];
        nbytes += bytes[j];
        gsos += segs[j] > 1;
      }
      off += static_cast<unsigned>(r);
      continue;
    }
    if (err == EINTR) continue;
    if (segs[off] > 1 && gso_refused(err)) {
      gso_fallbacks_.fetch_add(1, std::memory_order_relaxed);
      if (err == EIO || err == ENOPROTOOPT) {
        gso_active_.store(false, std::memory_order_relaxed);
      } else {
        size_t d = set.index_of_name(msgs_[off].msg_hdr.msg_name);
        if (d < set.size()) set.set_plain_only(d);
      }
      send_segments_plain(c, s, msgs_[off].msg_hdr);
      ++off;
      continue;
    }
    count_error(c, err, segs[off]);
    off += 1;
  }
  c.syscalls.add(calls);
  c.datagrams.add(dgrams);
  c.bytes.add(nbytes);
  c.gso_sends.add(gsos);
  syscalls_.fetch_add(calls, std::memory_order_relaxed);
}

void Engine::send_segments_plain(Channel& c, udp::Socket& s, const msghdr& h) {
  // One plain datagram per segment of the refused GSO message.
  plain_.clear();
  for (size_t k = 0; k < h.msg_iovlen; ++k) {
    struct mmsghdr p{};
    p.msg_hdr.msg_name = h.msg_name;
    p.msg_hdr.msg_namelen = h.msg_namelen;
    p.msg_hdr.msg_iov = &h.msg_iov[k];
    p.msg_hdr.msg_iovlen = 1;
    plain_.push_back(p);
  }
  size_t off = 0;
  uint64_t calls = 0, dgrams = 0, nbytes = 0;
  while (off < plain_.size()) {
    int err = 0;
    int r = s.send_batch(&plain_[off], static_cast<unsigned>(plain_.size() - off), &err);
    ++calls;
    if (r > 0) {
      for (size_t j = off; j < off + static_cast<size_t>(r); ++j) {
        dgrams += 1;
        nbytes += plain_[j].msg_hdr.msg_iov->iov_len;
      }
      off += static_cast<size_t>(r);
      continue;
    }
    if (err == EINTR) continue;
    count_error(c, err, 1);
    off += 1;
  }
  c.syscalls.add(calls);
  c.datagrams.add(dgrams);
  c.bytes.add(nbytes);
  syscalls_.fetch_add(calls, std::memory_order_relaxed);
}

}  // namespace replicate
}  // namespace rqcast

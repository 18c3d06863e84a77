#include "replicate/engine.h"

#include <errno.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "replicate/udp_sink.h"

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

// A sink on a channel and how far along the stream it is.
struct SinkSlot {
  Sink* sink;
  std::shared_ptr<Sink> owned;  // empty for the channel's own UdpSink
  uint64_t next;                // stream index of the first packet not taken
};

}  // namespace

struct Engine::Channel {
  Channel(uint32_t i, const ChannelConfig& c, DatagramSender& sender)
      : id(i),
        config(c),
        ring(std::make_shared<PacketRing>(c.capacity, c.slot_size)),
        udp(sender) {
    sinks.push_back(SinkSlot{&udp, nullptr, 0});
  }

  const uint32_t id;
  ChannelConfig config;
  std::shared_ptr<PacketRing> ring;
  std::mutex producer_mutex;             // one producer at a time
  std::atomic<bool> low_signalled{false};
  // The UDP destinations and added sinks as the callers see them (guarded
  // by map_mutex_): answers add/remove at once and keeps no-op commands off
  // the queue.
  DestinationSet members;
  std::vector<const Sink*> added_sinks;
  std::shared_ptr<MulticastSink> group;  // also in added_sinks

  // Sender thread only.
  UdpSink udp;                  // the unicast destinations; sinks[0]
  std::vector<SinkSlot> sinks;  // in the order they were added
  TokenBucket bucket;
  // The last visit found nothing to send (no destination, no packet, or
  // paused): the time until the next busy visit was idle, not lateness.
  bool rested = true;
  bool paused = false;
  uint64_t visible_tail = 0;
  // The stream's next packet: [head, front) went out on the channel's
  // tokens and waits for a sink that took fewer (sink.h: back-pressure).
  uint64_t front = 0;

  // Written by the sender thread (the engine and the sinks).
  ChannelCounters counters;

  size_t destination_count() const {
    size_t n = 0;
    for (const SinkSlot& s : sinks) n += s.sink->destination_count();
    return n;
  }
  // The largest wire message among the sinks that send anything.
  uint32_t packets_per_message() const {
    uint32_t m = 1;
    for (const SinkSlot& s : sinks)
      if (!s.sink->empty()) m = std::max(m, s.sink->packets_per_message());
    return m;
  }
};

struct Engine::Command {
  enum Kind {
    kAddChannel,
    kRemoveChannel,
    kAddDestination,
    kRemoveDestination,
    kClearDestinations,
    kAddSink,
    kRemoveSink,
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
  std::shared_ptr<Sink> sink;
  const Sink* sink_id = nullptr;
};

Engine::Engine(const EngineOptions& options, EventSink* events)
    : options_(options), events_(events), udp_(options) {}

Engine::~Engine() { stop(); }

int Engine::start() {
  if (thread_.joinable()) return EALREADY;
  int rc = udp_.open();
  if (rc != 0) return rc;
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
  udp_.close();
}

uint64_t Engine::now() const {
  return options_.clock ? options_.clock() : monotonic_ns();
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
  auto ch = std::make_shared<Channel>(id, config, udp_);
  if (ch->config.burst_bytes == 0)
    ch->config.burst_bytes = default_burst(config.rate_bytes_per_s, config.slot_size);
  ch->bucket = TokenBucket(config.rate_bytes_per_s, ch->config.burst_bytes, now(),
                           default_catch_up(config.rate_bytes_per_s),
                           default_repay_cap(config.rate_bytes_per_s));
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
  if (to.family() == AF_INET6 && thread_.joinable() && !udp_.has_family(AF_INET6))
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

int Engine::add_sink(uint32_t id, std::shared_ptr<Sink> sink) {
  if (!sink) return EINVAL;
  std::lock_guard<std::mutex> lk(map_mutex_);
  auto it = channels_.find(id);
  if (it == channels_.end()) return ENOENT;
  return add_sink_locked(*it->second, std::move(sink));
}

int Engine::add_sink_locked(Channel& ch, std::shared_ptr<Sink> sink) {
  std::vector<const Sink*>& added = ch.added_sinks;
  if (std::find(added.begin(), added.end(), sink.get()) != added.end()) return 0;
  Command c(Command::kAddSink);
  c.channel = ch.id;
  c.sink_id = sink.get();
  c.sink = std::move(sink);
  const Sink* id = c.sink_id;
  int rc = enqueue(std::move(c));
  if (rc == 0) added.push_back(id);
  return rc;
}

int Engine::remove_sink(uint32_t id, const Sink* sink) {
  std::lock_guard<std::mutex> lk(map_mutex_);
  auto it = channels_.find(id);
  if (it == channels_.end()) return ENOENT;
  return remove_sink_locked(*it->second, sink);
}

int Engine::remove_sink_locked(Channel& ch, const Sink* sink) {
  std::vector<const Sink*>& added = ch.added_sinks;
  auto at = std::find(added.begin(), added.end(), sink);
  if (at == added.end()) return 0;
  Command c(Command::kRemoveSink);
  c.channel = ch.id;
  c.sink_id = sink;
  int rc = enqueue(std::move(c));
  if (rc == 0) added.erase(at);
  return rc;
}

int Engine::add_group(uint32_t id, const MulticastConfig& config,
                      MulticastStage* failed) {
  if (failed) *failed = MulticastStage::kNone;
  {
    std::lock_guard<std::mutex> lk(map_mutex_);
    auto it = channels_.find(id);
    if (it == channels_.end()) return ENOENT;
    if (it->second->group) return EEXIST;
  }
  {
    std::lock_guard<std::mutex> q(queue_mutex_);
    if (stopping_ || !thread_.joinable()) return ESHUTDOWN;
  }
  // The socket calls run outside the locks; the channel is looked up again
  // after them (another caller may have removed it or given it a group).
  auto sink = std::make_shared<MulticastSink>(config, options_);
  int rc = sink->open(failed);
  if (rc != 0) return rc;
  std::lock_guard<std::mutex> lk(map_mutex_);
  auto it = channels_.find(id);
  if (it == channels_.end()) return ENOENT;
  Channel& ch = *it->second;
  if (ch.group) return EEXIST;
  rc = add_sink_locked(ch, sink);
  if (rc == 0) ch.group = std::move(sink);
  return rc;
}

int Engine::remove_group(uint32_t id) {
  std::lock_guard<std::mutex> lk(map_mutex_);
  auto it = channels_.find(id);
  if (it == channels_.end()) return ENOENT;
  Channel& ch = *it->second;
  if (!ch.group) return 0;
  int rc = remove_sink_locked(ch, ch.group.get());
  if (rc == 0) ch.group.reset();
  return rc;
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
  const ChannelCounters& k = c.counters;
  out->stream_packets = k.stream_packets.get();
  out->datagrams = k.datagrams.get();
  out->bytes = k.bytes.get();
  out->syscalls = k.syscalls.get();
  out->gso_sends = k.gso_sends.get();
  out->drops_eagain = k.drops_eagain.get();
  out->drops_enobufs = k.drops_enobufs.get();
  out->errors = k.errors.get();
  out->one_offs = k.one_offs.get();
  out->tcp_packets = k.tcp_packets.get();
  out->tcp_bytes = k.tcp_bytes.get();
  out->pacing_forfeited = k.pacing_forfeited.get();
  out->pacing_repaid = k.pacing_repaid.get();
  out->destinations = c.members.size();
  out->groups = c.group ? 1 : 0;
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
  s.gso_active = udp_.gso_active();
  s.gso_fallbacks = udp_.gso_fallbacks();
  s.syscalls = udp_.syscalls();
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
    Channel& added = *c.ch;
    added.visible_tail = added.front = added.ring->head();
    for (SinkSlot& s : added.sinks) s.next = added.front;
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
      if (ch) ch->udp.add(c.endpoint);
      break;
    case Command::kRemoveDestination:
      if (ch) ch->udp.remove(c.endpoint);
      break;
    case Command::kClearDestinations:
      if (ch) ch->udp.clear();
      break;
    case Command::kAddSink:
      // It starts where the stream is now: the next packet sent is its first.
      if (ch) ch->sinks.push_back(SinkSlot{c.sink.get(), std::move(c.sink), ch->front});
      break;
    case Command::kRemoveSink:
      if (ch) {
        auto at = std::find_if(ch->sinks.begin(), ch->sinks.end(),
                               [&](const SinkSlot& s) { return s.sink == c.sink_id; });
        if (at != ch->sinks.end() && at->owned) ch->sinks.erase(at);
      }
      break;
    case Command::kSetRate:
      if (ch) {
        uint64_t burst = c.burst ? c.burst : default_burst(c.rate, ch->config.slot_size);
        ch->bucket.reconfigure(c.rate, burst, now(), default_catch_up(c.rate),
                               default_repay_cap(c.rate));
      }
      break;
    case Command::kSetPaused:
      if (ch) ch->paused = c.flag;
      break;
    case Command::kSendOne: {
      int err = udp_.send_one(c.endpoint, c.payload.data(), c.payload.size());
      if (c.has_channel && ch) {
        ChannelCounters& k = ch->counters;
        k.syscalls.add(1);
        if (err == 0) {
          k.one_offs.add(1);
          k.bytes.add(c.payload.size());
          k.datagrams.add(1);
          ch->bucket.force_take(c.payload.size());
        } else {
          k.count_error(err, 1);
        }
      } else {
        (err == 0 ? one_offs_ : one_off_errors_).fetch_add(1, std::memory_order_relaxed);
      }
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

uint32_t Engine::run_limit(size_t destinations, uint32_t per_message) const {
  uint64_t per_msg = per_message;
  uint64_t d = destinations;
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
uint32_t Engine::pacing_quantum(const Channel& c, uint32_t per_message) const {
  uint64_t per_msg = per_message;
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
      if (c.paused) {
        rest(c, t);
        continue;
      }
      bool moved = serve(c, t, &min_wait);
      sent_any |= moved;
      // A removed sink may have been the one holding the ring: released
      // slots count as progress for the producer even when nothing moved.
      if ((release_taken(c) > 0 || moved) &&
          c.ring->queued() <= c.config.low_water &&
          !c.low_signalled.exchange(true, std::memory_order_acq_rel))
        low_.push_back(c.id);
    }
    if (!low_.empty()) {
      if (events_) events_->on_low_water(low_.data(), low_.size());
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

bool Engine::serve(Channel& c, uint64_t t, uint64_t* min_wait) {
  const size_t destinations = c.destination_count();
  // Idle time earns a burst at most (pacing.h: catch-up is for lateness).
  if (destinations == 0) {
    rest(c, t);
    return false;
  }
  const uint32_t per_message = c.packets_per_message();
  const uint32_t max_run = run_limit(destinations, per_message);
  bool moved = false;
  // A sink that took fewer than it was offered gets the rest first, on
  // tokens already spent: the stream went past those packets.
  for (size_t i = 0; i < c.sinks.size(); ++i) {
    const uint64_t next = c.sinks[i].next;
    if (next != c.front)
      moved |= offer(c, next, std::min<uint64_t>(c.front, next + max_run), t);
  }
  uint64_t avail = c.visible_tail - c.front;
  if (avail == 0) {
    rest(c, t);
    return moved;
  }
  uint32_t limit = max_run;
  if (avail < limit) limit = static_cast<uint32_t>(avail);
  // Time since a visit that found nothing to send was idle: it earns the
  // burst and owes nothing (pacing.h), however late this visit is.
  if (c.rested) c.bucket.rest(t);
  c.rested = false;
  // The counters are read by other threads: copied only when they moved.
  if (c.bucket.refill(t)) {
    c.counters.pacing_forfeited.set(c.bucket.forfeited_total());
    c.counters.pacing_repaid.set(c.bucket.repaid_total());
  }
  if (!c.bucket.unpaced()) {
    uint32_t want = std::min(limit, pacing_quantum(c, per_message));
    uint64_t bytes = static_cast<uint64_t>(want) * c.ring->length(c.front);
    if (c.bucket.tokens() < static_cast<int64_t>(bytes)) {
      *min_wait = std::min(*min_wait, c.bucket.wait_ns(bytes));
      return moved;
    }
  }
  uint32_t n = 0;
  while (n < limit && c.bucket.try_take(c.ring->length(c.front + n))) ++n;
  if (n == 0) {
    *min_wait = std::min(*min_wait, c.bucket.wait_ns(c.ring->length(c.front)));
    return moved;
  }
  offer(c, c.front, c.front + n, t);
  c.front += n;
  c.counters.stream_packets.add(n);
  return true;
}

void Engine::rest(Channel& c, uint64_t t) {
  c.bucket.rest(t);
  c.rested = true;
}

uint32_t Engine::release_taken(Channel& c) {
  uint64_t done = c.front;
  for (SinkSlot& s : c.sinks) {
    // A sink with no destination holds nothing (there is no one to wait for).
    if (s.next != c.front && s.sink->empty()) s.next = c.front;
    done = std::min(done, s.next);
  }
  uint64_t head = c.ring->head();
  if (done <= head) return 0;
  uint32_t n = static_cast<uint32_t>(done - head);
  c.ring->release(n);
  return n;
}

bool Engine::offer(Channel& c, uint64_t first, uint64_t end, uint64_t now_ns) {
  Run run;
  run.ring = c.ring.get();
  run.first = first;
  run.count = static_cast<uint32_t>(end - first);
  run.now_ns = now_ns;
  size_t reaching = 0;
  for (const SinkSlot& s : c.sinks) reaching += s.sink->empty() ? 0 : 1;
  run.sole = reaching == 1;
  bool took = false;
  for (SinkSlot& s : c.sinks) {
    if (s.next != first) continue;
    if (s.sink->empty()) {
      // No one to send to: nothing to hold the ring for.
      s.next = end;
      continue;
    }
    uint32_t taken = std::min(s.sink->send(run, c.counters), run.count);
    s.next += taken;
    took |= taken > 0;
  }
  return took;
}

}  // namespace replicate
}  // namespace rqcast

#include "tcp/service.h"

#include <errno.h>
#include <poll.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "tcp/segment.h"

namespace rqcast {
namespace tcp {

// Builds each segment straight into a sender's next batch slot: a
// connection that knows its link (the SYN's, segment.h) goes by the packet
// socket, consecutive segments joined into GSO trains (segment_train.h);
// the others, and all of them when the packet socket is not usable, by the
// routed IPPROTO_RAW socket. A connection's segments all go one way, so they
// leave in the order it made them.
class Service::Output : public SegmentOutput {
 public:
  Output(RawSender* tx, PacketSender* ptx, uint32_t max_train)
      : tx_(tx), ptx_(ptx), train_(max_train) {}
  void Transmit(const OutSegment& seg, const uint8_t* payload, size_t len) override {
    ++segments;
    if (!train_.empty() && train_.Joins(seg, len)) {
      train_.Append(payload, len);
      return;
    }
    FinishTrain();
    if (seg.link.ifindex != 0 && ptx_->Reaches(seg.link)) {
      if (train_.Start(seg, payload, len, ptx_->Slot(), ptx_->slot_size())) {
        link_ = seg.link;
        return;
      }
      ++build_errors;
      return;
    }
    const size_t n = BuildIpv4Tcp(seg, payload, len, ip_id_++, tx_->Slot(), tx_->slot_size());
    if (n == 0) {
      ++build_errors;  // larger than a slot: a bug, never a peer's doing
      return;
    }
    tx_->Commit(n, seg.dst.addr);
  }
  // Ends the open train (the next segment cannot join it, or the loop is
  // about to send what it built).
  void FinishTrain() {
    if (train_.empty()) return;
    GsoLayout layout;
    const size_t n = train_.Finish(ip_id_, &layout);
    ip_id_ = static_cast<uint16_t>(ip_id_ + layout.segments);  // the kernel numbers each cut
    if (n == 0 || !ptx_->Commit(n, link_, layout)) ++build_errors;
  }
  void Flush() {
    FinishTrain();
    ptx_->Flush();
    tx_->Flush();
  }
  uint64_t segments = 0, build_errors = 0;

 private:
  RawSender* tx_;
  PacketSender* ptx_;
  SegmentTrain train_;
  LinkAddress link_;
  uint16_t ip_id_ = 0;  // DF is set: the ID only has to vary (RFC 6864)
};

Service::Service(const ServiceConfig& config, std::shared_ptr<replicate::Engine> engine,
                 ServiceEvents* events)
    : config_(config),
      engine_(std::move(engine)),
      events_(events),
      ready_(std::make_shared<ReadyQueue>()),
      rx_(64, 65536),
      // A segment is at most MSS bytes of payload plus the IPv4 header and
      // 40 bytes of TCP options over the 20-byte TCP header.
      tx_(64, static_cast<size_t>(config.listener.connection.mss) + 20 + 60),
      ptx_(32, 65535) {}

Service::~Service() { Stop(); }

uint64_t Service::Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

int Service::Start() {
  if (running()) return EALREADY;
  if (config_.listener.local.port == 0 || !ready_->ok()) return EINVAL;
  bool keyed = false;
  for (uint8_t b : config_.listener.isn_key) keyed = keyed || b != 0;
  if (!keyed && getrandom(config_.listener.isn_key, sizeof config_.listener.isn_key, 0) !=
                    static_cast<ssize_t>(sizeof config_.listener.isn_key))
    return errno ? errno : EIO;
  int rc = ReservePort(config_.listener.local.addr, config_.listener.local.port, &port_fd_);
  if (rc != 0) return rc;
  rc = rx_.Open(config_.listener.local.addr, config_.listener.local.port,
                config_.receive_buffer_bytes);
  if (rc == 0) rc = tx_.Open(config_.send_buffer_bytes);
  // The GSO path is optional: without it every segment takes the routed one.
  packet_path_error_.store(0);
  packet_path_.store(false);
  if (rc == 0 && config_.max_train_segments > 0) {
    const int err = ptx_.Open(config_.send_buffer_bytes);
    packet_path_error_.store(err);
    packet_path_.store(err == 0);
  }
  if (rc != 0) {
    ptx_.Close();
    rx_.Close();
    ::close(port_fd_);
    port_fd_ = -1;
    return rc;
  }
  trace_.reset(ServiceTrace::FromEnvironment());
  if (trace_) rx_.EnableTimestamps();
  output_.reset(new Output(&tx_, &ptx_, config_.max_train_segments));
  listener_.reset(new Listener(config_.listener, output_.get()));
  {
    std::lock_guard<std::mutex> lk(cmd_mu_);
    commands_.clear();
  }
  thread_ = std::thread([this] { Run(); });
  return 0;
}

void Service::Stop() {
  if (!running()) return;
  Post(Command{Command::kStop, 0});
  thread_.join();
  trace_.reset();
  rx_.Close();
  tx_.Close();
  ptx_.Close();
  if (port_fd_ >= 0) ::close(port_fd_);
  port_fd_ = -1;
  // Every sink leaves the engine (their pools are detached already).
  std::unordered_map<uint32_t, std::vector<std::shared_ptr<replicate::TcpSink>>> members;
  {
    std::lock_guard<std::mutex> lk(shared_mu_);
    members.swap(members_);
    pools_.clear();
    snapshots_.clear();
  }
  if (engine_)
    for (auto& kv : members)
      for (auto& s : kv.second) engine_->remove_sink(s->channel(), s.get());
}

void Service::Post(Command c) {
  {
    std::lock_guard<std::mutex> lk(cmd_mu_);
    // Bounded: a close or abort per connection, and one stop, matter.
    if (commands_.size() < 4u * config_.listener.max_connections + 64 || c.type == Command::kStop)
      commands_.push_back(c);
  }
  ready_->Wake();
}

void Service::Close(uint32_t id) { Post(Command{Command::kClose, id}); }
void Service::Abort(uint32_t id) { Post(Command{Command::kAbort, id}); }

void Service::DataConsumed(size_t bytes) {
  uint64_t cur = pending_data_.load();
  uint64_t next;
  do {
    next = cur > bytes ? cur - bytes : 0;
  } while (!pending_data_.compare_exchange_weak(cur, next));
  if (data_blocked_.exchange(false)) ready_->Wake();
}

bool Service::SendControl(uint32_t id, const uint8_t* packet, size_t len) {
  std::shared_ptr<FramePool> pool;
  {
    std::lock_guard<std::mutex> lk(shared_mu_);
    auto it = pools_.find(id);
    if (it != pools_.end()) pool = it->second;
  }
  if (!pool || pool->detached()) return false;
  bool woke = false;
  if (!pool->PushControl(packet, len, &woke)) {
    // A peer that does not read its control messages: the connection goes
    // rather than the queue (an empty or oversized packet is the caller's
    // bug, refused the same way).
    Abort(id);
    return false;
  }
  if (woke) ready_->Push(id);  // else a wake-up for this pool is pending
  return true;
}

int Service::AddMember(uint32_t channel, uint32_t id) {
  if (!engine_) return ENOTSUP;
  std::shared_ptr<replicate::TcpSink> sink;
  {
    std::lock_guard<std::mutex> lk(shared_mu_);
    auto it = pools_.find(id);
    if (it == pools_.end()) return 0;
    auto& list = members_[id];
    for (auto& s : list)
      if (s->channel() == channel) return 0;
    if (list.empty()) {
      std::weak_ptr<replicate::Engine> engine = engine_;
      it->second->SetRoomCallback([engine] {
        if (auto e = engine.lock()) e->wake();
      });
    }
    sink = std::make_shared<replicate::TcpSink>(it->second, ready_, channel, id);
    list.push_back(sink);
  }
  int rc = engine_->add_sink(channel, sink);
  bool still = false;
  {
    std::lock_guard<std::mutex> lk(shared_mu_);
    auto it = members_.find(id);
    if (it != members_.end()) {
      auto& list = it->second;
      auto pos = std::find(list.begin(), list.end(), sink);
      still = pos != list.end();
      if (still && rc != 0) list.erase(pos);
    }
  }
  // The connection went while the engine took the sink: take it back (the
  // engine applies commands in order).
  if (rc == 0 && !still) engine_->remove_sink(channel, sink.get());
  return rc;
}

int Service::RemoveMember(uint32_t channel, uint32_t id) {
  if (!engine_) return ENOTSUP;
  std::shared_ptr<replicate::TcpSink> sink;
  {
    std::lock_guard<std::mutex> lk(shared_mu_);
    auto it = members_.find(id);
    if (it == members_.end()) return 0;
    auto& list = it->second;
    for (auto s = list.begin(); s != list.end(); ++s) {
      if ((*s)->channel() == channel) {
        sink = *s;
        list.erase(s);
        break;
      }
    }
  }
  if (!sink) return 0;
  int rc = engine_->remove_sink(channel, sink.get());
  return rc == ENOENT ? 0 : rc;  // the channel went first: nothing to leave
}

void Service::DropMembers(uint32_t id) {
  std::vector<std::shared_ptr<replicate::TcpSink>> list;
  {
    std::lock_guard<std::mutex> lk(shared_mu_);
    auto it = members_.find(id);
    if (it != members_.end()) {
      list.swap(it->second);
      members_.erase(it);
    }
  }
  if (engine_)
    for (auto& s : list) engine_->remove_sink(s->channel(), s.get());
}

ServiceStats Service::stats() const {
  std::lock_guard<std::mutex> lk(shared_mu_);
  ServiceStats s = stats_;
  s.fresh_frames = closed_totals_.fresh_frames;
  s.stale_frames = closed_totals_.stale_frames;
  s.retransmitted_segments = closed_totals_.retransmitted_segments;
  s.pool_evicted = closed_totals_.pool_evicted;
  for (auto& kv : snapshots_) {
    s.fresh_frames += kv.second.stats.fresh_frames;
    s.stale_frames += kv.second.stats.stale_frames;
    s.retransmitted_segments += kv.second.stats.retransmitted_segments;
    s.pool_evicted += kv.second.pool.evicted;
    s.control_refused += kv.second.pool.control_refused;
  }
  s.pending_data = pending_data_.load();
  s.packet_path = packet_path_.load();
  s.packet_path_error = packet_path_error_.load();
  return s;
}

bool Service::Snapshot(uint32_t id, ConnectionSnapshot* out) const {
  std::lock_guard<std::mutex> lk(shared_mu_);
  auto it = snapshots_.find(id);
  if (it == snapshots_.end()) return false;
  *out = it->second;
  return true;
}

uint64_t Service::ReceiveAll(uint64_t now) {
  std::vector<RawPacket> pkts;
  uint64_t taken = 0;
  // Bounded per loop, so that timers and commands keep their turn under a
  // flood.
  for (int b = 0; b < 16; ++b) {
    int err = 0;
    const size_t n = rx_.Receive(&pkts, &err);
    if (err != 0) ++own_.receive_errors;
    if (n == 0) break;
    taken += n;
    if (trace_) {
      timespec rt;
      clock_gettime(CLOCK_REALTIME, &rt);
      const uint64_t real = uint64_t(rt.tv_sec) * 1000000000ull + uint64_t(rt.tv_nsec);
      for (const RawPacket& p : pkts) trace_->Received(p.rx_realtime_ns, real);
    }
    for (const RawPacket& p : pkts) {
      Segment seg;
      if (ParseIpv4Tcp(p.data, p.len, !p.checksum_trusted, &seg) != ParseError::kOk) {
        ++own_.bad_segments;
        continue;
      }
      // Where a SYN came from is where its connection's segments go back
      // (the packet path); a frame from no usable address leaves ifindex 0.
      UsableLink(p.ifindex, p.link_type, p.addr_len, p.addr, &seg.link);
      // 127/8 never appears outside a host (RFC 1122 §3.2.1.3): the kernel
      // drops such martians when routing, but AF_PACKET sees them first.
      if (!p.loopback && ((seg.src.addr >> 24) == 127 || (seg.dst.addr >> 24) == 127)) {
        ++own_.martians;
        continue;
      }
      listener_->OnSegment(seg, now);
    }
  }
  return taken;
}

void Service::ApplyCommands(uint64_t now, bool* stop) {
  std::vector<Command> cmds;
  {
    std::lock_guard<std::mutex> lk(cmd_mu_);
    cmds.swap(commands_);
  }
  for (const Command& c : cmds) {
    switch (c.type) {
      case Command::kClose: listener_->Close(c.id, now); break;
      case Command::kAbort: listener_->Abort(c.id, now); break;
      case Command::kStop: *stop = true; break;
    }
  }
}

void Service::Publish(const std::vector<ListenerEvent>& lev, std::vector<ServiceEvent>* events) {
  for (const ListenerEvent& e : lev) {
    ServiceEvent ev;
    ev.id = e.id;
    ev.remote = e.remote;
    if (e.type == ListenerEvent::kOpened) {
      ev.type = ServiceEvent::kOpen;
      std::lock_guard<std::mutex> lk(shared_mu_);
      pools_[e.id] = listener_->pool(e.id);
    } else {
      ev.type = ServiceEvent::kClose;
      ev.reason = e.reason;
      {
        std::lock_guard<std::mutex> lk(shared_mu_);
        pools_.erase(e.id);
        snapshots_.erase(e.id);
        closed_totals_.fresh_frames += e.final_stats.fresh_frames;
        closed_totals_.stale_frames += e.final_stats.stale_frames;
        closed_totals_.retransmitted_segments += e.final_stats.retransmitted_segments;
        closed_totals_.pool_evicted += e.pool_stats.evicted;
      }
      if (trace_) {
        trace_->Connection("closed", Now(), e.id, e.final_stats);
        trace_->Summary();
      }
      DropMembers(e.id);
    }
    events->push_back(std::move(ev));
  }
}

void Service::DeliverData(std::vector<ServiceEvent>* events) {
  std::vector<uint32_t> ids;
  listener_->ReadableIds(&ids);
  for (uint32_t id : ids) {
    while (true) {
      const uint64_t pending = pending_data_.load();
      if (pending >= config_.max_pending_data) {
        // Wait for DataConsumed; the peers' windows close meanwhile.
        data_blocked_.store(true);
        if (pending_data_.load() < config_.max_pending_data && data_blocked_.exchange(false))
          continue;  // consumed in between: no wake-up will come
        return;
      }
      const Connection* c = listener_->connection(id);
      const size_t room = std::min<uint64_t>(
          std::min<uint64_t>(config_.max_data_event, config_.max_pending_data - pending),
          c ? c->Readable() : 0);
      if (room == 0) break;
      ServiceEvent ev;
      ev.type = ServiceEvent::kData;
      ev.id = id;
      ev.bytes.resize(room);
      const size_t n = listener_->Read(id, ev.bytes.data(), room);
      if (n == 0) break;
      ev.bytes.resize(n);
      pending_data_.fetch_add(n);
      events->push_back(std::move(ev));
    }
  }
}

void Service::Run() {
  std::vector<uint32_t> ready, touched;
  std::vector<ListenerEvent> lev;
  std::vector<ServiceEvent> events;
  bool stop = false;
  while (!stop) {
    uint64_t now = Now();
    const uint64_t deadline = listener_->NextDeadline();
    timespec ts;
    timespec* tsp = nullptr;
    if (deadline != UINT64_MAX) {
      const uint64_t wait = deadline > now ? deadline - now : 0;
      ts.tv_sec = static_cast<time_t>(wait / 1000000000ull);
      ts.tv_nsec = static_cast<long>(wait % 1000000000ull);
      tsp = &ts;
    }
    pollfd fds[2];
    fds[0] = {rx_.fd(), POLLIN, 0};
    fds[1] = {ready_->fd(), POLLIN, 0};
    int n = ppoll(fds, 2, tsp, nullptr);
    now = Now();
    const uint64_t woke = now;
    uint64_t packets = 0;
    const uint64_t segments_before_pass = output_->segments;
    if (n > 0 && (fds[1].revents & POLLIN)) {
      ready_->Take(&ready);
      for (uint32_t id : ready) listener_->MarkReady(id);
      ApplyCommands(now, &stop);
      if (stop) break;
    }
    if (n > 0 && (fds[0].revents & POLLIN)) packets = ReceiveAll(now);
    listener_->Poll(now);
    lev.clear();
    listener_->TakeEvents(&lev);
    Publish(lev, &events);
    if (!data_blocked_.load()) DeliverData(&events);
    output_->Flush();
    // Segments made this pass carry `now` as their send time (the start of
    // their RTT samples); the trace says how long after it they left.
    if (trace_ && output_->segments != segments_before_pass) trace_->Sent(Now() - now);
    listener_->TakeTouched(&touched);
    {
      std::lock_guard<std::mutex> lk(shared_mu_);
      for (uint32_t id : touched) {
        const Connection* c = listener_->connection(id);
        auto p = pools_.find(id);
        if (!c || p == pools_.end()) continue;  // half-open, or gone
        ConnectionSnapshot& s = snapshots_[id];
        s.id = id;
        s.state = c->state();
        s.stats = c->stats();
        s.pool = p->second->stats();
      }
      const ListenerStats& ls = listener_->stats();
      stats_.connections = ls.connections;
      stats_.half_open = ls.half_open;
      stats_.accepted = ls.accepted;
      stats_.refused = ls.refused;
      stats_.resets_sent = ls.resets_sent;
      stats_.resets_suppressed = ls.resets_suppressed;
      stats_.ignored = ls.ignored;
      stats_.segments_in = ls.segments_in;
      stats_.segments_out = output_->segments;
      stats_.send_errors = tx_.errors() + ptx_.errors() + output_->build_errors;
      stats_.packets_out = tx_.packets() + ptx_.packets();
      stats_.gso_packets = ptx_.gso_packets();
      stats_.gso_segments = ptx_.segments();
      if (ptx_.refused() && packet_path_.exchange(false)) packet_path_error_.store(ptx_.last_error());
      stats_.truncated = rx_.truncated();
      stats_.bad_segments = own_.bad_segments;
      stats_.receive_errors = own_.receive_errors;
      stats_.martians = own_.martians;
      if (trace_ && trace_->SampleDue(now)) {
        trace_->Sampled(now);
        for (auto& kv : snapshots_) trace_->Connection("conn", now, kv.first, kv.second.stats);
      }
    }
    if (!events.empty()) {
      events_->OnEvents(&events);
      events.clear();
    }
    if (trace_) {
      trace_->Loop(n > 0 && (fds[0].revents & POLLIN), n > 0 && (fds[1].revents & POLLIN), n == 0,
                   packets, Now() - woke);
    }
  }
  // Stop: every connection gets a RST; no close events (the owner stopped).
  listener_->AbortAll(Now());
  output_->Flush();
}

}  // namespace tcp
}  // namespace rqcast

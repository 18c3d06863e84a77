// End-to-end test of the user-space TCP server (native/tcp/service) with
// the kernel's own TCP as the client, in a private network namespace:
// loopback up, and the nftables rule the server needs (the host's stack
// must not answer the server's port with RSTs; AF_PACKET sees the packets
// before netfilter's input hook drops them).
//
// A plain socket/connect/read client gets a control frame, then the frames
// of a replicator channel's stream pushed through the Engine (TcpSink →
// FramePool → Connection → raw socket), bit-exact and in order (but for
// what retransmissions replaced: even on loopback a tail loss probe may
// beat the client's delayed ACK; StreamTally says what holds then); what it
// writes comes back as data events; its close ends the connection
// normally. A second client is aborted and sees ECONNRESET. Then, with 5%
// of the server's segments dropped, every frame read is still a whole
// packet of the stream, none twice: lost data frames come back fresh. A
// consumer that falls behind closes the client's window instead of growing
// a queue; 32 clients at once each get the whole stream; over a veth pair
// into a second namespace, the same stream arrives through a real link's
// MTU and checksum offload, with and without GSO trains.
//
// Skipped, with the reason printed, without CAP_NET_ADMIN / CAP_NET_RAW or
// without `nft`. Waits are bounded so that a broken build fails, not hangs.
#include <arpa/inet.h>
#include <poll.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "replicate/engine.h"
#include "tcp/service.h"

#include "check.h"
#include "net_fixtures.h"

using namespace rqcast;

namespace {

constexpr uint16_t kPort = 9400;
constexpr uint32_t kLoopback = 0x7f000001;
constexpr uint32_t kChannel = 7;

struct Events : tcp::ServiceEvents {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<tcp::ServiceEvent> got;
  tcp::Service* service = nullptr;  // given: data is consumed at once
  void OnEvents(std::vector<tcp::ServiceEvent>* events) override {
    std::lock_guard<std::mutex> lk(mu);
    for (auto& e : *events) {
      if (e.type == tcp::ServiceEvent::kData && service) service->DataConsumed(e.bytes.size());
      got.push_back(std::move(e));
    }
    cv.notify_all();
  }
  // Waits (up to 5 s) for an event of `type` for `id` (0: any id) past index
  // *from; returns it (type kOpen with id 0 if none came).
  tcp::ServiceEvent wait(tcp::ServiceEvent::Type type, uint32_t id, size_t* from) {
    std::unique_lock<std::mutex> lk(mu);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (true) {
      for (; *from < got.size(); ++*from) {
        if (got[*from].type == type && (id == 0 || got[*from].id == id)) return got[(*from)++];
      }
      if (cv.wait_until(lk, deadline) == std::cv_status::timeout) {
        tcp::ServiceEvent none;
        return none;
      }
    }
  }
  std::string data_of(uint32_t id) {
    std::lock_guard<std::mutex> lk(mu);
    std::string s;
    for (auto& e : got)
      if (e.type == tcp::ServiceEvent::kData && e.id == id) s.append(e.bytes.begin(), e.bytes.end());
    return s;
  }
};

// An ALC packet as rqcast sends it (PROTOCOL.md §8.1): TOI 1, SBN, ESI,
// then `size - 20` symbol bytes that depend on the ESI.
std::vector<uint8_t> alc(uint8_t sbn, uint32_t esi, size_t size) {
  std::vector<uint8_t> p(size);
  p[0] = 0x10;
  p[1] = 0xa0;
  p[2] = 4;
  p[3] = 6;
  p[11] = kChannel;
  p[15] = 1;  // TOI 1
  p[16] = sbn;
  p[17] = static_cast<uint8_t>(esi >> 16);
  p[18] = static_cast<uint8_t>(esi >> 8);
  p[19] = static_cast<uint8_t>(esi);
  for (size_t i = 20; i < size; ++i) p[i] = static_cast<uint8_t>(esi * 131 + i * 7);
  return p;
}

int connect_client() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(kPort);
  sin.sin_addr.s_addr = htonl(kLoopback);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
    std::fprintf(stderr, "connect: %s\n", std::strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

bool read_exact(int fd, uint8_t* out, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, out + got, n - got);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

// One frame (PROTOCOL.md §3): u16 length, then the packet.
bool read_frame(int fd, std::vector<uint8_t>* packet) {
  uint8_t len[2];
  if (!read_exact(fd, len, 2)) return false;
  packet->resize((len[0] << 8) | len[1]);
  return read_exact(fd, packet->data(), packet->size());
}

// What a client read of a channel's stream, held to what PROTOCOL.md
// §10.11 promises, which is not "every packet pushed, in order": a
// retransmitted segment keeps its byte range and frame boundaries but each
// data frame in it is replaced by a pool packet never sent before, and the
// client's TCP keeps whichever version of the range reached it first. So
// every frame a retransmission refreshes costs the client one pushed
// packet, whether the original was lost (the replacement lands in its
// place, ahead of its turn) or not (a tail loss probe that beat the
// client's delayed ACK: the replacement is discarded, a D-SACK says so). A
// loaded host makes the latter happen on loopback with no loss at all.
// What holds whatever the timers did, and is checked:
//  - every frame is bit-exact one pushed packet (whole frames, one version);
//  - no packet comes twice;
//  - frames come in push order but for replacements: at most `refreshed`
//    of them are out of order (frames - longest increasing run of ESIs);
//  - nothing else is missing: read + left in the pool + refreshed = pushed.
// With no retransmission that is exactly every packet handed out, in order.
struct StreamTally {
  const std::vector<std::vector<uint8_t>>* sent;
  std::vector<uint8_t> seen;
  std::vector<uint32_t> esis;
  uint32_t frames = 0, exact = 0, twice = 0;
  explicit StreamTally(const std::vector<std::vector<uint8_t>>* pushed)
      : sent(pushed), seen(pushed->size(), 0) {}
  void Add(const std::vector<uint8_t>& frame) {
    ++frames;
    if (frame.size() < 20) return;
    const uint32_t esi = (frame[17] << 16) | (frame[18] << 8) | frame[19];
    if (esi >= sent->size()) return;
    if (frame == (*sent)[esi]) ++exact;
    if (seen[esi]++) ++twice;
    esis.push_back(esi);
  }
  // Frames not in push order: frames less the longest strictly increasing
  // subsequence of their ESIs (patience sorting).
  uint32_t OutOfOrder() const {
    std::vector<uint32_t> tails;
    for (uint32_t e : esis) {
      auto it = std::lower_bound(tails.begin(), tails.end(), e);
      if (it == tails.end()) tails.push_back(e);
      else *it = e;
    }
    return frames - static_cast<uint32_t>(tails.size());
  }
};

// The checks above, against the server's view once it handed out all it will.
void check_stream(const char* what, const StreamTally& t, const tcp::ConnectionSnapshot& end) {
  const uint32_t pushed = static_cast<uint32_t>(t.sent->size());
  CHECK_MSG(t.exact == t.frames, "%s: %u of %u frames bit-exact", what, t.exact, t.frames);
  CHECK_MSG(t.twice == 0, "%s: %u packets twice", what, t.twice);
  CHECK_MSG(t.OutOfOrder() <= end.pool.refreshed, "%s: %u frames out of order, %llu replacements",
            what, t.OutOfOrder(), static_cast<unsigned long long>(end.pool.refreshed));
  CHECK_MSG(t.frames + end.pool.queued + end.pool.refreshed == pushed,
            "%s: %u read + %u left + %llu replaced != %u pushed", what, t.frames, end.pool.queued,
            static_cast<unsigned long long>(end.pool.refreshed), pushed);
  CHECK_EQ(end.pool.refreshed, end.stats.fresh_frames);
  CHECK_EQ(end.pool.evicted, 0u);
}

// Reads connection id's stream on fd until it has every data frame the
// server handed out: all `pushed` packets reached its pool, the pool is
// down to its reserve (no more new data), and as many frames were read as
// it gave out (sent_data: the replacements took positions already
// counted). *end: the server's view then. false if that did not happen
// within 30 s (a bound against hanging, not a threshold: a working server
// gets there in well under a second).
bool read_stream(int fd, tcp::Service& service, uint32_t id, uint32_t reserve, StreamTally* t,
                 tcp::ConnectionSnapshot* end) {
  const uint64_t pushed = t->sent->size();
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::vector<uint8_t> frame;
  while (std::chrono::steady_clock::now() < until) {
    tcp::ConnectionSnapshot s;
    if (service.Snapshot(id, &s) && s.pool.pushed == pushed && s.pool.queued <= reserve &&
        t->frames == s.pool.sent_data) {
      *end = s;
      return true;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10) > 0) {
      // Segments hold whole frames, and these are shorter than a segment:
      // a readable byte is a whole frame (read_frame waits for it otherwise).
      if (!read_frame(fd, &frame)) return false;
      t->Add(frame);
    }
  }
  return false;
}

void run_service_test() {
  // The engine: one channel, unpaced.
  std::shared_ptr<replicate::Engine> engine =
      std::make_shared<replicate::Engine>(replicate::EngineOptions{}, nullptr);
  CHECK_EQ(engine->start(), 0);
  replicate::ChannelConfig cc;
  cc.slot_size = 1500;
  cc.capacity = 4096;
  CHECK_EQ(engine->create_channel(kChannel, cc), 0);

  tcp::ServiceConfig config;
  config.listener.local = tcp::Endpoint4{kLoopback, kPort};
  // The pool holds the whole test stream: what is checked is delivery, in
  // order, not eviction (tcp_frame_pool_test counts that).
  config.listener.pool.pool_packets = 8192;
  Events events;
  tcp::Service service(config, engine, &events);
  events.service = &service;
  const int rc = service.Start();
  if (rc == EPERM || rc == EAFNOSUPPORT || rc == EACCES) {
    std::printf("# skipped: no raw sockets here (%s)\n", std::strerror(rc));
    engine->stop();
    return;
  }
  CHECK_EQ(rc, 0);
  if (rc != 0) return;
  // A second server on the same port is refused.
  {
    Events e2;
    tcp::Service other(config, nullptr, &e2);
    CHECK_EQ(other.Start(), EADDRINUSE);
  }

  size_t cursor = 0;
  int fd = connect_client();
  CHECK(fd >= 0);
  if (fd < 0) return;
  tcp::ServiceEvent open = events.wait(tcp::ServiceEvent::kOpen, 0, &cursor);
  const uint32_t id = open.id;
  CHECK(id != 0);
  CHECK_EQ(open.remote.addr, kLoopback);
  sockaddr_in me{};
  socklen_t me_len = sizeof me;
  getsockname(fd, reinterpret_cast<sockaddr*>(&me), &me_len);
  CHECK_EQ(open.remote.port, ntohs(me.sin_port));

  // A control packet first: framed natively, the first frame the client sees.
  const uint8_t control[] = {0x52, 0x51, 1, 9, 0, 12, 0, 0, 'p', 'i', 'n', 'g'};
  CHECK(service.SendControl(id, control, sizeof control));
  CHECK(!service.SendControl(id + 1000, control, sizeof control));  // no such connection
  std::vector<uint8_t> frame;
  CHECK(read_frame(fd, &frame));
  CHECK(frame == std::vector<uint8_t>(control, control + sizeof control));

  // The channel's stream: the connection joins, the engine gets packets of
  // several lengths and blocks; the client reads them all, in order
  // (StreamTally: what a retransmission replaced aside).
  CHECK_EQ(service.AddMember(kChannel, id), 0);
  CHECK_EQ(service.AddMember(kChannel, id), 0);  // present: no-op
  CHECK_EQ(service.AddMember(kChannel + 1, id), ENOENT);
  CHECK_EQ(engine->barrier(), 0);
  constexpr uint32_t kPackets = 3000;
  const uint32_t reserve = config.listener.pool.reserve;
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < kPackets + reserve; ++i) {
    sent.push_back(alc(static_cast<uint8_t>(i / 100), i, 200 + (i % 7) * 180));
    uint32_t accepted = 0;
    while (accepted == 0) {
      CHECK_EQ(engine->push_packets(kChannel, sent.back().data(),
                                    static_cast<uint32_t>(sent.back().size()), 1, &accepted),
               0);
      if (accepted == 0) usleep(1000);
    }
  }
  // Every packet but the reserve, in order, unless a retransmission
  // refreshed some (see StreamTally).
  StreamTally tally(&sent);
  tcp::ConnectionSnapshot end;
  CHECK(read_stream(fd, service, id, reserve, &tally, &end));
  check_stream("loopback", tally, end);
  std::printf("# loopback: %u frames read, %llu retransmitted segments, %llu replacements, "
              "%u out of order\n",
              tally.frames, static_cast<unsigned long long>(end.stats.retransmitted_segments),
              static_cast<unsigned long long>(end.pool.refreshed), tally.OutOfOrder());

  // What the client writes comes back as data events, in order.
  const std::string hello = "frames from the client, unparsed";
  CHECK_EQ(write(fd, hello.data(), hello.size()), static_cast<ssize_t>(hello.size()));
  std::string big(200000, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  size_t off = 0;
  while (off < big.size()) {
    ssize_t w = write(fd, big.data() + off, big.size() - off);
    if (w <= 0) break;
    off += static_cast<size_t>(w);
  }
  CHECK_EQ(off, big.size());
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (events.data_of(id).size() < hello.size() + big.size() &&
         std::chrono::steady_clock::now() < until)
    usleep(2000);
  CHECK(events.data_of(id) == hello + big);

  tcp::ConnectionSnapshot snap;
  CHECK(service.Snapshot(id, &snap));
  CHECK_EQ(snap.state, tcp::State::kEstablished);
  CHECK(snap.stats.segments_sent > 0);
  CHECK(snap.stats.bytes_sent > 0);

  // The client closes: we close too, normally.
  CHECK_EQ(service.RemoveMember(kChannel, id), 0);
  close(fd);
  tcp::ServiceEvent closed = events.wait(tcp::ServiceEvent::kClose, id, &cursor);
  CHECK_EQ(closed.id, id);
  CHECK_EQ(closed.reason, tcp::CloseReason::kNormal);
  CHECK(!service.SendControl(id, control, sizeof control));  // gone

  // A second client, aborted by us: its read sees the RST.
  int fd2 = connect_client();
  CHECK(fd2 >= 0);
  tcp::ServiceEvent open2 = events.wait(tcp::ServiceEvent::kOpen, 0, &cursor);
  CHECK(open2.id != 0 && open2.id != id);
  CHECK_EQ(service.AddMember(kChannel, open2.id), 0);
  service.Abort(open2.id);
  tcp::ServiceEvent closed2 = events.wait(tcp::ServiceEvent::kClose, open2.id, &cursor);
  CHECK_EQ(closed2.reason, tcp::CloseReason::kAborted);
  uint8_t b[4096];
  ssize_t r;
  do {
    r = read(fd2, b, sizeof b);
  } while (r > 0);
  CHECK_EQ(r, -1);
  CHECK_EQ(errno, ECONNRESET);
  close(fd2);

  tcp::ServiceStats s = service.stats();
  CHECK_EQ(s.accepted, 2u);
  CHECK_EQ(s.connections, 0u);
  CHECK_EQ(s.bad_segments, 0u);
  CHECK_EQ(s.send_errors, 0u);
  CHECK(s.segments_in > 0);
  CHECK(s.segments_out > 0);
  std::printf("# %llu segments in, %llu out, %llu resets sent\n",
              static_cast<unsigned long long>(s.segments_in),
              static_cast<unsigned long long>(s.segments_out),
              static_cast<unsigned long long>(s.resets_sent));

  // Stop with a client still connected: it gets a RST.
  int fd3 = connect_client();
  CHECK(fd3 >= 0);
  events.wait(tcp::ServiceEvent::kOpen, 0, &cursor);
  service.Stop();
  service.Stop();  // idempotent
  r = read(fd3, b, sizeof b);
  CHECK_EQ(r, -1);
  CHECK_EQ(errno, ECONNRESET);
  close(fd3);
  engine->stop();
  std::printf("# %d checks in the namespace, %d failed\n", g_checks.load(), g_failures.load());
}

// With 5% of the server's segments dropped on their way to the client (an
// nftables rule on the input hook, `numgen random`), the client still reads
// whole frames: each one is a packet of the stream, bit-exact, and none
// comes twice; lost data frames were replaced by fresh ones. 3% of the
// client's segments are lost too, while it sends 100 kB: they all arrive.
void run_loss_test() {
  std::shared_ptr<replicate::Engine> engine =
      std::make_shared<replicate::Engine>(replicate::EngineOptions{}, nullptr);
  CHECK_EQ(engine->start(), 0);
  replicate::ChannelConfig cc;
  cc.capacity = 8192;
  CHECK_EQ(engine->create_channel(kChannel, cc), 0);
  tcp::ServiceConfig config;
  config.listener.local = tcp::Endpoint4{kLoopback, kPort};
  config.listener.pool.pool_packets = 8192;
  Events events;
  tcp::Service service(config, engine, &events);
  events.service = &service;
  if (service.Start() != 0) {
    std::printf("# skipped: the service does not start here\n");
    return;
  }
  size_t cursor = 0;
  int fd = connect_client();
  CHECK(fd >= 0);
  if (fd < 0) return;
  const uint32_t id = events.wait(tcp::ServiceEvent::kOpen, 0, &cursor).id;
  CHECK(id != 0);
  CHECK_EQ(service.AddMember(kChannel, id), 0);
  CHECK_EQ(engine->barrier(), 0);
  constexpr uint32_t kPackets = 4000;
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < kPackets; ++i) {
    sent.push_back(alc(static_cast<uint8_t>(i / 50), i, 200 + (i % 3) * 400));
    uint32_t accepted = 0;
    while (accepted == 0) {
      engine->push_packets(kChannel, sent.back().data(), static_cast<uint32_t>(sent.back().size()),
                           1, &accepted);
      if (accepted == 0) usleep(1000);
    }
  }
  // Meanwhile the client sends its own bytes, through the same loss.
  std::string up(100000, 0);
  for (size_t i = 0; i < up.size(); ++i) up[i] = static_cast<char>(i * 13 + i / 777);
  std::thread writer([&] {
    size_t off = 0;
    while (off < up.size()) {
      ssize_t w = write(fd, up.data() + off, up.size() - off);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
  });
  // The server closes once everything it may send is acknowledged (only
  // the reserve is left in the pool); the client reads until that FIN.
  std::atomic<bool> drained{false};
  tcp::ConnectionSnapshot snap;  // as it was drained
  std::thread closer([&] {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    tcp::ConnectionSnapshot s;
    while (std::chrono::steady_clock::now() < until) {
      if (service.Snapshot(id, &s) && s.pool.queued <= config.listener.pool.reserve &&
          s.stats.flight == 0) {
        snap = s;
        drained = true;
        break;
      }
      usleep(10000);
    }
    service.Close(id);
  });
  timeval tv{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::vector<uint8_t> seen(kPackets, 0), frame;
  uint32_t frames = 0, exact = 0, twice = 0;
  while (read_frame(fd, &frame)) {
    ++frames;
    if (frame.size() < 20) continue;
    const uint32_t esi = (frame[17] << 16) | (frame[18] << 8) | frame[19];
    if (esi < kPackets && frame == sent[esi]) ++exact;
    if (esi < kPackets && seen[esi]++) ++twice;
  }
  closer.join();
  CHECK(drained.load());
  std::printf("# loss: %u frames read, %llu retransmitted segments (%llu on timeouts), "
              "%llu fresh frames, %llu stale\n",
              frames, static_cast<unsigned long long>(snap.stats.retransmitted_segments),
              static_cast<unsigned long long>(snap.stats.rto_timeouts),
              static_cast<unsigned long long>(snap.stats.fresh_frames),
              static_cast<unsigned long long>(snap.stats.stale_frames));
  CHECK_EQ(exact, frames);
  CHECK_EQ(twice, 0u);
  // Each packet pushed went out once (as new data or as a replacement),
  // or is still in the pool; the originals of replaced frames never
  // arrived: frames = pushed - left - fresh.
  CHECK_EQ(frames + snap.pool.queued + snap.stats.fresh_frames, kPackets);
  CHECK(snap.stats.retransmitted_segments > 0);
  CHECK(snap.stats.fresh_frames > 0);
  writer.join();
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (events.data_of(id).size() < up.size() && std::chrono::steady_clock::now() < until)
    usleep(5000);
  CHECK(events.data_of(id) == up);
  close(fd);
  service.Stop();
  engine->stop();
}

// Many clients at once, each a member of the channel: every one reads the
// whole stream, in order (StreamTally), while the others do.
void run_many_clients_test() {
  constexpr int kClients = 32;
  constexpr uint32_t kCount = 400;
  std::shared_ptr<replicate::Engine> engine =
      std::make_shared<replicate::Engine>(replicate::EngineOptions{}, nullptr);
  CHECK_EQ(engine->start(), 0);
  replicate::ChannelConfig cc;
  cc.capacity = 4096;
  CHECK_EQ(engine->create_channel(kChannel, cc), 0);
  tcp::ServiceConfig config;
  config.listener.local = tcp::Endpoint4{kLoopback, kPort};
  config.listener.pool.pool_packets = 1024;
  Events events;
  tcp::Service service(config, engine, &events);
  events.service = &service;
  if (service.Start() != 0) {
    std::printf("# skipped: the service does not start here\n");
    return;
  }
  std::vector<int> fds;
  std::vector<uint32_t> ids;
  size_t cursor = 0;
  for (int i = 0; i < kClients; ++i) {
    int fd = connect_client();
    CHECK(fd >= 0);
    if (fd < 0) return;
    fds.push_back(fd);
    const uint32_t id = events.wait(tcp::ServiceEvent::kOpen, 0, &cursor).id;
    CHECK(id != 0);
    ids.push_back(id);
    CHECK_EQ(service.AddMember(kChannel, id), 0);
  }
  CHECK_EQ(service.stats().connections, static_cast<uint32_t>(kClients));
  CHECK_EQ(engine->barrier(), 0);
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < kCount + config.listener.pool.reserve; ++i) {
    sent.push_back(alc(static_cast<uint8_t>(i / 64), i, 300 + (i % 4) * 250));
    uint32_t accepted = 0;
    while (accepted == 0) {
      engine->push_packets(kChannel, sent.back().data(), static_cast<uint32_t>(sent.back().size()),
                           1, &accepted);
      if (accepted == 0) usleep(1000);
    }
  }
  // Each reads its whole stream (every packet but the reserve, in order,
  // unless a retransmission refreshed some: StreamTally).
  std::vector<std::thread> readers;
  std::atomic<int> complete{0};
  std::atomic<uint64_t> refreshed{0};
  for (int i = 0; i < kClients; ++i) {
    readers.emplace_back([&, i] {
      StreamTally tally(&sent);
      tcp::ConnectionSnapshot end;
      const bool whole = read_stream(fds[i], service, ids[i], config.listener.pool.reserve,
                                     &tally, &end);
      CHECK_MSG(whole, "client %d read %u frames", i, tally.frames);
      if (!whole) return;
      check_stream("client", tally, end);
      refreshed += end.pool.refreshed;
      ++complete;
    });
  }
  for (auto& t : readers) t.join();
  CHECK_EQ(complete.load(), kClients);
  std::printf("# %d clients: %llu replacements\n", kClients,
              static_cast<unsigned long long>(refreshed.load()));
  for (int fd : fds) close(fd);
  // Each client's close ends its connection.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (service.stats().connections > 0 && std::chrono::steady_clock::now() < until) usleep(5000);
  CHECK_EQ(service.stats().connections, 0u);
  CHECK_EQ(service.stats().pool_evicted, 0u);
  service.Stop();
  engine->stop();
}

// Over a veth pair (MTU 1500, a second namespace holding the client): the
// packets of a real link, CHECKSUM_PARTIAL from the peer's stack, segments
// that fill the MTU with the timestamp option. Run twice: with GSO trains
// (the packet socket; frames of five lengths in turn, so a train is at most
// a segment and a shorter one after it, and every cut must fall right for
// the frames to arrive bit-exact and in order, StreamTally's checks) and
// with the routed socket alone (max_train_segments 0). The client runs in
// a grandchild that made its own namespace; the veth end moves into it.
constexpr uint32_t kVethServer = 0x0a4d0001;  // 10.77.0.1
constexpr uint32_t kVethPackets = 2000;
constexpr uint32_t kVethReserve = 16;  // FramePoolConfig's default reserve

std::vector<uint8_t> veth_packet(uint32_t i) {
  return alc(static_cast<uint8_t>(i / 100), i, 1000 + (i % 5) * 110);
}

// What the veth client read, sent to the test through a pipe: the server's
// side of StreamTally's checks is in this process.
struct VethTally {
  uint32_t frames, exact, twice, out_of_order, clean_end;
};

// The grandchild: its own namespace, c0, a kernel client. Reads frames
// until the server's FIN (it closes once everything it will send is
// acknowledged), writes its tally to tally_fd, then its bytes to the
// server, then closes. Exit 0 if that all went as planned.
int veth_client(int ready_fd, int go_fd, int tally_fd) {
  if (unshare(CLONE_NEWNET) != 0) return 10;
  char c = 'r';
  if (write(ready_fd, &c, 1) != 1 || read(go_fd, &c, 1) != 1) return 11;
  if (!sh("ip link set lo up") || !sh("ip link set c0 up") ||
      !sh("ip addr add 10.77.0.2/24 dev c0"))
    return 12;
  int fd = -1;
  // The link takes a moment to come up (IPv4 DAD does not apply; carrier does).
  for (int tries = 0; tries < 50 && fd < 0; ++tries) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(kPort);
    sin.sin_addr.s_addr = htonl(kVethServer);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
      close(fd);
      fd = -1;
      usleep(100000);
    }
  }
  if (fd < 0) return 13;
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < kVethPackets + kVethReserve; ++i) sent.push_back(veth_packet(i));
  StreamTally tally(&sent);
  std::vector<uint8_t> frame;
  VethTally out{};
  while (true) {
    // A frame, or the FIN where a frame would start.
    uint8_t len[2];
    const ssize_t r = read(fd, len, 1);
    if (r == 0) {
      out.clean_end = 1;
      break;
    }
    if (r < 0 || !read_exact(fd, len + 1, 1)) break;
    frame.resize((len[0] << 8) | len[1]);
    if (!read_exact(fd, frame.data(), frame.size())) break;
    tally.Add(frame);
  }
  out.frames = tally.frames;
  out.exact = tally.exact;
  out.twice = tally.twice;
  out.out_of_order = tally.OutOfOrder();
  if (write(tally_fd, &out, sizeof out) != static_cast<ssize_t>(sizeof out)) return 14;
  const char hello[] = "over veth";
  if (write(fd, hello, sizeof hello - 1) != static_cast<ssize_t>(sizeof hello - 1)) return 16;
  close(fd);
  return out.clean_end ? 0 : 17;
}

void run_veth_test(bool gso) {
  // The client's process first, while this one has no thread of its own
  // (a fork of a threaded process may only call async-signal-safe code).
  int ready[2], go[2], tally_pipe[2];
  CHECK(pipe(ready) == 0 && pipe(go) == 0 && pipe(tally_pipe) == 0);
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) _exit(veth_client(ready[1], go[0], tally_pipe[1]));
  char c;
  CHECK_EQ(read(ready[0], &c, 1), 1);
  CHECK(sh("ip link set c0 netns " + std::to_string(pid)));

  std::shared_ptr<replicate::Engine> engine =
      std::make_shared<replicate::Engine>(replicate::EngineOptions{}, nullptr);
  CHECK_EQ(engine->start(), 0);
  replicate::ChannelConfig cc;
  cc.capacity = 4096;
  CHECK_EQ(engine->create_channel(kChannel, cc), 0);
  tcp::ServiceConfig config;
  config.listener.local = tcp::Endpoint4{kVethServer, kPort};
  config.listener.pool.pool_packets = 8192;
  if (!gso) config.max_train_segments = 0;
  CHECK_EQ(config.listener.pool.reserve, kVethReserve);
  Events events;
  tcp::Service service(config, engine, &events);
  events.service = &service;
  const int rc = service.Start();
  if (rc != 0) {
    std::printf("# skipped: the service does not start here (%s)\n", std::strerror(rc));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    engine->stop();
    return;
  }
  CHECK_EQ(write(go[1], &c, 1), 1);
  size_t cursor = 0;
  const uint32_t id = events.wait(tcp::ServiceEvent::kOpen, 0, &cursor).id;
  CHECK(id != 0);
  CHECK_EQ(service.AddMember(kChannel, id), 0);
  CHECK_EQ(engine->barrier(), 0);
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < kVethPackets + kVethReserve; ++i) {
    sent.push_back(veth_packet(i));
    uint32_t accepted = 0;
    while (accepted == 0) {
      engine->push_packets(kChannel, sent.back().data(), static_cast<uint32_t>(sent.back().size()),
                           1, &accepted);
      if (accepted == 0) usleep(1000);
    }
  }
  // Once all it will send is acknowledged, we close; the client reads to
  // our FIN, then sends its bytes.
  tcp::ConnectionSnapshot end;
  bool drained = false;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!drained && std::chrono::steady_clock::now() < until) {
    drained = service.Snapshot(id, &end) && end.pool.pushed == sent.size() &&
              end.pool.queued <= kVethReserve && end.stats.flight == 0;
    if (!drained) usleep(5000);
  }
  CHECK(drained);
  service.Close(id);
  until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (events.data_of(id) != "over veth" && std::chrono::steady_clock::now() < until)
    usleep(5000);
  CHECK(events.data_of(id) == "over veth");
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "veth client exit %d",
            WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  // The client's frames against what the server handed out (StreamTally).
  VethTally vt{};
  CHECK_EQ(read(tally_pipe[0], &vt, sizeof vt), static_cast<ssize_t>(sizeof vt));
  CHECK_EQ(vt.clean_end, 1u);
  CHECK_EQ(vt.exact, vt.frames);
  CHECK_EQ(vt.twice, 0u);
  CHECK(vt.out_of_order <= end.pool.refreshed);
  CHECK_EQ(vt.frames + end.pool.queued + end.pool.refreshed, sent.size());
  CHECK_EQ(vt.frames, end.pool.sent_data);
  CHECK_EQ(end.pool.refreshed, end.stats.fresh_frames);
  tcp::ServiceEvent closed = events.wait(tcp::ServiceEvent::kClose, id, &cursor);
  CHECK_EQ(closed.reason, tcp::CloseReason::kNormal);
  tcp::ServiceStats s = service.stats();
  CHECK_EQ(s.bad_segments, 0u);
  CHECK_EQ(s.send_errors, 0u);
  CHECK_EQ(s.packet_path, gso);
  if (gso) {
    // The SYN came over Ethernet: everything left by the packet socket,
    // some of it as GSO packets of several segments.
    CHECK_EQ(s.packet_path_error, 0);
    CHECK(s.gso_packets > 0);
    CHECK_EQ(s.gso_segments, s.segments_out);
    CHECK(s.packets_out < s.segments_out);
  } else {
    CHECK_EQ(s.gso_packets, 0u);
    CHECK_EQ(s.gso_segments, 0u);
    CHECK_EQ(s.packets_out, s.segments_out);
  }
  std::printf("# veth (%s): %llu segments in, %llu out in %llu packets (%llu GSO), %llu retransmitted\n",
              gso ? "GSO" : "routed", static_cast<unsigned long long>(s.segments_in),
              static_cast<unsigned long long>(s.segments_out),
              static_cast<unsigned long long>(s.packets_out),
              static_cast<unsigned long long>(s.gso_packets),
              static_cast<unsigned long long>(s.retransmitted_segments));
  service.Stop();
  engine->stop();
}

// A consumer that does not keep up: the service reads at most
// max_pending_data bytes ahead of it, the peer's window closes (the kernel
// client's writes stall), and each DataConsumed lets more through, in
// order, until all of it arrived.
void run_backpressure_test() {
  tcp::ServiceConfig config;
  config.listener.local = tcp::Endpoint4{kLoopback, kPort};
  config.listener.connection.rcv_buffer = 16384;
  config.max_pending_data = 8192;
  config.max_data_event = 4096;
  Events events;  // no service: nothing is consumed until we say so
  tcp::Service service(config, nullptr, &events);
  if (service.Start() != 0) {
    std::printf("# skipped: the service does not start here\n");
    return;
  }
  size_t cursor = 0;
  int fd = connect_client();
  CHECK(fd >= 0);
  if (fd < 0) return;
  const uint32_t id = events.wait(tcp::ServiceEvent::kOpen, 0, &cursor).id;
  CHECK(id != 0);
  std::string big(300000, 0);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 1000);
  std::thread writer([&] {
    size_t off = 0;
    while (off < big.size()) {
      ssize_t w = write(fd, big.data() + off, big.size() - off);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
  });
  usleep(300000);
  const size_t first = events.data_of(id).size();
  CHECK(first > 0);
  CHECK(first <= config.max_pending_data);  // read no further ahead
  CHECK(service.stats().pending_data <= config.max_pending_data);
  // Consume as it comes: everything arrives, in order.
  size_t consumed = first;
  service.DataConsumed(first);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (consumed < big.size() && std::chrono::steady_clock::now() < until) {
    const size_t now_have = events.data_of(id).size();
    if (now_have > consumed) {
      service.DataConsumed(now_have - consumed);
      consumed = now_have;
    } else {
      usleep(1000);
    }
  }
  writer.join();
  CHECK(events.data_of(id) == big);
  close(fd);
  service.Stop();
}

}  // namespace

void run_veth_gso_test() { run_veth_test(true); }
void run_veth_routed_test() { run_veth_test(false); }

int main() {
  if (geteuid() != 0 || !sh("nft --version")) {
    std::printf("# skipped: needs root and `nft` (the host's stack must not answer the port)\n");
    std::printf("tcp_service_test: skipped\n");
    return 0;
  }
  const std::string rule = "nft add table inet t && nft add chain inet t in "
                           "'{ type filter hook input priority 0; }' && "
                           "nft add rule inet t in ip daddr 127.0.0.1 tcp dport " +
                           std::to_string(kPort) + " drop";
  in_new_netns(run_service_test, {"ip link set lo up", rule.c_str()});
  const std::string loss = "nft 'add rule inet t in ip saddr 127.0.0.1 tcp sport " +
                           std::to_string(kPort) + " numgen random mod 100 < 5 drop'";
  // The client's segments to us are lost at its output hook, before lo
  // (and AF_PACKET) see them.
  const std::string loss_up = "nft add chain inet t out '{ type filter hook output priority 0; }' "
                              "&& nft 'add rule inet t out tcp dport " +
                              std::to_string(kPort) + " numgen random mod 100 < 3 drop'";
  in_new_netns(run_loss_test, {"ip link set lo up", rule.c_str(), loss.c_str(), loss_up.c_str()});
  in_new_netns(run_backpressure_test, {"ip link set lo up", rule.c_str()});
  in_new_netns(run_many_clients_test, {"ip link set lo up", rule.c_str()});
  const std::string veth_rule = "nft add table inet t && nft add chain inet t in "
                                "'{ type filter hook input priority 0; }' && "
                                "nft add rule inet t in ip daddr 10.77.0.1 tcp dport " +
                                std::to_string(kPort) + " drop";
  for (void (*veth)() : {run_veth_gso_test, run_veth_routed_test}) {
    in_new_netns(veth, {"ip link set lo up", "ip link add name s0 type veth peer name c0",
                        "ip link set s0 up", "ip addr add 10.77.0.1/24 dev s0", veth_rule.c_str()});
  }
  if (g_failures) {
    std::fprintf(stderr, "tcp_service_test: %d of %d checks failed\n", g_failures.load(),
                 g_checks.load());
    return 1;
  }
  std::printf("tcp_service_test: %d checks passed\n", g_checks.load());
  return 0;
}

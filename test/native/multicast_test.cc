// Standalone tests of IP multicast in the data plane: the socket layer's
// interface names and group membership (native/udp), the multicast sink on
// its own, and a channel's group through the engine.
//
// Sending to a group needs an interface with MULTICAST on. Each test that
// sends runs in a forked child inside a new network namespace (it dies with
// the child: nothing to clean up) set up with `ip`: IPv4 on `lo` (multicast
// on, two extra source addresses), IPv6 over a veth pair (the kernel does
// not loop IPv6 multicast through `lo`). Without CAP_NET_ADMIN or `ip` the
// test prints why and is skipped. Waits are for datagrams (poll), bounded
// only so that a broken build fails instead of hanging.
#include <arpa/inet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "replicate/engine.h"
#include "replicate/multicast_sink.h"
#include "replicate/packet_ring.h"
#include "replicate/sink.h"
#include "udp/batch_receiver.h"
#include "udp/udp.h"

#include "check.h"
#include "net_fixtures.h"

using namespace rqcast;
using namespace rqcast::replicate;

static std::string text_of(const udp::Endpoint& e) {
  char buf[64];
  udp::format_address(e, buf, sizeof buf);
  return buf;
}

// ------------------------------------------------------------ a member

// A receiving socket bound to the wildcard address and a group port, as
// receivers of a group bind (SO_REUSEADDR, so that several share the port),
// taking only the groups it joined itself (IP_MULTICAST_ALL off).
struct Member {
  struct Datagram {
    std::vector<uint8_t> data;
    std::string from;
  };
  udp::Socket sock;
  std::vector<Datagram> got;

  Member(int family, uint16_t port) {
    udp::Endpoint any = ep(family == AF_INET6 ? "::" : "0.0.0.0", port);
    CHECK_EQ(sock.open_bound(any, 8 << 20, true), 0);
    CHECK_EQ(sock.set_multicast_all(false), 0);
  }
  // Takes what is queued, without waiting.
  void drain() {
    std::vector<std::vector<uint8_t>> bufs(64, std::vector<uint8_t>(65536));
    std::vector<iovec> iov(64);
    std::vector<mmsghdr> msgs(64);
    std::vector<sockaddr_storage> from(64);
    while (true) {
      for (int i = 0; i < 64; ++i) {
        iov[i] = {bufs[i].data(), bufs[i].size()};
        msgs[i] = {};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      }
      int err = 0;
      int n = sock.receive_batch(msgs.data(), 64, &err);
      if (n <= 0) return;
      for (int i = 0; i < n; ++i) {
        udp::Endpoint e;
        std::memcpy(&e.addr, &from[i], sizeof from[i]);
        e.len = msgs[i].msg_hdr.msg_namelen;
        got.push_back({std::vector<uint8_t>(bufs[i].begin(), bufs[i].begin() + msgs[i].msg_len),
                       text_of(e)});
      }
    }
  }
  // Waits (poll, at most 20 s in all) until `n` datagrams have arrived.
  bool wait_for(size_t n) {
    for (int i = 0; i < 200 && got.size() < n; ++i) {
      pollfd p{sock.fd(), POLLIN, 0};
      ::poll(&p, 1, 100);
      drain();
    }
    return got.size() >= n;
  }
  // The datagrams carry packets [first, first + count) of make_packets,
  // from `source` ("" = any).
  void check_packets(size_t at, uint32_t first, uint32_t count, uint32_t size,
                     const char* source = "") {
    CHECK(got.size() >= at + count);
    std::vector<uint8_t> want = make_packets(first, count, size);
    for (uint32_t i = 0; i < count && at + i < got.size(); ++i) {
      const Datagram& d = got[at + i];
      CHECK_EQ(d.data.size(), size);
      CHECK(std::memcmp(d.data.data(), want.data() + static_cast<size_t>(i) * size, size) == 0);
      if (*source) CHECK(d.from == source);
    }
  }
};

// A run of `count` packets of `size` bytes in a ring of its own.
struct TestRun {
  PacketRing ring;
  Run run;
  TestRun(uint32_t first, uint32_t count, uint32_t size) : ring(1024, size) {
    std::vector<uint8_t> pk = make_packets(first, count, size);
    CHECK_EQ(ring.push(pk.data(), size, count), count);
    run.ring = &ring;
    run.first = ring.head();
    run.count = count;
  }
};

// ------------------------------------------------------- the namespace

// Runs fn in a child process inside a fresh network namespace set up for
// multicast (see net_fixtures.h's in_new_netns: skipped without
// CAP_NET_ADMIN or `ip`).
static bool in_multicast_netns(void (*fn)()) {
  // IPv4: lo with MULTICAST on, and two more addresses to send from.
  // IPv6: a veth pair, va (the sender's side: fd00::1 and fd00::2) and
  // vb (the receivers'), without duplicate address detection so that
  // the addresses are usable at once; va has 10.8.0.1 too.
  return in_new_netns(fn, {
      "ip link set lo up multicast on",
      "ip addr add 10.9.0.1/32 dev lo",
      "ip addr add 10.9.0.2/32 dev lo",
      "ip link add va type veth peer name vb",
      "sysctl -qw net.ipv6.conf.va.accept_dad=0 net.ipv6.conf.vb.accept_dad=0",
      "ip link set va up",
      "ip link set vb up",
      "ip -6 addr add fd00::1/64 dev va nodad",
      "ip -6 addr add fd00::2/64 dev va nodad",
      "ip addr add 10.8.0.1/24 dev va",
  });
}

static unsigned lo() { return if_nametoindex("lo"); }

static MulticastConfig v4_group(const char* group, uint16_t port) {
  MulticastConfig c;
  c.group = ep(group, port);
  c.interface.index = lo();
  return c;
}

// ------------------------------------------------------ interface names

static void test_resolve_interface() {
  udp::Interface i;
  CHECK_EQ(udp::resolve_interface(nullptr, AF_INET, &i), 0);
  CHECK_EQ(i.index, 0u);
  CHECK_EQ(udp::resolve_interface("", AF_INET6, &i), 0);
  CHECK_EQ(i.index, 0u);
  const unsigned lo_index = lo();
  CHECK(lo_index != 0);
  CHECK_EQ(udp::resolve_interface("lo", AF_INET, &i), 0);
  CHECK_EQ(i.index, lo_index);
  CHECK_EQ(i.address.s_addr, 0u);
  CHECK_EQ(udp::resolve_interface("lo", AF_INET6, &i), 0);
  CHECK_EQ(i.index, lo_index);
  std::string idx = std::to_string(lo_index);
  CHECK_EQ(udp::resolve_interface(idx.c_str(), AF_INET6, &i), 0);
  CHECK_EQ(i.index, lo_index);
  // By address (IPv4 only): the interface holding it, and the address.
  CHECK_EQ(udp::resolve_interface("127.0.0.1", AF_INET, &i), 0);
  CHECK_EQ(i.index, lo_index);
  CHECK_EQ(i.address.s_addr, htonl(INADDR_LOOPBACK));
  // Nothing holds it / names nothing.
  CHECK_EQ(udp::resolve_interface("192.0.2.55", AF_INET, &i), ENODEV);
  CHECK_EQ(i.index, 0u);
  CHECK_EQ(udp::resolve_interface("rqnosuch0", AF_INET, &i), ENODEV);
  CHECK_EQ(udp::resolve_interface("2147483647", AF_INET, &i), ENODEV);
  CHECK_EQ(udp::resolve_interface("99999999999999999999", AF_INET, &i), ENODEV);
  CHECK_EQ(udp::resolve_interface("0", AF_INET, &i), ENODEV);
  CHECK_EQ(udp::resolve_interface("an-interface-name-too-long", AF_INET, &i), ENODEV);
  // An address where only an index will do, or of the other family.
  CHECK_EQ(udp::resolve_interface("127.0.0.1", AF_INET6, &i), EINVAL);
  CHECK_EQ(udp::resolve_interface("::1", AF_INET6, &i), EINVAL);
  CHECK_EQ(udp::resolve_interface("::1", AF_INET, &i), EINVAL);
  CHECK_EQ(udp::resolve_interface("lo", AF_UNIX, &i), EINVAL);
}

static void test_is_multicast() {
  CHECK(udp::is_multicast(ep("224.0.0.1", 1)));
  CHECK(udp::is_multicast(ep("239.255.255.255", 1)));
  CHECK(udp::is_multicast(ep("232.1.2.3", 1)));
  CHECK(!udp::is_multicast(ep("223.255.255.255", 1)));
  CHECK(!udp::is_multicast(ep("240.0.0.1", 1)));
  CHECK(!udp::is_multicast(ep("127.0.0.1", 1)));
  CHECK(udp::is_multicast(ep("ff15::1", 1)));
  CHECK(udp::is_multicast(ep("ff3e::8000:1", 1)));
  CHECK(!udp::is_multicast(ep("fe80::1", 1)));
  CHECK(!udp::is_multicast(ep("::1", 1)));
  // ::ffff:224.0.0.1 is the IPv4 group, as the data plane names it.
  CHECK(udp::is_multicast(ep("::ffff:224.0.0.1", 1)));
  CHECK(!udp::is_multicast(udp::Endpoint{}));
  CHECK(udp::is_unspecified(ep("0.0.0.0", 1)));
  CHECK(udp::is_unspecified(ep("::", 1)));
  CHECK(!udp::is_unspecified(ep("::1", 1)));
}

// ------------------------------------------------------- group config

static void test_multicast_config_checks() {
  MulticastStage st = MulticastStage::kSocket;
  MulticastConfig ok;
  ok.group = ep("239.1.2.3", 5000);
  CHECK_EQ(check_multicast_config(ok, &st), 0);
  CHECK(st == MulticastStage::kNone);
  auto stage_of = [](MulticastConfig c) {
    MulticastStage s = MulticastStage::kNone;
    CHECK_EQ(check_multicast_config(c, &s), EINVAL);
    return s;
  };
  MulticastConfig c = ok;
  c.group = ep("10.0.0.1", 5000);  // unicast
  CHECK(stage_of(c) == MulticastStage::kGroup);
  c.group = ep("fe80::1", 5000);
  CHECK(stage_of(c) == MulticastStage::kGroup);
  c.group = ep("239.1.2.3", 0);  // port 0
  CHECK(stage_of(c) == MulticastStage::kGroup);
  c.group = udp::Endpoint{};  // no family
  CHECK(stage_of(c) == MulticastStage::kGroup);
  c = ok;
  for (int hops : {-1, 256, 1 << 30}) {
    c.hops = hops;
    CHECK(stage_of(c) == MulticastStage::kHops);
  }
  for (int hops : {0, 255}) {
    c.hops = hops;
    CHECK_EQ(check_multicast_config(c, &st), 0);
  }
  c = ok;
  c.group = ep("ff15::1", 5000);
  c.interface.address.s_addr = htonl(INADDR_LOOPBACK);  // IPv6: by index only
  CHECK(stage_of(c) == MulticastStage::kInterface);
  c = ok;
  c.source = ep("239.9.9.9", 0);  // a group is no source
  CHECK(stage_of(c) == MulticastStage::kSource);
  c.source = ep("::1", 0);  // other family
  CHECK(stage_of(c) == MulticastStage::kSource);
  c.source = ep("0.0.0.0", 0);
  CHECK(stage_of(c) == MulticastStage::kSource);
  c.source = ep("127.0.0.1", 0);
  CHECK_EQ(check_multicast_config(c, &st), 0);
  CHECK_EQ(check_multicast_config(c, nullptr), 0);
}

static void test_multicast_sink_open_names_the_failing_step() {
  DatagramOptions o;
  MulticastStage st = MulticastStage::kNone;
  {
    MulticastConfig c;
    c.group = ep("127.0.0.1", 5000);
    MulticastSink s(c, o);
    CHECK_EQ(s.open(&st), EINVAL);
    CHECK(st == MulticastStage::kGroup);
    CHECK(!s.is_open());
    CHECK_EQ(s.destination_count(), 0u);  // holds nothing before open()
  }
  {
    MulticastConfig c;
    c.group = ep("239.1.2.3", 5000);
    c.interface.index = 0x7FFFFFF0u;  // no such interface
    MulticastSink s(c, o);
    CHECK(s.open(&st) != 0);
    CHECK(st == MulticastStage::kInterface);
    CHECK(!s.is_open());
  }
  {
    MulticastConfig c;
    c.group = ep("ff15::1", 5000);
    c.interface.index = 0x7FFFFFF0u;
    MulticastSink s(c, o);
    int rc = s.open(&st);
    // A host without IPv6 fails at the socket instead.
    CHECK(rc != 0);
    CHECK(st == MulticastStage::kInterface || (st == MulticastStage::kSocket && rc == EAFNOSUPPORT));
  }
  {
    MulticastConfig c;
    c.group = ep("239.1.2.3", 5000);
    c.source = ep("192.0.2.77", 0);  // not this host's
    MulticastSink s(c, o);
    CHECK_EQ(s.open(&st), EADDRNOTAVAIL);
    CHECK(st == MulticastStage::kSource);
    CHECK(!s.is_open());
  }
  {
    MulticastConfig c;
    c.group = ep("239.1.2.3", 5000);
    c.source = ep("127.0.0.1", 4321);  // the port is not kept: any will do
    c.hops = 0;
    c.loop = false;
    MulticastSink s(c, o);
    CHECK_EQ(s.open(&st), 0);
    CHECK(st == MulticastStage::kNone);
    CHECK(s.is_open());
    CHECK_EQ(s.destination_count(), 1u);
    udp::Endpoint local;
    CHECK_EQ(s.local_endpoint(&local), 0);
    CHECK(text_of(local) == "127.0.0.1");
    CHECK(local.port() != 0);
  }
}

// ------------------------------------------------------- membership

static void test_membership_arguments() {
  // What the socket layer refuses before the kernel sees it, and what is
  // a no-op; on any interface the host has.
  udp::Socket s;
  CHECK_EQ(s.open_bound(ep("0.0.0.0", 0), 0), 0);
  udp::Endpoint group = ep("239.7.7.7", 0), src = ep("127.0.0.1", 0);
  CHECK_EQ(s.join_group(ep("127.0.0.1", 0), lo()), EINVAL);
  CHECK_EQ(s.join_group(ep("ff15::1", 0), lo()), EAFNOSUPPORT);
  udp::Endpoint mc_source = ep("239.1.1.1", 0), v6_source = ep("::1", 0), any = ep("0.0.0.0", 0);
  CHECK_EQ(s.join_group(group, lo(), &mc_source), EINVAL);
  CHECK_EQ(s.join_group(group, lo(), &v6_source), EAFNOSUPPORT);
  CHECK_EQ(s.join_group(group, lo(), &any), EINVAL);
  // Leaving what was never joined is a no-op.
  CHECK_EQ(s.leave_group(group, lo()), 0);
  CHECK_EQ(s.leave_group(group, lo(), &src), 0);
  CHECK_EQ(s.leave_group(group, 0x7FFFFFF0u), 0);
}

static void membership_is_idempotent_and_exclusive() {
  udp::Socket s;
  CHECK_EQ(s.open_bound(ep("0.0.0.0", 0), 0), 0);
  udp::Endpoint group = ep("239.7.7.7", 0), src = ep("10.9.0.1", 0), src2 = ep("10.9.0.2", 0);
  CHECK_EQ(s.join_group(group, lo()), 0);
  CHECK_EQ(s.join_group(group, lo()), 0);  // already a member
  CHECK_EQ(s.membership_count(), 1u);
  // Any-source and source-specific membership of one group on one
  // interface do not mix (RFC 3678 §5.2: one filter mode per group).
  CHECK_EQ(s.join_group(group, lo(), &src), EINVAL);
  CHECK_EQ(s.leave_group(group, lo(), &src), 0);  // never joined: a no-op
  CHECK_EQ(s.membership_count(), 1u);
  CHECK_EQ(s.leave_group(group, lo()), 0);
  CHECK_EQ(s.leave_group(group, lo()), 0);
  CHECK_EQ(s.membership_count(), 0u);
  CHECK_EQ(s.join_group(group, lo(), &src), 0);
  CHECK_EQ(s.join_group(group, lo(), &src), 0);
  CHECK_EQ(s.join_group(group, lo(), &src2), 0);  // a second source
  CHECK_EQ(s.membership_count(), 2u);
  CHECK_EQ(s.join_group(group, lo()), EINVAL);
  CHECK_EQ(s.leave_group(group, lo(), &src), 0);
  CHECK_EQ(s.leave_group(group, lo(), &src), 0);
  CHECK_EQ(s.leave_group(group, lo(), &src2), 0);
  CHECK_EQ(s.membership_count(), 0u);
  // Every source gone: the group may be joined for any source again.
  CHECK_EQ(s.join_group(group, lo()), 0);
  // Another group, another interface: independent.
  CHECK_EQ(s.join_group(ep("239.7.7.8", 0), lo(), &src), 0);
  CHECK_EQ(s.membership_count(), 2u);
  // An interface that does not exist.
  CHECK(s.join_group(ep("239.7.7.9", 0), 0x7FFFFFF0u) != 0);
  CHECK_EQ(s.membership_count(), 2u);
  s.close();
  CHECK_EQ(s.membership_count(), 0u);
  CHECK_EQ(s.join_group(group, lo()), EBADF);
}

static void test_membership_is_idempotent_and_exclusive() {
  in_multicast_netns(membership_is_idempotent_and_exclusive);
}

// ------------------------------------------------- the sink on the wire

// One run to the group, GSO on or off: each member that joined gets every
// packet once, byte-exact, in order; the channel counts one datagram per
// packet however many members listen.
static void sink_reaches_every_member(bool gso) {
  DatagramOptions o;
  o.gso = gso;
  MulticastConfig c = v4_group("239.1.2.3", 5001);
  MulticastSink sink(c, o);
  CHECK_EQ(sink.open(), 0);
  if (!gso) CHECK(!sink.gso_active());
  CHECK_EQ(sink.packets_per_message(), sink.gso_active() ? udp::kMaxGsoSegments : 1u);
  Member a(AF_INET, 5001), b(AF_INET, 5001), outsider(AF_INET, 5001);
  CHECK_EQ(a.sock.join_group(c.group, lo()), 0);
  CHECK_EQ(b.sock.join_group(c.group, lo()), 0);
  // 300 packets: several GSO groups of 64 and a shorter tail.
  TestRun t(0, 300, 1200);
  ChannelCounters k;
  CHECK_EQ(sink.send(t.run, k), 300u);
  CHECK(a.wait_for(300));
  CHECK(b.wait_for(300));
  a.check_packets(0, 0, 300, 1200);
  b.check_packets(0, 0, 300, 1200);
  a.drain();
  b.drain();
  CHECK_EQ(a.got.size(), 300u);  // once each: no second copy by another path
  CHECK_EQ(b.got.size(), 300u);
  CHECK_EQ(k.datagrams.get(), 300u);
  CHECK_EQ(k.bytes.get(), 300u * 1200);
  CHECK_EQ(k.errors.get() + k.drops_eagain.get() + k.drops_enobufs.get(), 0u);
  if (sink.gso_active()) {
    CHECK(k.gso_sends.get() > 0);
    CHECK(k.syscalls.get() < 10);
  } else {
    CHECK_EQ(k.gso_sends.get(), 0u);
  }
  if (gso) {
    std::printf("# multicast GSO on lo: %s (fallbacks %llu)\n",
                sink.gso_active() ? "taken" : "refused",
                static_cast<unsigned long long>(sink.gso_fallbacks()));
  }
  // A socket on the port that joined nothing gets nothing.
  outsider.drain();
  CHECK_EQ(outsider.got.size(), 0u);
  // An empty run is taken as is.
  Run none = t.run;
  none.count = 0;
  CHECK_EQ(sink.send(none, k), 0u);
  CHECK_EQ(k.datagrams.get(), 300u);
}

static void test_multicast_sink_reaches_every_member_gso() {
  in_multicast_netns([] { sink_reaches_every_member(true); });
}
static void test_multicast_sink_reaches_every_member_plain() {
  in_multicast_netns([] { sink_reaches_every_member(false); });
}

// A member that left gets nothing more while one that stayed does. The
// stayer's delivery proves the packets reached the host: the leaver's
// empty queue is then final, not a race.
static void member_that_left_gets_nothing_more() {
  MulticastSink sink(v4_group("239.1.2.4", 5002), DatagramOptions{});
  CHECK_EQ(sink.open(), 0);
  udp::Endpoint g = ep("239.1.2.4", 0);
  Member stays(AF_INET, 5002), leaves(AF_INET, 5002);
  CHECK_EQ(stays.sock.join_group(g, lo()), 0);
  CHECK_EQ(leaves.sock.join_group(g, lo()), 0);
  ChannelCounters k;
  TestRun first(0, 10, 500);
  sink.send(first.run, k);
  CHECK(stays.wait_for(10));
  CHECK(leaves.wait_for(10));
  CHECK_EQ(leaves.sock.leave_group(g, lo()), 0);
  TestRun second(10, 20, 500);
  sink.send(second.run, k);
  CHECK(stays.wait_for(30));
  stays.check_packets(0, 0, 30, 500);
  stays.drain();
  CHECK_EQ(stays.got.size(), 30u);
  leaves.drain();
  CHECK_EQ(leaves.got.size(), 10u);
  // And it may join again.
  CHECK_EQ(leaves.sock.join_group(g, lo()), 0);
  TestRun third(30, 5, 500);
  sink.send(third.run, k);
  CHECK(leaves.wait_for(15));
  leaves.check_packets(10, 30, 5, 500);
  CHECK_EQ(k.datagrams.get(), 35u);
}

static void test_member_that_left_gets_nothing_more() {
  in_multicast_netns(member_that_left_gets_nothing_more);
}

// Source-specific membership (RFC 4607): a member of (S1, G) gets what S1
// sends to G and nothing from S2. A member of (S2, G) on the same port
// proves S2's packets reached the host.
static void source_specific_member_hears_its_source_only() {
  const uint16_t port = 5003;
  MulticastConfig c1 = v4_group("232.1.1.1", port), c2 = c1;
  c1.source = ep("10.9.0.1", 0);
  c2.source = ep("10.9.0.2", 0);
  MulticastSink s1(c1, DatagramOptions{}), s2(c2, DatagramOptions{});
  CHECK_EQ(s1.open(), 0);
  CHECK_EQ(s2.open(), 0);
  udp::Endpoint g = ep("232.1.1.1", 0), from1 = ep("10.9.0.1", 0), from2 = ep("10.9.0.2", 0);
  Member m1(AF_INET, port), m2(AF_INET, port);
  CHECK_EQ(m1.sock.join_group(g, lo(), &from1), 0);
  CHECK_EQ(m2.sock.join_group(g, lo(), &from2), 0);
  ChannelCounters k1, k2;
  TestRun a(0, 20, 300), b(100, 30, 300);
  CHECK_EQ(s2.send(b.run, k2), 30u);
  CHECK_EQ(s1.send(a.run, k1), 20u);
  CHECK(m2.wait_for(30));
  CHECK(m1.wait_for(20));
  m1.drain();
  CHECK_EQ(m1.got.size(), 20u);
  m1.check_packets(0, 0, 20, 300, "10.9.0.1");
  CHECK_EQ(m2.got.size(), 30u);
  m2.check_packets(0, 100, 30, 300, "10.9.0.2");
  CHECK_EQ(k1.datagrams.get(), 20u);
  CHECK_EQ(k2.datagrams.get(), 30u);
}

static void test_source_specific_member_hears_its_source_only() {
  in_multicast_netns(source_specific_member_hears_its_source_only);
}

// The IPv4 interface named by one of its addresses (ip_mreqn): the packets
// leave by that interface and carry that address as their source.
static void interface_by_address_sets_the_source() {
  MulticastConfig c;
  c.group = ep("239.1.2.5", 5004);
  CHECK_EQ(udp::resolve_interface("10.9.0.2", AF_INET, &c.interface), 0);
  CHECK_EQ(c.interface.index, lo());
  MulticastSink sink(c, DatagramOptions{});
  CHECK_EQ(sink.open(), 0);
  Member m(AF_INET, 5004);
  CHECK_EQ(m.sock.join_group(ep("239.1.2.5", 0), lo()), 0);
  ChannelCounters k;
  TestRun t(0, 3, 100);
  sink.send(t.run, k);
  CHECK(m.wait_for(3));
  m.check_packets(0, 0, 3, 100, "10.9.0.2");
}

static void test_interface_by_address_sets_the_source() {
  in_multicast_netns(interface_by_address_sets_the_source);
}

// Loopback off: this host's members on the sending interface get nothing
// (IP_MULTICAST_LOOP, IPV6_MULTICAST_LOOP), and a marker sent after them
// with loopback on bounds the wait. The datagrams still leave: a member
// behind the veth gets them (IPv6; for IPv4 the kernel calls a datagram
// from one of its own addresses arriving on vb a martian). It joins only
// after the first check, as a socket's group filter does not look at the
// interface a datagram came in by. (On `lo` itself the interface loops
// everything back whatever the option says.)
static void loop_off_keeps_the_stream_off_this_host() {
  const unsigned va = if_nametoindex("va"), vb = if_nametoindex("vb");
  for (int family : {AF_INET, AF_INET6}) {
    const bool v6 = family == AF_INET6;
    MulticastConfig quiet_config;
    quiet_config.group = ep(v6 ? "ff15::6" : "239.1.2.6", 5005);
    quiet_config.interface.index = va;
    quiet_config.loop = false;
    MulticastConfig loud_config = quiet_config;
    loud_config.loop = true;
    MulticastSink quiet(quiet_config, DatagramOptions{}), loud(loud_config, DatagramOptions{});
    CHECK_EQ(quiet.open(), 0);
    CHECK_EQ(loud.open(), 0);
    udp::Endpoint g = ep(v6 ? "ff15::6" : "239.1.2.6", 0);
    Member here(family, 5005);
    CHECK_EQ(here.sock.join_group(g, va), 0);
    ChannelCounters k;
    TestRun t(0, 5, 100), marker(50, 1, 100);
    CHECK_EQ(quiet.send(t.run, k), 5u);
    CHECK_EQ(loud.send(marker.run, k), 1u);
    CHECK(here.wait_for(1));
    here.drain();
    CHECK_EQ(here.got.size(), 1u);
    here.check_packets(0, 50, 1, 100);
    CHECK_EQ(k.datagrams.get(), 6u);
    CHECK_EQ(k.errors.get(), 0u);
    if (!v6) continue;
    CHECK_EQ(here.sock.leave_group(g, va), 0);
    Member behind(family, 5005);
    CHECK_EQ(behind.sock.join_group(g, vb), 0);
    CHECK_EQ(quiet.send(t.run, k), 5u);
    CHECK(behind.wait_for(5));
    behind.check_packets(0, 0, 5, 100);
  }
}

static void test_loop_off_keeps_the_stream_off_this_host() {
  in_multicast_netns(loop_off_keeps_the_stream_off_this_host);
}

// A route whose MTU is below the segment size refuses the GSO
// super-datagram (EINVAL/EMSGSIZE): the group gets the same packets as
// plain datagrams (IPv4 fragments them), counted once each, no error.
static void gso_refused_by_the_route_falls_back_to_plain() {
  CHECK(sh("ip link set lo mtu 1280"));
  MulticastSink sink(v4_group("239.1.2.11", 5009), DatagramOptions{});
  CHECK_EQ(sink.open(), 0);
  if (!sink.gso_active()) {
    std::printf("# skipped: no UDP GSO here to be refused\n");
    return;
  }
  Member m(AF_INET, 5009);
  CHECK_EQ(m.sock.join_group(ep("239.1.2.11", 0), lo()), 0);
  ChannelCounters k;
  TestRun t(0, 100, 1400), u(100, 100, 1400);
  CHECK_EQ(sink.send(t.run, k), 100u);
  CHECK(m.wait_for(100));
  CHECK(sink.gso_fallbacks() >= 1);
  CHECK_EQ(sink.send(u.run, k), 100u);  // plain from the start now
  CHECK(m.wait_for(200));
  m.drain();
  CHECK_EQ(m.got.size(), 200u);
  m.check_packets(0, 0, 200, 1400);
  CHECK_EQ(k.datagrams.get(), 200u);
  CHECK_EQ(k.gso_sends.get(), 0u);
  CHECK_EQ(k.errors.get(), 0u);
}

static void test_gso_refused_by_the_route_falls_back_to_plain() {
  in_multicast_netns(gso_refused_by_the_route_falls_back_to_plain);
}

// IPv6 over the veth pair: any-source to ff15::/16 and source-specific to
// ff3e::/32 (RFC 4607 §1), the sink leaving by va, the members on vb.
static void ipv6_groups_any_source_and_source_specific() {
  const unsigned va = if_nametoindex("va"), vb = if_nametoindex("vb");
  CHECK(va != 0 && vb != 0);
  MulticastConfig asm_group;
  asm_group.group = ep("ff15::7", 5006);
  asm_group.interface.index = va;
  MulticastConfig ssm1 = asm_group, ssm2 = asm_group;
  ssm1.group = ssm2.group = ep("ff3e::8000:7", 5006);
  ssm1.source = ep("fd00::1", 0);
  ssm2.source = ep("fd00::2", 0);
  MulticastSink sa(asm_group, DatagramOptions{}), s1(ssm1, DatagramOptions{}),
      s2(ssm2, DatagramOptions{});
  CHECK_EQ(sa.open(), 0);
  CHECK_EQ(s1.open(), 0);
  CHECK_EQ(s2.open(), 0);
  udp::Endpoint from1 = ep("fd00::1", 0), from2 = ep("fd00::2", 0);
  Member any(AF_INET6, 5006), only1(AF_INET6, 5006), only2(AF_INET6, 5006);
  CHECK_EQ(any.sock.join_group(ep("ff15::7", 0), vb), 0);
  CHECK_EQ(only1.sock.join_group(ep("ff3e::8000:7", 0), vb, &from1), 0);
  CHECK_EQ(only2.sock.join_group(ep("ff3e::8000:7", 0), vb, &from2), 0);
  ChannelCounters k;
  TestRun t(0, 100, 1000), u(200, 7, 1000), v(300, 9, 1000);
  CHECK_EQ(sa.send(t.run, k), 100u);
  CHECK_EQ(s2.send(v.run, k), 9u);
  CHECK_EQ(s1.send(u.run, k), 7u);
  CHECK(any.wait_for(100));
  CHECK(only2.wait_for(9));
  CHECK(only1.wait_for(7));
  any.check_packets(0, 0, 100, 1000);
  only1.drain();
  only2.drain();
  CHECK_EQ(any.got.size(), 100u);  // none of the other group's
  CHECK_EQ(only1.got.size(), 7u);
  only1.check_packets(0, 200, 7, 1000, "fd00::1");
  CHECK_EQ(only2.got.size(), 9u);
  only2.check_packets(0, 300, 9, 1000, "fd00::2");
  CHECK_EQ(k.datagrams.get(), 116u);
  CHECK_EQ(k.errors.get(), 0u);
  std::printf("# multicast GSO on veth (IPv6): %s\n", sa.gso_active() ? "taken" : "refused");
}

static void test_ipv6_groups_any_source_and_source_specific() {
  in_multicast_netns(ipv6_groups_any_source_and_source_specific);
}

// The hop limit the group's packets carry is the sink's (IP_MULTICAST_TTL,
// IPV6_MULTICAST_HOPS), read from the received datagram's IP header
// (IP_RECVTTL, IPV6_RECVHOPLIMIT): neither lo nor a veth decrements it.
static int receive_hop_limit(udp::Socket& s) {
  pollfd p{s.fd(), POLLIN, 0};
  if (::poll(&p, 1, 20000) != 1) return -1;
  uint8_t data[2048];
  alignas(cmsghdr) uint8_t control[256];
  iovec iov{data, sizeof data};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  if (::recvmsg(s.fd(), &m, 0) < 0) return -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
    if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
        (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) {
      int v = 0;
      std::memcpy(&v, CMSG_DATA(c), sizeof v);
      return v;
    }
  }
  return -1;
}

static void packets_carry_the_hop_limit() {
  const unsigned va = if_nametoindex("va"), vb = if_nametoindex("vb");
  for (int family : {AF_INET, AF_INET6}) {
    const bool v6 = family == AF_INET6;
    for (int hops : {1, 7, 255}) {
      MulticastConfig c;
      c.group = ep(v6 ? "ff15::9" : "239.1.2.9", 5007);
      c.interface.index = v6 ? va : lo();
      c.hops = hops;
      MulticastSink sink(c, DatagramOptions{});
      CHECK_EQ(sink.open(), 0);
      Member m(family, 5007);
      int on = 1;
      CHECK_EQ(setsockopt(m.sock.fd(), v6 ? IPPROTO_IPV6 : IPPROTO_IP,
                          v6 ? IPV6_RECVHOPLIMIT : IP_RECVTTL, &on, sizeof on),
               0);
      CHECK_EQ(m.sock.join_group(ep(v6 ? "ff15::9" : "239.1.2.9", 0), v6 ? vb : lo()), 0);
      ChannelCounters k;
      TestRun t(0, 1, 100);
      sink.send(t.run, k);
      CHECK_EQ(receive_hop_limit(m.sock), hops);
    }
  }
}

static void test_packets_carry_the_hop_limit() {
  in_multicast_netns(packets_carry_the_hop_limit);
}

// A BatchReceiver (the receiver the binding uses) gets the groups it joined
// and no others, though another socket joined one on its port: by Linux's
// default (IP_MULTICAST_ALL on) it would get that one too.
static void batch_receiver_hears_only_groups_it_joined() {
  MulticastSink sink(v4_group("239.1.2.10", 5008), DatagramOptions{});
  CHECK_EQ(sink.open(), 0);
  udp::BatchReceiver rx;
  CHECK_EQ(rx.open(ep("0.0.0.0", 5008), 1 << 20, 2000, 64, true, true), 0);
  Member joined(AF_INET, 5008);
  CHECK_EQ(joined.sock.join_group(ep("239.1.2.10", 0), lo()), 0);
  ChannelCounters k;
  TestRun t(0, 4, 100), marker(10, 1, 100);
  sink.send(t.run, k);
  CHECK(joined.wait_for(4));
  // Then it joins: its first datagram is the one sent after that.
  CHECK_EQ(rx.socket().join_group(ep("239.1.2.10", 0), lo()), 0);
  sink.send(marker.run, k);
  udp::ReceivedBatch b;
  CHECK_EQ(rx.receive(&b), 0);
  CHECK_EQ(b.count(), 1u);
  uint32_t seq = 0;
  if (b.count() > 0) std::memcpy(&seq, b.data.data(), 4);
  CHECK_EQ(seq, 10u);
  // And without reuse_address the port is taken.
  udp::BatchReceiver other;
  CHECK_EQ(other.open(ep("0.0.0.0", 5008), 0, 2000, 64), EADDRINUSE);
}

static void test_batch_receiver_hears_only_groups_it_joined() {
  in_multicast_netns(batch_receiver_hears_only_groups_it_joined);
}

// ----------------------------------------------- a channel's group

static bool wait_for_stream(Engine& e, uint32_t ch, uint64_t packets) {
  for (int i = 0; i < 20000; ++i) {  // bounded by 20 s
    ChannelStats s;
    e.channel_stats(ch, &s);
    if (s.stream_packets >= packets) return true;
    e.barrier();
  }
  return false;
}

// Engine::add_group: the channel's stream reaches the group; one group per
// channel; removing it stops the stream there (and a channel left without
// any destination holds its packets).
static void engine_channel_group() {
  Engine e(EngineOptions{}, nullptr);
  CHECK_EQ(e.start(), 0);
  ChannelConfig cc;
  cc.slot_size = 1200;
  cc.capacity = 1024;
  CHECK_EQ(e.create_channel(0x80000001u, cc), 0);
  CHECK_EQ(e.create_channel(2, cc), 0);
  MulticastConfig c = v4_group("239.2.0.1", 5010);
  c.source = ep("10.9.0.1", 0);
  CHECK_EQ(e.add_group(9, c), ENOENT);
  MulticastStage st = MulticastStage::kSocket;
  CHECK_EQ(e.add_group(0x80000001u, c, &st), 0);
  CHECK(st == MulticastStage::kNone);
  CHECK_EQ(e.add_group(0x80000001u, c), EEXIST);
  // A failing group leaves the channel as it was.
  MulticastConfig bad = c;
  bad.source = ep("192.0.2.1", 0);
  CHECK_EQ(e.add_group(2, bad, &st), EADDRNOTAVAIL);
  CHECK(st == MulticastStage::kSource);
  bad = c;
  bad.group = ep("10.1.1.1", 5010);
  CHECK_EQ(e.add_group(2, bad, &st), EINVAL);
  CHECK(st == MulticastStage::kGroup);
  ChannelStats s;
  CHECK_EQ(e.channel_stats(2, &s), 0);
  CHECK_EQ(s.groups, 0u);
  CHECK_EQ(e.channel_stats(0x80000001u, &s), 0);
  CHECK_EQ(s.groups, 1u);
  CHECK_EQ(s.destinations, 0u);

  Member a(AF_INET, 5010), b(AF_INET, 5010);
  udp::Endpoint g = ep("239.2.0.1", 0);
  CHECK_EQ(a.sock.join_group(g, lo()), 0);
  CHECK_EQ(b.sock.join_group(g, lo()), 0);
  std::vector<uint8_t> pk = make_packets(0, 200, 1200);
  uint32_t acc = 0;
  CHECK_EQ(e.push_packets(0x80000001u, pk.data(), 1200, 200, &acc), 0);
  CHECK_EQ(acc, 200u);
  CHECK(wait_for_stream(e, 0x80000001u, 200));
  CHECK(a.wait_for(200));
  CHECK(b.wait_for(200));
  a.check_packets(0, 0, 200, 1200, "10.9.0.1");
  b.check_packets(0, 0, 200, 1200, "10.9.0.1");
  CHECK_EQ(e.barrier(), 0);
  CHECK_EQ(e.channel_stats(0x80000001u, &s), 0);
  CHECK_EQ(s.stream_packets, 200u);
  CHECK_EQ(s.datagrams, 200u);  // once, for both members
  CHECK_EQ(s.bytes, 200u * 1200);
  CHECK_EQ(s.errors + s.drops_eagain + s.drops_enobufs, 0u);
  CHECK_EQ(s.queued, 0u);

  // Removed: the channel has no destination left and holds what is pushed.
  CHECK_EQ(e.remove_group(0x80000001u), 0);
  CHECK_EQ(e.remove_group(0x80000001u), 0);  // no group: a no-op
  CHECK_EQ(e.remove_group(77), ENOENT);
  std::vector<uint8_t> more = make_packets(200, 50, 1200);
  CHECK_EQ(e.push_packets(0x80000001u, more.data(), 1200, 50, &acc), 0);
  CHECK_EQ(e.barrier(), 0);
  CHECK_EQ(e.barrier(), 0);
  CHECK_EQ(e.channel_stats(0x80000001u, &s), 0);
  CHECK_EQ(s.groups, 0u);
  CHECK_EQ(s.stream_packets, 200u);
  CHECK_EQ(s.queued, 50u);
  // A new group (another one) takes the channel on from there.
  MulticastConfig other = v4_group("239.2.0.2", 5010);
  CHECK_EQ(b.sock.join_group(ep("239.2.0.2", 0), lo()), 0);
  CHECK_EQ(e.add_group(0x80000001u, other), 0);
  CHECK(wait_for_stream(e, 0x80000001u, 250));
  CHECK(b.wait_for(250));
  b.check_packets(200, 200, 50, 1200);
  a.drain();
  CHECK_EQ(a.got.size(), 200u);  // a never joined the second group
  // Removing the channel takes its group with it.
  CHECK_EQ(e.remove_channel(0x80000001u), 0);
  CHECK_EQ(e.add_group(0x80000001u, c), ENOENT);
  e.stop();
  CHECK_EQ(e.add_group(2, c), ESHUTDOWN);
}

static void test_engine_channel_group() { in_multicast_netns(engine_channel_group); }

int main() {
  struct T {
    const char* name;
    void (*fn)();
  } tests[] = {
      {"resolve_interface", test_resolve_interface},
      {"is_multicast", test_is_multicast},
      {"multicast_config_checks", test_multicast_config_checks},
      {"multicast_sink_open_names_the_failing_step", test_multicast_sink_open_names_the_failing_step},
      {"membership_arguments", test_membership_arguments},
      {"membership_is_idempotent_and_exclusive", test_membership_is_idempotent_and_exclusive},
      {"multicast_sink_reaches_every_member_gso", test_multicast_sink_reaches_every_member_gso},
      {"multicast_sink_reaches_every_member_plain", test_multicast_sink_reaches_every_member_plain},
      {"member_that_left_gets_nothing_more", test_member_that_left_gets_nothing_more},
      {"source_specific_member_hears_its_source_only", test_source_specific_member_hears_its_source_only},
      {"interface_by_address_sets_the_source", test_interface_by_address_sets_the_source},
      {"loop_off_keeps_the_stream_off_this_host", test_loop_off_keeps_the_stream_off_this_host},
      {"gso_refused_by_the_route_falls_back_to_plain", test_gso_refused_by_the_route_falls_back_to_plain},
      {"ipv6_groups_any_source_and_source_specific", test_ipv6_groups_any_source_and_source_specific},
      {"packets_carry_the_hop_limit", test_packets_carry_the_hop_limit},
      {"batch_receiver_hears_only_groups_it_joined", test_batch_receiver_hears_only_groups_it_joined},
      {"engine_channel_group", test_engine_channel_group},
  };
  int passed = 0, failed = 0;
  for (const T& t : tests) {
    int before = g_failures.load();
    t.fn();
    bool ok = g_failures == before;
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", t.name);
    (ok ? passed : failed)++;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

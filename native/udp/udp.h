// rqcast — the one place that talks to the kernel about UDP.
//
// Every socket call the data plane makes (socket options, sendmmsg,
// recvmmsg, UDP GSO, multicast membership) is wrapped here once, with its
// fallback, in the uSockets manner: the replicator above is plain logic and
// never includes a socket header beyond the types below.
//
// No exception is thrown; fallible calls return an errno value (0 = ok).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace rqcast {
namespace udp {

// An IPv4 or IPv6 address and port, stored as the kernel takes it.
struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;

  int family() const { return addr.ss_family; }
  uint16_t port() const;
};

// Parses a numeric IPv4 ("127.0.0.1") or IPv6 ("::1", "fe80::1%lo") address.
// An IPv4-mapped IPv6 address ("::ffff:192.0.2.1") becomes the IPv4 one.
// Returns false for anything else (no name resolution on the data plane).
bool parse_endpoint(const char* address, uint16_t port, Endpoint* out);
// Writes the numeric address into buf (>= 64 bytes).
void format_address(const Endpoint& e, char* buf, size_t cap);
// A multicast address: 224.0.0.0/4 (RFC 5771) or ff00::/8 (RFC 4291 §2.7).
bool is_multicast(const Endpoint& e);
// The wildcard address of either family (0.0.0.0, ::).
bool is_unspecified(const Endpoint& e);

// A network interface for multicast: its index (0: none named, the kernel
// picks one by route) and, for IPv4 when it was named by one of its
// addresses, that address (IP_MULTICAST_IF then also makes it the source of
// what the socket sends, unless the socket is bound to another).
struct Interface {
  unsigned index = 0;
  in_addr address{};  // INADDR_ANY unless named by an IPv4 address
};

// The interface that `text` names for a group of `family`: an interface
// name ("eth0"), a numeric index ("3"), or, for AF_INET, one of the
// interface's IPv4 addresses. Null or empty: none (index 0). Returns 0,
// ENODEV (no such interface, or no interface holds that address), or EINVAL
// (an address for an IPv6 group, or of the other family: IPv6 names its
// multicast interface by index only, RFC 3493 §5.2).
int resolve_interface(const char* text, int family, Interface* out);

// Largest UDP payload that one (super-)datagram may carry, IPv4 bound
// (65535 - 20 - 8); used for both families so that a run of segments never
// depends on the family.
constexpr size_t kMaxDatagramPayload = 65507;
// UDP_MAX_SEGMENTS in the kernels that introduced UDP GSO (4.18); newer
// kernels allow 128, but 64 is accepted everywhere.
constexpr unsigned kMaxGsoSegments = 64;
// sendmmsg/recvmmsg take at most UIO_MAXIOV (1024) messages per call.
constexpr unsigned kMaxBatch = 1024;
// Control buffer bytes for the UDP_GRO cmsg a coalesced message carries.
constexpr size_t kGroControlSize = 24;  // CMSG_SPACE(sizeof(int)) on LP64
// The segment size in a received message's control data (UDP_GRO), or 0.
uint32_t read_gro_segment_size(const struct msghdr& msg);

// Control buffer bytes needed for one UDP_SEGMENT cmsg.
constexpr size_t kGsoControlSize = 24;  // CMSG_SPACE(sizeof(uint16_t)) on LP64

// Writes a UDP_SEGMENT control message (segment size) into buf, which must
// hold kGsoControlSize bytes, aligned for cmsghdr. Returns the control length.
size_t write_gso_control(void* buf, uint16_t segment_size);

// An eventfd that wakes a thread blocked in Socket::wait_readable.
class Waker {
 public:
  Waker() = default;
  ~Waker();
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;
  int open();  // errno value
  void wake();  // any thread; stays woken until reset()
  void reset();
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

class Socket {
 public:
  Socket() = default;
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Opens a blocking UDP socket of the family (AF_INET or AF_INET6; IPv6
  // sockets are V6ONLY). send_timeout_ms bounds how long a send may block on
  // a full send buffer (then it fails with EAGAIN, counted as a drop).
  // Probes UDP GSO support once (getsockopt UDP_SEGMENT).
  int open(int family, int send_buffer_bytes, int send_timeout_ms);
  // Opens and binds (for receivers and tests); port 0 picks one. With
  // reuse_address (SO_REUSEADDR, set before the bind) several sockets of
  // this host may bind one address and port: every one of them gets each
  // multicast datagram sent there (unicast ones go to one of them).
  int open_bound(const Endpoint& local, int receive_buffer_bytes,
                 bool reuse_address = false);
  // Binds an opened socket: a sender to its source address (port 0 picks
  // one), so that what it sends carries that address (a source-specific
  // group's receivers filter on it, RFC 4607 §1).
  int bind(const Endpoint& local);
  void close();

  bool is_open() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  int family() const { return family_; }
  // The kernel knows UDP_SEGMENT (Linux >= 4.18). A send may still fail with
  // EIO when the route's device lacks checksum offload: callers fall back.
  bool gso_supported() const { return gso_supported_; }
  // Asks the kernel to hand over coalesced datagrams (UDP_GRO, Linux >= 5.0):
  // a GSO send, or datagrams GRO merged on the way in, then arrive as one
  // message with a UDP_GRO control message giving the segment size. Returns
  // whether the kernel accepted it.
  bool enable_gro();
  int local_endpoint(Endpoint* out) const;

  // sendmmsg; on kernels without it (ENOSYS), a sendmsg loop. Returns the
  // number of messages sent (> 0), or -1 with *err set for the first one.
  int send_batch(struct mmsghdr* msgs, unsigned count, int* err);
  // One datagram (one-off packets: ACK replacements, tests).
  int send_one(const Endpoint& to, const void* data, size_t len);
  // recvmmsg (non-blocking, MSG_DONTWAIT); sendmsg-style fallback to a
  // recvmsg loop. Returns messages received (>= 0) or -1 with *err set.
  int receive_batch(struct mmsghdr* msgs, unsigned count, int* err);
  // One datagram without blocking (MSG_DONTWAIT): 0, or an errno value
  // (EAGAIN/ENOBUFS when the send buffer is full).
  int send_one_nonblocking(const Endpoint& to, const void* data, size_t len);
  // Waits until the socket is readable (returns 1) or `waker` was woken
  // (returns 0); -1 with *err set on failure. No timeout.
  int wait_readable(const class Waker& waker, int* err);

  int set_reuse_address(bool on);

  // Multicast (RFC 1112 / RFC 3376 / RFC 3810 socket options).
  // IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS, 0..255.
  int set_multicast_ttl(int hops);
  // Whether this host's own members of a group get what this socket sends
  // to it.
  int set_multicast_loop(bool on);
  // The interface multicast leaves by: IPv4 through ip_mreqn (index and,
  // when named by address, that address), IPv6 by index. Index 0 and no
  // address: the kernel chooses by route.
  int set_multicast_interface(const Interface& iface);
  // IP_MULTICAST_ALL / IPV6_MULTICAST_ALL (Linux; on by default): when on,
  // a socket bound to a wildcard address gets the datagrams of every group
  // any socket of this host joined on its port; off, only those of the
  // groups it joined itself (RFC 3678's per-socket model). EINVAL/
  // ENOPROTOOPT on kernels without it (IPv6: before 4.20).
  int set_multicast_all(bool on);
  // Membership of `group` on the interface with index `interface_index` (0:
  // by route): any-source (MCAST_JOIN_GROUP, RFC 3678 §5.1) without
  // `source`, source-specific with it (MCAST_JOIN_SOURCE_GROUP, RFC 3678
  // §5.2; RFC 4607), one source per call. Joining what the socket already
  // joined, or leaving what it did not join, is a no-op that returns 0
  // (the socket keeps a list: the kernel's answers to these differ by
  // mode). EAFNOSUPPORT if the group (or source) is not of the socket's
  // family; EINVAL for a group that is not a multicast address, a source
  // that is multicast or unspecified, or a join that would mix any-source
  // and source-specific membership of one group on one interface (RFC 3678
  // §5.2: a socket's filter for a group has one mode; Linux would silently
  // turn an any-source membership into a source-specific one).
  int join_group(const Endpoint& group, unsigned interface_index,
                 const Endpoint* source = nullptr);
  int leave_group(const Endpoint& group, unsigned interface_index,
                  const Endpoint* source = nullptr);
  size_t membership_count() const { return memberships_.size(); }

 private:
  // One membership: (group, interface) for any source, or (source, group,
  // interface). Addresses as 16 bytes (IPv4 in the first 4).
  struct Membership {
    uint8_t group[16];
    uint8_t source[16];  // all zero: any source
    unsigned interface_index;
  };
  int membership(const Endpoint& group, unsigned interface_index,
                 const Endpoint* source, bool join);

  std::vector<Membership> memberships_;
  int fd_ = -1;
  int family_ = 0;
  bool gso_supported_ = false;
  bool have_sendmmsg_ = true;
  bool have_recvmmsg_ = true;
};

}  // namespace udp
}  // namespace rqcast

// rqcast — kernel UDP calls, each wrapped once with its fallback.
#include "udp/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <netinet/udp.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103  // linux/udp.h, Linux >= 4.18
#endif
#ifndef UDP_GRO
#define UDP_GRO 104  // linux/udp.h, Linux >= 5.0
#endif
#ifndef IP_MULTICAST_ALL
#define IP_MULTICAST_ALL 49  // linux/in.h, Linux >= 2.6.31
#endif
#ifndef IPV6_MULTICAST_ALL
#define IPV6_MULTICAST_ALL 29  // linux/in6.h, Linux >= 4.20
#endif

namespace rqcast {
namespace udp {

static_assert(kGsoControlSize == CMSG_SPACE(sizeof(uint16_t)),
              "kGsoControlSize must match CMSG_SPACE(uint16_t)");
static_assert(kGroControlSize == CMSG_SPACE(sizeof(int)),
              "kGroControlSize must match CMSG_SPACE(int)");

uint32_t read_gro_segment_size(const struct msghdr& msg) {
  for (const cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), const_cast<cmsghdr*>(c))) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
        c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int size = 0;
      std::memcpy(&size, CMSG_DATA(c), sizeof size);
      return size > 0 ? static_cast<uint32_t>(size) : 0;
    }
  }
  return 0;
}

bool Socket::enable_gro() {
  int on = 1;
  return fd_ >= 0 && setsockopt(fd_, SOL_UDP, UDP_GRO, &on, sizeof on) == 0;
}

uint16_t Endpoint::port() const {
  if (addr.ss_family == AF_INET)
    return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  return 0;
}

bool parse_endpoint(const char* address, uint16_t port, Endpoint* out) {
  if (address == nullptr || out == nullptr) return false;
  *out = Endpoint{};
  sockaddr_in v4{};
  if (inet_pton(AF_INET, address, &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    std::memcpy(&out->addr, &v4, sizeof v4);
    out->len = sizeof v4;
    return true;
  }
  // IPv6, with an optional %zone (interface name or index) for link-local.
  char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t n = std::strlen(address);
  if (n >= sizeof text) return false;
  std::memcpy(text, address, n + 1);
  unsigned scope = 0;
  if (char* pct = std::strchr(text, '%')) {
    *pct = '\0';
    const char* zone = pct + 1;
    char* end = nullptr;
    unsigned long idx = std::strtoul(zone, &end, 10);
    scope = (end != zone && *end == '\0') ? static_cast<unsigned>(idx)
                                          : if_nametoindex(zone);
    if (scope == 0) return false;
  }
  sockaddr_in6 v6{};
  if (inet_pton(AF_INET6, text, &v6.sin6_addr) != 1) return false;
  if (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr) && scope == 0) {
    // ::ffff:a.b.c.d (RFC 4291 §2.5.5.2) is how a dual-stack socket names
    // an IPv4 peer; the data plane's IPv6 socket is V6ONLY, so send to it
    // as the IPv4 address it is (and count it as one destination).
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    std::memcpy(&v4.sin_addr, &v6.sin6_addr.s6_addr[12], 4);
    std::memcpy(&out->addr, &v4, sizeof v4);
    out->len = sizeof v4;
    return true;
  }
  v6.sin6_family = AF_INET6;
  v6.sin6_port = htons(port);
  v6.sin6_scope_id = scope;
  std::memcpy(&out->addr, &v6, sizeof v6);
  out->len = sizeof v6;
  return true;
}

void format_address(const Endpoint& e, char* buf, size_t cap) {
  if (cap == 0) return;
  buf[0] = '\0';
  if (e.family() == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&e.addr)->sin_addr,
              buf, static_cast<socklen_t>(cap));
  else if (e.family() == AF_INET6)
    inet_ntop(AF_INET6,
              &reinterpret_cast<const sockaddr_in6*>(&e.addr)->sin6_addr, buf,
              static_cast<socklen_t>(cap));
}

bool is_multicast(const Endpoint& e) {
  if (e.family() == AF_INET) {
    uint32_t a = ntohl(reinterpret_cast<const sockaddr_in*>(&e.addr)->sin_addr.s_addr);
    return (a >> 28) == 0xE;  // 224.0.0.0/4
  }
  if (e.family() == AF_INET6)
    return IN6_IS_ADDR_MULTICAST(&reinterpret_cast<const sockaddr_in6*>(&e.addr)->sin6_addr);
  return false;
}

bool is_unspecified(const Endpoint& e) {
  if (e.family() == AF_INET)
    return reinterpret_cast<const sockaddr_in*>(&e.addr)->sin_addr.s_addr == htonl(INADDR_ANY);
  if (e.family() == AF_INET6)
    return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&e.addr)->sin6_addr);
  return false;
}

// The index of the interface holding IPv4 address `a`, or 0.
static unsigned interface_with_address(in_addr a) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return 0;
  unsigned index = 0;
  for (ifaddrs* i = list; i != nullptr && index == 0; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if (reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr == a.s_addr)
      index = if_nametoindex(i->ifa_name);
  }
  freeifaddrs(list);
  return index;
}

int resolve_interface(const char* text, int family, Interface* out) {
  *out = Interface{};
  if (text == nullptr || *text == '\0') return 0;
  if (family != AF_INET && family != AF_INET6) return EINVAL;
  const size_t n = std::strlen(text);
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, text, &v4) == 1) {
    // Socket options name an IPv6 interface by index only.
    if (family != AF_INET) return EINVAL;
    out->index = interface_with_address(v4);
    if (out->index == 0) return ENODEV;
    out->address = v4;
    return 0;
  }
  if (inet_pton(AF_INET6, text, &v6) == 1) return EINVAL;
  if (std::strspn(text, "0123456789") == n) {
    char* end = nullptr;
    errno = 0;
    unsigned long idx = std::strtoul(text, &end, 10);
    char name[IF_NAMESIZE];
    if (errno != 0 || idx == 0 || idx > 0x7FFFFFFFul ||
        if_indextoname(static_cast<unsigned>(idx), name) == nullptr)
      return ENODEV;
    out->index = static_cast<unsigned>(idx);
    return 0;
  }
  if (n >= IF_NAMESIZE) return ENODEV;
  out->index = if_nametoindex(text);
  return out->index == 0 ? ENODEV : 0;
}

size_t write_gso_control(void* buf, uint16_t segment_size) {
  std::memset(buf, 0, kGsoControlSize);
  auto* cm = static_cast<cmsghdr*>(buf);
  cm->cmsg_level = SOL_UDP;
  cm->cmsg_type = UDP_SEGMENT;
  cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  std::memcpy(CMSG_DATA(cm), &segment_size, sizeof segment_size);
  return kGsoControlSize;
}

Socket::~Socket() { close(); }

void Socket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  memberships_.clear();  // the kernel drops them with the socket
}

int Socket::open(int family, int send_buffer_bytes, int send_timeout_ms) {
  close();
  int fd = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) return errno;
  fd_ = fd;
  family_ = family;
  if (family == AF_INET6) {
    int on = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  }
  if (send_buffer_bytes > 0) {
    // SO_SNDBUFFORCE (root) lifts net.core.wmem_max; plain SO_SNDBUF after.
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &send_buffer_bytes,
                   sizeof send_buffer_bytes) != 0)
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer_bytes,
                 sizeof send_buffer_bytes);
  }
  if (send_timeout_ms > 0) {
    timeval tv{send_timeout_ms / 1000, (send_timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  // The kernel knows UDP_SEGMENT if it answers the getsockopt.
  int seg = 0;
  socklen_t sl = sizeof seg;
  gso_supported_ = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, &sl) == 0;
  return 0;
}

int Socket::open_bound(const Endpoint& local, int receive_buffer_bytes,
                       bool reuse_address) {
  int rc = open(local.family(), 0, 0);
  if (rc != 0) return rc;
  if (reuse_address && (rc = set_reuse_address(true)) != 0) {
    close();
    return rc;
  }
  if (receive_buffer_bytes > 0) {
    if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer_bytes,
                   sizeof receive_buffer_bytes) != 0)
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes,
                 sizeof receive_buffer_bytes);
  }
  rc = bind(local);
  if (rc != 0) close();
  return rc;
}

int Socket::bind(const Endpoint& local) {
  if (fd_ < 0) return EBADF;
  if (local.family() != family_) return EAFNOSUPPORT;
  return ::bind(fd_, reinterpret_cast<const sockaddr*>(&local.addr), local.len) == 0
             ? 0
             : errno;
}

int Socket::set_reuse_address(bool on) {
  int v = on ? 1 : 0;
  return setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &v, sizeof v) == 0 ? 0 : errno;
}

int Socket::local_endpoint(Endpoint* out) const {
  *out = Endpoint{};
  out->len = sizeof out->addr;
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&out->addr), &out->len) != 0)
    return errno;
  return 0;
}

int Socket::send_batch(struct mmsghdr* msgs, unsigned count, int* err) {
  if (have_sendmmsg_) {
    int r = ::sendmmsg(fd_, msgs, count, 0);
    if (r >= 0) return r;
    if (errno != ENOSYS) {
      *err = errno;
      return -1;
    }
    have_sendmmsg_ = false;  // pre-3.0 kernels, some sandboxes
  }
  unsigned sent = 0;
  for (; sent < count; ++sent) {
    ssize_t r = ::sendmsg(fd_, &msgs[sent].msg_hdr, 0);
    if (r < 0) {
      if (sent > 0) return static_cast<int>(sent);
      *err = errno;
      return -1;
    }
    msgs[sent].msg_len = static_cast<unsigned>(r);
  }
  return static_cast<int>(sent);
}

int Socket::send_one(const Endpoint& to, const void* data, size_t len) {
  ssize_t r = ::sendto(fd_, data, len, 0,
                       reinterpret_cast<const sockaddr*>(&to.addr), to.len);
  return r < 0 ? errno : 0;
}

int Socket::receive_batch(struct mmsghdr* msgs, unsigned count, int* err) {
  if (have_recvmmsg_) {
    int r = ::recvmmsg(fd_, msgs, count, MSG_DONTWAIT, nullptr);
    if (r >= 0) return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    if (errno != ENOSYS) {
      *err = errno;
      return -1;
    }
    have_recvmmsg_ = false;
  }
  unsigned got = 0;
  for (; got < count; ++got) {
    ssize_t r = ::recvmsg(fd_, &msgs[got].msg_hdr, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || got > 0) break;
      *err = errno;
      return -1;
    }
    msgs[got].msg_len = static_cast<unsigned>(r);
  }
  return static_cast<int>(got);
}

int Socket::send_one_nonblocking(const Endpoint& to, const void* data,
                                 size_t len) {
  ssize_t r = ::sendto(fd_, data, len, MSG_DONTWAIT,
                       reinterpret_cast<const sockaddr*>(&to.addr), to.len);
  return r < 0 ? errno : 0;
}

int Socket::wait_readable(const Waker& waker, int* err) {
  pollfd p[2] = {{fd_, POLLIN, 0}, {waker.fd(), POLLIN, 0}};
  while (true) {
    int r = ::poll(p, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      *err = errno;
      return -1;
    }
    if (p[1].revents) return 0;
    if (p[0].revents) return 1;
  }
}

Waker::~Waker() {
  if (fd_ >= 0) ::close(fd_);
}

int Waker::open() {
  if (fd_ >= 0) return 0;
  fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  return fd_ < 0 ? errno : 0;
}

void Waker::wake() {
  uint64_t one = 1;
  ssize_t r = ::write(fd_, &one, sizeof one);
  (void)r;  // a full counter is still woken
}

void Waker::reset() {
  uint64_t v;
  ssize_t r = ::read(fd_, &v, sizeof v);
  (void)r;
}

// An int option that IPv4 and IPv6 each have under their own name: the
// one of the socket's family.
static int set_family_option(int fd, int family, int ipv4_name, int ipv6_name,
                             int value) {
  int r = family == AF_INET6
              ? setsockopt(fd, IPPROTO_IPV6, ipv6_name, &value, sizeof value)
              : setsockopt(fd, IPPROTO_IP, ipv4_name, &value, sizeof value);
  return r == 0 ? 0 : errno;
}

int Socket::set_multicast_ttl(int hops) {
  return set_family_option(fd_, family_, IP_MULTICAST_TTL, IPV6_MULTICAST_HOPS,
                           hops);
}

int Socket::set_multicast_loop(bool on) {
  return set_family_option(fd_, family_, IP_MULTICAST_LOOP, IPV6_MULTICAST_LOOP,
                           on ? 1 : 0);
}

int Socket::set_multicast_interface(const Interface& iface) {
  int r;
  if (family_ == AF_INET6) {
    r = setsockopt(fd_, IPPROTO_IPV6, IPV6_MULTICAST_IF, &iface.index,
                   sizeof iface.index);
  } else {
    ip_mreqn m{};
    m.imr_ifindex = static_cast<int>(iface.index);
    m.imr_address = iface.address;
    r = setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof m);
  }
  return r == 0 ? 0 : errno;
}

int Socket::set_multicast_all(bool on) {
  return set_family_option(fd_, family_, IP_MULTICAST_ALL, IPV6_MULTICAST_ALL,
                           on ? 1 : 0);
}

static void address_bytes(const Endpoint& e, uint8_t out[16]) {
  std::memset(out, 0, 16);
  if (e.family() == AF_INET)
    std::memcpy(out, &reinterpret_cast<const sockaddr_in*>(&e.addr)->sin_addr, 4);
  else if (e.family() == AF_INET6)
    std::memcpy(out, &reinterpret_cast<const sockaddr_in6*>(&e.addr)->sin6_addr, 16);
}

// RFC 3678 §5 protocol-independent membership: one request layout for both
// families, the interface by index.
int Socket::membership(const Endpoint& group, unsigned ifindex,
                       const Endpoint* source, bool join) {
  if (fd_ < 0) return EBADF;
  if (group.family() != family_ || (source && source->family() != family_))
    return EAFNOSUPPORT;
  if (!is_multicast(group)) return EINVAL;
  if (source && (is_multicast(*source) || is_unspecified(*source))) return EINVAL;
  Membership m{};
  address_bytes(group, m.group);
  if (source) address_bytes(*source, m.source);
  m.interface_index = ifindex;
  static const uint8_t kAny[16] = {};
  auto at = memberships_.end();
  bool other_mode = false;
  for (auto it = memberships_.begin(); it != memberships_.end(); ++it) {
    if (std::memcmp(it->group, m.group, 16) != 0 || it->interface_index != ifindex)
      continue;
    if (std::memcmp(it->source, m.source, 16) == 0)
      at = it;
    else if ((std::memcmp(it->source, kAny, 16) == 0) != (source == nullptr))
      other_mode = true;
  }
  if (join && at != memberships_.end()) return 0;
  if (!join && at == memberships_.end()) return 0;
  if (join && other_mode) return EINVAL;
  const int level = family_ == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
  int r;
  if (source) {
    group_source_req req{};
    req.gsr_interface = ifindex;
    std::memcpy(&req.gsr_group, &group.addr, group.len);
    std::memcpy(&req.gsr_source, &source->addr, source->len);
    r = setsockopt(fd_, level, join ? MCAST_JOIN_SOURCE_GROUP : MCAST_LEAVE_SOURCE_GROUP,
                   &req, sizeof req);
  } else {
    group_req req{};
    req.gr_interface = ifindex;
    std::memcpy(&req.gr_group, &group.addr, group.len);
    r = setsockopt(fd_, level, join ? MCAST_JOIN_GROUP : MCAST_LEAVE_GROUP, &req,
                   sizeof req);
  }
  int err = r == 0 ? 0 : errno;
  // The kernel already holds (or no longer holds) what was asked, under
  // another name for the interface (index 0 resolved by route): already a
  // member (any-source: EADDRINUSE; source-specific: EADDRNOTAVAIL), or
  // not a member (any-source: EADDRNOTAVAIL; source-specific: EINVAL).
  if (join && err == (source ? EADDRNOTAVAIL : EADDRINUSE)) err = 0;
  if (!join && err == (source ? EINVAL : EADDRNOTAVAIL)) err = 0;
  if (err != 0) return err;
  if (join)
    memberships_.push_back(m);
  else
    memberships_.erase(at);
  return 0;
}

int Socket::join_group(const Endpoint& group, unsigned interface_index,
                       const Endpoint* source) {
  return membership(group, interface_index, source, true);
}

int Socket::leave_group(const Endpoint& group, unsigned interface_index,
                        const Endpoint* source) {
  return membership(group, interface_index, source, false);
}

}  // namespace udp
}  // namespace rqcast

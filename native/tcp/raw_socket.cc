#include "tcp/raw_socket.h"

// net/if.h before the linux/ headers: then theirs give way (libc-compat.h).
#include <net/if.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

namespace rqcast {
namespace tcp {

namespace {

// The virtio-net header a PACKET_VNET_HDR socket takes in front of each
// packet (the virtio spec's struct virtio_net_hdr, legacy layout; linux/
// virtio_net.h is not included: its headers clash with net/if.h).
struct VnetHeader {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
constexpr uint8_t kVnetNeedsCsum = 1;     // VIRTIO_NET_HDR_F_NEEDS_CSUM
constexpr uint8_t kVnetGsoNone = 0;       // VIRTIO_NET_HDR_GSO_NONE
constexpr uint8_t kVnetGsoTcpv4 = 1;      // VIRTIO_NET_HDR_GSO_TCPV4

// A socket buffer of `bytes` (> 0): the FORCE option (root) lifts
// net.core.[rw]mem_max; the plain one, capped by it, after.
void SetBuffer(int fd, int force_option, int option, int bytes) {
  if (bytes > 0 && setsockopt(fd, SOL_SOCKET, force_option, &bytes, sizeof bytes) != 0)
    setsockopt(fd, SOL_SOCKET, option, &bytes, sizeof bytes);
}

// Sends msgs[0, count) with sendmmsg, counting each call in *syscalls.
// sendmmsg stops at the first packet the kernel refuses: refused(i, errno)
// is told of it, it is skipped and the rest go on; sent(first, n) is told
// of each run the kernel took.
template <class Sent, class Refused>
void SendEach(int fd, struct mmsghdr* msgs, size_t count, uint64_t* syscalls, Sent sent, Refused refused) {
  size_t off = 0;
  while (off < count) {
    ++*syscalls;
    int n = sendmmsg(fd, msgs + off, static_cast<unsigned>(count - off), MSG_DONTWAIT);
    if (n > 0) {
      sent(off, static_cast<size_t>(n));
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    refused(off, n < 0 ? errno : EIO);
    ++off;
  }
}

// Classic BPF over the IPv4 header (a SOCK_DGRAM packet socket's filter
// sees the packet from the network header on): IPv4, protocol TCP, not a
// fragment, destination address (unless any), destination port.
std::vector<sock_filter> TcpFilter(uint32_t addr, uint16_t port) {
  std::vector<sock_filter> f;
  std::vector<size_t> to_drop;  // jumps whose false branch is the drop
  auto stmt = [&](uint16_t code, uint32_t k) { f.push_back(BPF_STMT(code, k)); };
  auto jeq_or_drop = [&](uint32_t k) {
    to_drop.push_back(f.size());
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 0));
  };
  stmt(BPF_LD | BPF_B | BPF_ABS, 0);
  stmt(BPF_ALU | BPF_AND | BPF_K, 0xf0);
  jeq_or_drop(0x40);
  stmt(BPF_LD | BPF_B | BPF_ABS, 9);
  jeq_or_drop(IPPROTO_TCP);
  stmt(BPF_LD | BPF_H | BPF_ABS, 6);
  stmt(BPF_ALU | BPF_AND | BPF_K, 0x3fff);  // MF and the fragment offset
  jeq_or_drop(0);
  if (addr != 0) {
    stmt(BPF_LD | BPF_W | BPF_ABS, 16);
    jeq_or_drop(addr);
  }
  stmt(BPF_LDX | BPF_B | BPF_MSH, 0);       // X = IHL * 4
  stmt(BPF_LD | BPF_H | BPF_IND, 2);        // TCP destination port
  jeq_or_drop(port);
  stmt(BPF_RET | BPF_K, 0x40000);           // accept, whole packet
  const size_t drop = f.size();
  stmt(BPF_RET | BPF_K, 0);
  for (size_t i : to_drop) f[i].jf = static_cast<uint8_t>(drop - i - 1);
  return f;
}

}  // namespace

int ReservePort(uint32_t addr, uint16_t port, int* fd) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return errno;
  sockaddr_in sin;
  std::memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(addr);
  sin.sin_port = htons(port);
  if (bind(s, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
    int err = errno;
    ::close(s);
    return err;
  }
  *fd = s;
  return 0;
}

RawReceiver::RawReceiver(size_t batch, size_t max_packet)
    : batch_(batch), max_packet_(max_packet) {
  buffers_.resize(batch_ * max_packet_);
  control_.resize(batch_ * (CMSG_SPACE(sizeof(tpacket_auxdata)) + CMSG_SPACE(sizeof(timespec))));
  msgs_.resize(batch_);
  iov_.resize(batch_);
  from_.resize(batch_);
}

RawReceiver::~RawReceiver() { Close(); }

void RawReceiver::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

int RawReceiver::Open(uint32_t addr, uint16_t port, int rcvbuf_bytes) {
  Close();
  // Protocol 0 until the filter is on: no packet is queued unfiltered.
  int fd = ::socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  std::vector<sock_filter> f = TcpFilter(addr, port);
  sock_fprog prog;
  prog.len = static_cast<unsigned short>(f.size());
  prog.filter = f.data();
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0 ||
      setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) != 0) {
    int err = errno;
    ::close(fd);
    return err;
  }
#ifdef PACKET_IGNORE_OUTGOING
  // Linux >= 4.20: our own sends are not copied back (PACKET_HOST is
  // checked anyway).
  setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
#endif
  SetBuffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcvbuf_bytes);
  sockaddr_ll sll;
  std::memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_IP);
  sll.sll_ifindex = 0;  // every interface
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
    int err = errno;
    ::close(fd);
    return err;
  }
  fd_ = fd;
  return 0;
}

bool RawReceiver::EnableTimestamps() {
  int one = 1;
  return fd_ >= 0 && setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) == 0;
}

size_t RawReceiver::Receive(std::vector<RawPacket>* out, int* err) {
  out->clear();
  *err = 0;
  if (fd_ < 0) return 0;
  const size_t cspace = CMSG_SPACE(sizeof(tpacket_auxdata)) + CMSG_SPACE(sizeof(timespec));
  for (size_t i = 0; i < batch_; ++i) {
    iov_[i].iov_base = buffers_.data() + i * max_packet_;
    iov_[i].iov_len = max_packet_;
    msghdr& h = msgs_[i].msg_hdr;
    std::memset(&h, 0, sizeof h);
    h.msg_iov = &iov_[i];
    h.msg_iovlen = 1;
    h.msg_name = &from_[i];
    h.msg_namelen = sizeof from_[i];
    h.msg_control = control_.data() + i * cspace;
    h.msg_controllen = cspace;
    msgs_[i].msg_len = 0;
  }
  int n = recvmmsg(fd_, msgs_.data(), static_cast<unsigned>(batch_), MSG_DONTWAIT, nullptr);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) *err = errno;
    return 0;
  }
  for (int i = 0; i < n; ++i) {
    const msghdr& h = msgs_[i].msg_hdr;
    const sockaddr_ll* sll = reinterpret_cast<const sockaddr_ll*>(&from_[i]);
    if (sll->sll_pkttype != PACKET_HOST) {
      ++not_host_;
      continue;
    }
    if (h.msg_flags & MSG_TRUNC) {
      ++truncated_;
      continue;
    }
    RawPacket p;
    p.data = static_cast<const uint8_t*>(iov_[i].iov_base);
    p.len = msgs_[i].msg_len;
    p.loopback = sll->sll_hatype == ARPHRD_LOOPBACK;
    p.ifindex = sll->sll_ifindex;
    p.link_type = sll->sll_hatype;
    p.addr_len = sll->sll_halen <= sizeof p.addr ? sll->sll_halen : 0;
    std::memcpy(p.addr, sll->sll_addr, p.addr_len);
    for (cmsghdr* c = CMSG_FIRSTHDR(const_cast<msghdr*>(&h)); c != nullptr;
         c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
          c->cmsg_len >= CMSG_LEN(sizeof(timespec))) {
        timespec ts;
        std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
        p.rx_realtime_ns = uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
        continue;
      }
      if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA ||
          c->cmsg_len < CMSG_LEN(sizeof(tpacket_auxdata)))
        continue;
      tpacket_auxdata aux;
      std::memcpy(&aux, CMSG_DATA(c), sizeof aux);
      // CSUMNOTREADY: a local sender's partial checksum (lo, veth) that
      // the hardware would have finished; CSUM_VALID: already verified.
      p.checksum_trusted = (aux.tp_status & (TP_STATUS_CSUMNOTREADY
#ifdef TP_STATUS_CSUM_VALID
                                             | TP_STATUS_CSUM_VALID
#endif
                                             )) != 0;
    }
    ++received_;
    out->push_back(p);
  }
  return out->size();
}

RawSender::RawSender(size_t batch, size_t max_packet)
    : batch_(batch), max_packet_(max_packet) {
  buffers_.resize(batch_ * max_packet_);
  lengths_.resize(batch_);
  dsts_.resize(batch_);
  msgs_.resize(batch_);
  iov_.resize(batch_);
  to_.resize(batch_);
}

RawSender::~RawSender() { Close(); }

void RawSender::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  count_ = 0;
}

int RawSender::Open(int sndbuf_bytes) {
  Close();
  int fd = ::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd < 0) return errno;
  SetBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf_bytes);
  fd_ = fd;
  return 0;
}

void RawSender::Commit(size_t len, uint32_t dst_addr) {
  if (len == 0 || len > max_packet_) return;
  lengths_[count_] = len;
  dsts_[count_] = dst_addr;
  if (++count_ == batch_) Flush();
}

void RawSender::Flush() {
  if (count_ == 0) return;
  if (fd_ < 0) {
    errors_ += count_;
    count_ = 0;
    return;
  }
  for (size_t i = 0; i < count_; ++i) {
    sockaddr_in* sin = reinterpret_cast<sockaddr_in*>(&to_[i]);
    std::memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(dsts_[i]);
    iov_[i].iov_base = buffers_.data() + i * max_packet_;
    iov_[i].iov_len = lengths_[i];
    msghdr& h = msgs_[i].msg_hdr;
    std::memset(&h, 0, sizeof h);
    h.msg_iov = &iov_[i];
    h.msg_iovlen = 1;
    h.msg_name = sin;
    h.msg_namelen = sizeof *sin;
  }
  SendEach(
      fd_, msgs_.data(), count_, &syscalls_, [this](size_t, size_t n) { packets_ += n; },
      [this](size_t, int err) {
        last_error_ = err;
        ++errors_;
      });
  count_ = 0;
}

PacketSender::PacketSender(size_t batch, size_t max_ip_packet)
    : batch_(batch), max_ip_(max_ip_packet), stride_(max_ip_packet + kHeadroom) {
  buffers_.resize(batch_ * stride_);
  lengths_.resize(batch_);
  seg_counts_.resize(batch_);
  gso_.resize(batch_);
  msgs_.resize(batch_);
  iov_.resize(batch_);
  to_.resize(batch_);
}

PacketSender::~PacketSender() { Close(); }

void PacketSender::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  count_ = 0;
}

int PacketSender::Open(int sndbuf_bytes) {
  Close();
  refused_ = false;
  // Protocol 0: this socket sends only.
  int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int one = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) != 0) {
    int err = errno;
    ::close(fd);
    return err;
  }
  SetBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf_bytes);
  fd_ = fd;
  return 0;
}

bool PacketSender::LocalAddress(int ifindex, uint8_t mac[6]) {
  auto it = local_.find(ifindex);
  if (it == local_.end()) {
    ifreq ifr;
    std::memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = ifindex;
    if (ioctl(fd_, SIOCGIFNAME, &ifr) != 0 || ioctl(fd_, SIOCGIFHWADDR, &ifr) != 0) return false;
    if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
      return false;
    if (local_.size() >= 256) local_.clear();   // interfaces come and go
    std::array<uint8_t, 6> a;
    std::memcpy(a.data(), ifr.ifr_hwaddr.sa_data, 6);
    it = local_.emplace(ifindex, a).first;
  }
  std::memcpy(mac, it->second.data(), 6);
  return true;
}

bool PacketSender::Commit(size_t ip_len, const LinkAddress& link, const GsoLayout& layout) {
  if (ip_len == 0 || ip_len > max_ip_ || fd_ < 0) return false;
  uint8_t* frame = buffers_.data() + count_ * stride_;
  uint8_t* eth = frame + kVnetHeader;
  if (!LocalAddress(link.ifindex, eth + 6)) {
    ++errors_;
    return false;
  }
  std::memcpy(eth, link.mac, 6);
  eth[12] = ETH_P_IP >> 8;
  eth[13] = ETH_P_IP & 0xff;
  // The header's fields are in the host's order (a packet socket's
  // virtio_net_hdr is native-endian); offsets count from the frame's start.
  VnetHeader h;
  std::memset(&h, 0, sizeof h);
  h.flags = kVnetNeedsCsum;
  h.csum_start = static_cast<uint16_t>(kLinkHeader + layout.csum_start);
  h.csum_offset = layout.csum_offset;
  h.hdr_len = static_cast<uint16_t>(kLinkHeader + layout.header_len);
  if (layout.gso_size > 0) {
    h.gso_type = kVnetGsoTcpv4;
    h.gso_size = layout.gso_size;
  } else {
    h.gso_type = kVnetGsoNone;
  }
  static_assert(sizeof(VnetHeader) == kVnetHeader, "virtio_net_hdr is 10 bytes");
  std::memcpy(frame, &h, sizeof h);

  sockaddr_ll* sll = reinterpret_cast<sockaddr_ll*>(&to_[count_]);
  std::memset(sll, 0, sizeof *sll);
  sll->sll_family = AF_PACKET;
  sll->sll_protocol = htons(ETH_P_IP);
  sll->sll_ifindex = link.ifindex;
  sll->sll_halen = 6;
  std::memcpy(sll->sll_addr, link.mac, 6);
  lengths_[count_] = kHeadroom + ip_len;
  seg_counts_[count_] = layout.segments;
  gso_[count_] = layout.gso_size > 0;
  if (++count_ == batch_) Flush();
  return true;
}

void PacketSender::Flush() {
  if (count_ == 0) return;
  if (fd_ < 0) {
    errors_ += count_;
    count_ = 0;
    return;
  }
  for (size_t i = 0; i < count_; ++i) {
    iov_[i].iov_base = buffers_.data() + i * stride_;
    iov_[i].iov_len = lengths_[i];
    msghdr& h = msgs_[i].msg_hdr;
    std::memset(&h, 0, sizeof h);
    h.msg_iov = &iov_[i];
    h.msg_iovlen = 1;
    h.msg_name = &to_[i];
    h.msg_namelen = sizeof(sockaddr_ll);
  }
  SendEach(
      fd_, msgs_.data(), count_, &syscalls_,
      [this](size_t first, size_t n) {
        for (size_t i = first; i < first + n; ++i) {
          segments_ += seg_counts_[i];
          if (gso_[i]) ++gso_packets_;
        }
        packets_ += n;
      },
      [this](size_t i, int err) {
        last_error_ = err;
        // A header the kernel will not take: the routed path from now on
        // (the packets lost here are the connection's to recover).
        if (err == EINVAL || err == EOPNOTSUPP || err == EPROTONOSUPPORT) refused_ = true;
        // The interface went away: forget its address, so that Reaches()
        // fails for it and its connections take the routed path.
        if (err == ENXIO || err == ENODEV) local_.erase(reinterpret_cast<const sockaddr_ll*>(&to_[i])->sll_ifindex);
        ++errors_;
      });
  count_ = 0;
}

}  // namespace tcp
}  // namespace rqcast

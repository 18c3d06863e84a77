// rqcast — the user-space TCP's two sockets, the only code under native/tcp
// that talks to the kernel (uSockets' rule: syscalls in one place).
//
// Receive: one AF_PACKET socket (SOCK_DGRAM, ETH_P_IP: packets from the IP
// header on, every interface) with a classic BPF filter that keeps IPv4 TCP
// to port P (and address A unless A is 0.0.0.0), unfragmented; only
// PACKET_HOST packets are handed on (not the copies of what this host
// sends, nor other hosts' traffic a promiscuous interface shows).
// PACKET_AUXDATA tells whether the kernel vouches for the TCP checksum
// (veth and lo hand over CHECKSUM_PARTIAL packets whose checksum field is
// not filled in): then the parser need not check it. Read with recvmmsg.
//
// Send: one socket(AF_INET, SOCK_RAW, IPPROTO_RAW) (IP_HDRINCL implied):
// whole IPv4 + TCP packets built by the caller, sent with sendmmsg in
// batches, never blocking (a full queue drops; TCP retransmits).
//
// Send, the GSO path (PacketSender): one AF_PACKET socket (SOCK_RAW, no
// protocol: it receives nothing) with PACKET_VNET_HDR: each packet is a
// virtio_net_hdr, an Ethernet header (to the next hop a connection's SYN
// came from, from the interface's own address) and a train of segments
// (segment_train.h) the kernel or the device cuts at gso_size, with the TCP
// checksum offloaded. A kernel that refuses the option, or a send that
// refuses the header, leaves the IPPROTO_RAW path for everything.
//
// With A = 0.0.0.0 the filter cannot tell the host's addresses from others:
// on a host that forwards, a PACKET_HOST packet routed through it to port P
// would be taken too. Give the address on such hosts.
//
// The host's own stack also sees the segments and would answer them with
// RSTs (no socket listens on P): the nftables rule that drops them before
// its input hook is the TypeScript side's (lib/transport/tcp/host-filter.ts).
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "tcp/segment.h"
#include "tcp/segment_train.h"

namespace rqcast {
namespace tcp {

// One received packet: its IP bytes and whether the kernel checked (or will
// not need) the TCP checksum.
struct RawPacket {
  const uint8_t* data = nullptr;
  size_t len = 0;
  bool checksum_trusted = false;
  bool loopback = false;  // arrived on a loopback device
  // What the socket said of the frame: interface, link type, its source
  // address (UsableLink decides whether replies may go back that way).
  int ifindex = 0;
  uint16_t link_type = 0;
  uint8_t addr_len = 0;
  uint8_t addr[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  // When the kernel queued it (CLOCK_REALTIME, ns), with EnableTimestamps
  // only; 0 otherwise.
  uint64_t rx_realtime_ns = 0;
};

// Binds (never listens on) a kernel TCP socket to addr:port, so that no
// other program of the host takes the port and a taken one is refused:
// 0 with *fd set, EADDRINUSE, EADDRNOTAVAIL (not an address of the host).
// SYNs that reach this socket would get RSTs; the nftables rule drops them
// before it sees them.
int ReservePort(uint32_t addr, uint16_t port, int* fd);

class RawReceiver {
 public:
  // `batch` packets per recvmmsg, each up to `max_packet` bytes (a GRO
  // aggregate can reach 64 KiB).
  RawReceiver(size_t batch = 64, size_t max_packet = 65536);
  ~RawReceiver();
  RawReceiver(const RawReceiver&) = delete;
  RawReceiver& operator=(const RawReceiver&) = delete;

  // Opens and filters the socket (addr, port in host order; addr 0: any).
  // 0 or an errno value (EPERM without CAP_NET_RAW).
  int Open(uint32_t addr, uint16_t port, int rcvbuf_bytes = 8 << 20);
  void Close();
  int fd() const { return fd_; }
  // SO_TIMESTAMPNS: each packet says when the kernel queued it (the
  // service's trace measures how long an ACK waited for the thread).
  bool EnableTimestamps();

  // One recvmmsg, not waiting: the packets it got (pointers into this
  // object's buffers, valid until the next call). 0 when none is queued;
  // *err is set on an error other than EAGAIN.
  size_t Receive(std::vector<RawPacket>* out, int* err);

  uint64_t received() const { return received_; }
  uint64_t not_host() const { return not_host_; }    // other packet types
  uint64_t truncated() const { return truncated_; }

 private:
  int fd_ = -1;
  size_t batch_, max_packet_;
  std::vector<uint8_t> buffers_, control_;
  std::vector<struct mmsghdr> msgs_;
  std::vector<struct iovec> iov_;
  std::vector<struct sockaddr_storage> from_;
  uint64_t received_ = 0, not_host_ = 0, truncated_ = 0;
};

class RawSender {
 public:
  // Up to `batch` packets of `max_packet` bytes wait for one sendmmsg.
  RawSender(size_t batch = 64, size_t max_packet = 65535);
  ~RawSender();
  RawSender(const RawSender&) = delete;
  RawSender& operator=(const RawSender&) = delete;

  int Open(int sndbuf_bytes = 4 << 20);
  void Close();
  int fd() const { return fd_; }

  // Room for the next packet (max_packet bytes); Commit(len, dst) queues
  // it and sends the batch when it is full.
  uint8_t* Slot() { return buffers_.data() + count_ * max_packet_; }
  size_t slot_size() const { return max_packet_; }
  void Commit(size_t len, uint32_t dst_addr);
  // Sends what is queued.
  void Flush();

  uint64_t packets() const { return packets_; }
  uint64_t errors() const { return errors_; }    // packets the kernel refused
  uint64_t syscalls() const { return syscalls_; }
  int last_error() const { return last_error_; }

 private:
  int fd_ = -1;
  size_t batch_, max_packet_, count_ = 0;
  std::vector<uint8_t> buffers_;
  std::vector<size_t> lengths_;
  std::vector<uint32_t> dsts_;
  std::vector<struct mmsghdr> msgs_;
  std::vector<struct iovec> iov_;
  std::vector<struct sockaddr_storage> to_;
  uint64_t packets_ = 0, errors_ = 0, syscalls_ = 0;
  int last_error_ = 0;
};

class PacketSender {
 public:
  // Bytes in front of the IPv4 packet: virtio_net_hdr (10) + Ethernet (14).
  static constexpr size_t kVnetHeader = 10, kLinkHeader = 14;
  static constexpr size_t kHeadroom = kVnetHeader + kLinkHeader;
  // Up to `batch` packets of up to max_ip_packet IPv4 bytes per sendmmsg.
  PacketSender(size_t batch = 32, size_t max_ip_packet = 65535);
  ~PacketSender();
  PacketSender(const PacketSender&) = delete;
  PacketSender& operator=(const PacketSender&) = delete;

  // 0, or the errno of the socket or of PACKET_VNET_HDR (then the caller
  // keeps to RawSender).
  int Open(int sndbuf_bytes = 4 << 20);
  void Close();
  bool usable() const { return fd_ >= 0 && !refused_; }
  // The kernel refused a packet's virtio_net_hdr (EINVAL, EOPNOTSUPP...):
  // the path is off from then on.
  bool refused() const { return refused_; }

  // Whether a packet can be addressed to link (its interface's own address
  // known; looked up once per interface).
  bool Reaches(const LinkAddress& link) {
    uint8_t mac[6];
    return usable() && link.ifindex > 0 && LocalAddress(link.ifindex, mac);
  }
  // Room for the next IPv4 packet; Commit queues it, sent to link.
  uint8_t* Slot() { return buffers_.data() + count_ * stride_ + kHeadroom; }
  size_t slot_size() const { return max_ip_; }
  // False (nothing queued, counted in errors) when the interface's own
  // address cannot be had.
  bool Commit(size_t ip_len, const LinkAddress& link, const GsoLayout& layout);
  void Flush();

  uint64_t packets() const { return packets_; }     // sent, GSO or not
  uint64_t gso_packets() const { return gso_packets_; }
  uint64_t segments() const { return segments_; }   // TCP segments in what was sent
  uint64_t errors() const { return errors_; }       // packets the kernel refused
  uint64_t syscalls() const { return syscalls_; }
  int last_error() const { return last_error_; }

 private:
  bool LocalAddress(int ifindex, uint8_t mac[6]);

  int fd_ = -1;
  bool refused_ = false;
  size_t batch_, max_ip_, stride_, count_ = 0;
  std::vector<uint8_t> buffers_;
  std::vector<size_t> lengths_;
  std::vector<uint32_t> seg_counts_;
  std::vector<bool> gso_;
  std::vector<struct mmsghdr> msgs_;
  std::vector<struct iovec> iov_;
  std::vector<struct sockaddr_storage> to_;
  // Interface index -> its hardware address, looked up once (bounded: an
  // index is only ever one a received SYN came in on).
  std::unordered_map<int, std::array<uint8_t, 6>> local_;
  uint64_t packets_ = 0, gso_packets_ = 0, segments_ = 0, errors_ = 0, syscalls_ = 0;
  int last_error_ = 0;
};

}  // namespace tcp
}  // namespace rqcast

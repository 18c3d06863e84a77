/*
 * Per-packet loss for the namespace testbed (test/support/packet-loss.ts):
 * an XDP program on a client's veth that drops LOSS_PCT % of the UDP
 * datagrams (IPv4 or IPv6) longer than MIN_UDP bytes (UDP header
 * included), each one independently, and passes everything else. Built
 * with TCP_SPORT, it drops that share of the TCP segments from that source
 * port instead (the server's side of a connection), and passes all UDP.
 *
 * XDP runs on each frame as it reaches the veth, before GRO: a sender's
 * GSO datagram is cut into its packets on the way in (the kernel does not
 * pass GSO datagrams to a veth with an XDP program), so the program drops
 * packets as a lossy link would, and GRO then merges what is left for a
 * socket that asked for it (UDP_GRO). An nftables rule on the input hook
 * sees the datagrams after GRO, or a GSO datagram whole on loopback and
 * veth, and drops whole runs.
 *
 * Built with `clang -O2 -target bpf -DLOSS_PCT=N -DMIN_UDP=N` (or
 * `-DTCP_SPORT=N`); no headers beyond the kernel's UAPI.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#ifndef LOSS_PCT
#error "LOSS_PCT (0..100) must be defined"
#endif
#ifndef MIN_UDP
#define MIN_UDP 0
#endif

/* The kernel's helper number 7: a pseudo-random u32 (per CPU). */
static unsigned int (*get_prandom_u32)(void) = (void *)BPF_FUNC_get_prandom_u32;

/* A 16-bit constant in network byte order (the BPF target takes the host's order). */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define BE16(x) ((unsigned short)((((x) & 0xff) << 8) | (((x) >> 8) & 0xff)))
#else
#define BE16(x) ((unsigned short)(x))
#endif

/* Whether this frame is one the program may drop: the transport header at `l4` of protocol `proto`. */
static int candidate(unsigned char *l4, unsigned char *end, unsigned char proto) {
#ifdef TCP_SPORT
  struct tcphdr *tcp = (struct tcphdr *)l4;
  if (proto != IPPROTO_TCP || (unsigned char *)(tcp + 1) > end) return 0;
  return tcp->source == BE16(TCP_SPORT);
#else
  struct udphdr *udp = (struct udphdr *)l4;
  if (proto != IPPROTO_UDP || (unsigned char *)(udp + 1) > end) return 0;
  return BE16(udp->len) > MIN_UDP;
#endif
}

__attribute__((section("xdp"), used)) int rqcast_packet_loss(struct xdp_md *ctx) {
  unsigned char *data = (unsigned char *)(long)ctx->data;
  unsigned char *end = (unsigned char *)(long)ctx->data_end;
  struct ethhdr *eth = (struct ethhdr *)data;
  unsigned char *l4;
  unsigned char proto;
  if ((unsigned char *)(eth + 1) > end) return XDP_PASS;
  if (eth->h_proto == BE16(ETH_P_IP)) {
    struct iphdr *ip = (struct iphdr *)(eth + 1);
    if ((unsigned char *)(ip + 1) > end) return XDP_PASS;
    /* A later fragment carries no transport header. */
    if (ip->frag_off & BE16(0x1fff)) return XDP_PASS;
    l4 = (unsigned char *)ip + ip->ihl * 4;
    proto = ip->protocol;
  } else if (eth->h_proto == BE16(ETH_P_IPV6)) {
    struct ipv6hdr *ip6 = (struct ipv6hdr *)(eth + 1);
    if ((unsigned char *)(ip6 + 1) > end) return XDP_PASS;
    l4 = (unsigned char *)(ip6 + 1);
    proto = ip6->nexthdr;
  } else {
    return XDP_PASS;
  }
  if (!candidate(l4, end, proto)) return XDP_PASS;
  return get_prandom_u32() % 100 < LOSS_PCT ? XDP_DROP : XDP_PASS;
}

char _license[] __attribute__((section("license"), used)) = "GPL";

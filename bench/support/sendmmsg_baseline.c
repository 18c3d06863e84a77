/*
 * Baseline and sinks for bench/replicate.ts (compiled at bench time with
 * cc -O2).
 *
 *   sendmmsg_baseline sinks COUNT
 *       Binds COUNT UDP sockets on 0.0.0.0 (ephemeral ports), prints the
 *       ports comma-separated on one line, and holds them, never reading,
 *       until stdin closes: datagrams beyond the receive buffer are dropped
 *       by the kernel, at the cost every sender pays alike.
 *
 *   sendmmsg_baseline send SECONDS PAYLOAD DESTINATIONS PORTS
 *       The raw loop the replicator is measured against: one thread, one
 *       blocking socket, plain sendmmsg (no GSO) in batches of 1024, each
 *       of 64 ready packets of PAYLOAD bytes to each destination in turn.
 *       Destination i is 127.0.0.(1 + i / nports) : PORTS[i % nports], the
 *       same spread bench/replicate.ts gives the replicator. Prints one
 *       JSON object: datagrams sent, wall and CPU seconds, errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 1024
#define PACKETS 64

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int sinks(int count) {
  for (int i = 0; i < count; i++) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return perror("socket"), 1;
    int rcv = 256 << 10; /* small: full within the warm-up, then every datagram is a cheap drop */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr*)&a, sizeof a) != 0) return perror("bind"), 1;
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr*)&a, &len);
    printf("%s%u", i ? "," : "", ntohs(a.sin_port));
  }
  printf("\n");
  fflush(stdout);
  char buf[256];
  while (read(0, buf, sizeof buf) > 0) {
  }
  return 0;
}

static int send_loop(double seconds, int payload, int ndest, const char* ports_arg) {
  int ports[1024], nports = 0;
  char* list = strdup(ports_arg);
  for (char* tok = strtok(list, ","); tok && nports < 1024; tok = strtok(NULL, ","))
    ports[nports++] = atoi(tok);
  if (nports == 0 || ndest / nports > 253) return fprintf(stderr, "bad ports\n"), 2;

  struct sockaddr_in* dests = calloc((size_t)ndest, sizeof *dests);
  for (int i = 0; i < ndest; i++) {
    dests[i].sin_family = AF_INET;
    dests[i].sin_port = htons((uint16_t)ports[i % nports]);
    dests[i].sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)(1 + i / nports));
  }
  unsigned char* pk = malloc((size_t)PACKETS * payload);
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < (size_t)PACKETS * payload; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    pk[i] = (unsigned char)x;
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int snd = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);

  static struct mmsghdr msgs[BATCH];
  static struct iovec iov[BATCH];
  uint64_t sent = 0, errors = 0;
  unsigned m = 0, p = 0;
  int d = 0;
  double t0 = now_s(), c0 = cpu_s(), t = t0;
  while (t - t0 < seconds) {
    /* Fill one batch: packet p to destinations d.., then the next packet. */
    for (m = 0; m < BATCH; m++) {
      iov[m].iov_base = pk + (size_t)p * payload;
      iov[m].iov_len = (size_t)payload;
      memset(&msgs[m], 0, sizeof msgs[m]);
      msgs[m].msg_hdr.msg_name = &dests[d];
      msgs[m].msg_hdr.msg_namelen = sizeof dests[d];
      msgs[m].msg_hdr.msg_iov = &iov[m];
      msgs[m].msg_hdr.msg_iovlen = 1;
      if (++d == ndest) {
        d = 0;
        p = (p + 1) % PACKETS;
      }
    }
    unsigned off = 0;
    while (off < m) {
      int r = sendmmsg(fd, msgs + off, m - off, 0);
      if (r > 0) {
        off += (unsigned)r;
        sent += (unsigned)r;
      } else if (r < 0 && errno == EINTR) {
        continue;
      } else {
        errors++;
        off++;
      }
    }
    t = now_s();
  }
  double wall = now_s() - t0, cpu = cpu_s() - c0;
  printf("{\"datagrams\":%llu,\"seconds\":%.6f,\"cpu_seconds\":%.6f,\"errors\":%llu}\n",
         (unsigned long long)sent, wall, cpu, (unsigned long long)errors);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "sinks") == 0) return sinks(atoi(argv[2]));
  if (argc == 6 && strcmp(argv[1], "send") == 0)
    return send_loop(atof(argv[2]), atoi(argv[3]), atoi(argv[4]), argv[5]);
  fprintf(stderr,
          "usage: %s sinks COUNT | send SECONDS PAYLOAD DESTINATIONS PORTS\n",
          argv[0]);
  return 2;
}

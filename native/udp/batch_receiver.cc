#include "udp/batch_receiver.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstring>

namespace rqcast {
namespace udp {

void write_source_record(const sockaddr_storage& from, uint8_t* out) {
  std::memset(out, 0, kSourceRecordSize);
  if (from.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&from);
    out[0] = 4;
    std::memcpy(out + 2, &a->sin_port, 2);
    std::memcpy(out + 4, &a->sin_addr, 4);
  } else if (from.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&from);
    out[0] = 6;
    std::memcpy(out + 2, &a->sin6_port, 2);
    std::memcpy(out + 4, &a->sin6_addr, 16);
  }
}

// A coalesced message holds at most 64 segments and 65535 bytes (the
// kernel's UDP_MAX_SEGMENTS and the UDP length field).
constexpr uint32_t kGroSlot = 65536;
// Message buffers with GRO: 64 KiB each, touched only as far as filled.
constexpr uint32_t kGroMessages = 64;

int BatchReceiver::open(const Endpoint& local, int receive_buffer_bytes,
                        uint32_t max_datagram, uint32_t batch, bool gro,
                        bool reuse_address) {
  if (max_datagram == 0 || max_datagram > 65535 || batch == 0 ||
      batch > kMaxBatch)
    return EINVAL;
  int rc = waker_.open();
  if (rc != 0) return rc;
  rc = socket_.open_bound(local, receive_buffer_bytes, reuse_address);
  if (rc != 0) return rc;
  // Only the multicast groups this socket joins: by Linux's default a
  // socket bound to a wildcard address also gets every group any other
  // socket of this host joined on its port, so a receiver that never
  // joined, or that left, would go on hearing the group. Kernels without
  // the option (IPv6 before 4.20) keep that default.
  socket_.set_multicast_all(false);
  max_datagram_ = max_datagram;
  batch_ = batch;
  gro_ = gro && socket_.enable_gro();
  // One spare byte per slot: a datagram that fills it is longer than
  // max_datagram (MSG_TRUNC says so too). Left uninitialised, so only
  // the pages datagrams actually reach are ever touched.
  slot_ = gro_ ? kGroSlot : max_datagram + 1;
  messages_ = gro_ ? std::min(batch, kGroMessages) : batch;
  scratch_.reset(new uint8_t[static_cast<size_t>(slot_) * messages_]);
  control_.reset(new uint8_t[kGroControlSize * messages_]);
  msgs_.resize(messages_);
  iov_.resize(messages_);
  from_.resize(messages_);
  return 0;
}

void BatchReceiver::stop() { waker_.wake(); }

int BatchReceiver::receive_once(ReceivedBatch* out, uint32_t room,
                                int* err) {
  room = std::min(room, messages_);
  for (uint32_t i = 0; i < room; ++i) {
    iov_[i].iov_base = scratch_.get() + static_cast<size_t>(i) * slot_;
    iov_[i].iov_len = slot_;
    std::memset(&msgs_[i], 0, sizeof msgs_[i]);
    msgs_[i].msg_hdr.msg_iov = &iov_[i];
    msgs_[i].msg_hdr.msg_iovlen = 1;
    msgs_[i].msg_hdr.msg_name = &from_[i];
    msgs_[i].msg_hdr.msg_namelen = sizeof from_[i];
    if (gro_) {
      msgs_[i].msg_hdr.msg_control = control_.get() + i * kGroControlSize;
      msgs_[i].msg_hdr.msg_controllen = kGroControlSize;
    }
  }
  int n = socket_.receive_batch(msgs_.data(), room, err);
  if (n <= 0) return n;
  int taken = 0;
  for (int i = 0; i < n; ++i) {
    const uint32_t len = msgs_[i].msg_len;
    const uint8_t* p = scratch_.get() + static_cast<size_t>(i) * slot_;
    // A coalesced message: segments of `seg` bytes, the last one shorter
    // or equal (the kernel only merges such runs).
    uint32_t seg = gro_ ? read_gro_segment_size(msgs_[i].msg_hdr) : 0;
    if (seg == 0 || seg >= len) seg = len;
    else coalesced_.fetch_add(1, std::memory_order_relaxed);
    if (msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) {
      ++out->truncated;
      ++taken;
      continue;
    }
    // At least once: an empty datagram is a datagram.
    uint32_t at = 0;
    do {
      const uint32_t l = std::min(seg, len - at);
      ++taken;
      if (l > max_datagram_) {
        ++out->truncated;
      } else {
        out->data.insert(out->data.end(), p + at, p + at + l);
        out->lengths.push_back(l);
        size_t rec = out->sources.size();
        out->sources.resize(rec + kSourceRecordSize);
        write_source_record(from_[i], out->sources.data() + rec);
      }
      at += seg;
    } while (at < len);
  }
  return taken;
}

int BatchReceiver::receive(ReceivedBatch* out) {
  while (true) {
    int err = 0;
    int w = socket_.wait_readable(waker_, &err);
    if (w == 0) return ECANCELED;
    if (w < 0) return err;
    int n = receive_once(out, batch_, &err);
    if (n < 0) return err;
    if (n == 0) continue;  // readable but taken (or a checksum failure)
    uint32_t taken = static_cast<uint32_t>(n);
    const uint64_t gather_ns = gather_ns_.load(std::memory_order_relaxed);
    if (gather_ns == 0 || taken >= batch_) return 0;
    // Sleep out the window on the waker alone (the socket's readiness
    // would wake us per datagram), then take what queued meanwhile. A
    // stop() ends the sleep early; the next receive() sees it.
    pollfd p = {waker_.fd(), POLLIN, 0};
    timespec ts = {static_cast<time_t>(gather_ns / 1000000000u),
                   static_cast<long>(gather_ns % 1000000000u)};
    ::ppoll(&p, 1, &ts, nullptr);
    // An error here leaves the datagrams already taken; a lasting one
    // comes back from the next receive().
    receive_once(out, batch_ - taken, &err);
    return 0;
  }
}

}  // namespace udp
}  // namespace rqcast

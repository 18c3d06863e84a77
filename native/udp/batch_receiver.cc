#include "udp/batch_receiver.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <time.h>

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

int BatchReceiver::open(const Endpoint& local, int receive_buffer_bytes,
                        uint32_t max_datagram, uint32_t batch) {
  if (max_datagram == 0 || max_datagram > 65535 || batch == 0 ||
      batch > kMaxBatch)
    return EINVAL;
  int rc = waker_.open();
  if (rc != 0) return rc;
  rc = socket_.open_bound(local, receive_buffer_bytes);
  if (rc != 0) return rc;
  max_datagram_ = max_datagram;
  batch_ = batch;
  // One spare byte per slot: a datagram that fills it is longer than
  // max_datagram (MSG_TRUNC says so too). Left uninitialised, so only
  // the pages datagrams actually reach are ever touched.
  const size_t slot = static_cast<size_t>(max_datagram) + 1;
  scratch_.reset(new uint8_t[slot * batch]);
  msgs_.resize(batch);
  iov_.resize(batch);
  from_.resize(batch);
  return 0;
}

void BatchReceiver::stop() { waker_.wake(); }

int BatchReceiver::receive_once(ReceivedBatch* out, uint32_t room,
                                int* err) {
  const size_t slot = static_cast<size_t>(max_datagram_) + 1;
  for (uint32_t i = 0; i < room; ++i) {
    iov_[i].iov_base = scratch_.get() + i * slot;
    iov_[i].iov_len = slot;
    std::memset(&msgs_[i], 0, sizeof msgs_[i]);
    msgs_[i].msg_hdr.msg_iov = &iov_[i];
    msgs_[i].msg_hdr.msg_iovlen = 1;
    msgs_[i].msg_hdr.msg_name = &from_[i];
    msgs_[i].msg_hdr.msg_namelen = sizeof from_[i];
  }
  int n = socket_.receive_batch(msgs_.data(), room, err);
  if (n <= 0) return n;
  for (int i = 0; i < n; ++i) {
    uint32_t len = msgs_[i].msg_len;
    if ((msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) || len > max_datagram_) {
      ++out->truncated;
      continue;
    }
    const uint8_t* p = scratch_.get() + i * slot;
    out->data.insert(out->data.end(), p, p + len);
    out->lengths.push_back(len);
    size_t at = out->sources.size();
    out->sources.resize(at + kSourceRecordSize);
    write_source_record(from_[i], out->sources.data() + at);
  }
  return n;
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
    if (gather_ns_ == 0 || taken >= batch_) return 0;
    // Sleep out the window on the waker alone (the socket's readiness
    // would wake us per datagram), then take what queued meanwhile. A
    // stop() ends the sleep early; the next receive() sees it.
    pollfd p = {waker_.fd(), POLLIN, 0};
    timespec ts = {static_cast<time_t>(gather_ns_ / 1000000000u),
                   static_cast<long>(gather_ns_ % 1000000000u)};
    ::ppoll(&p, 1, &ts, nullptr);
    // An error here leaves the datagrams already taken; a lasting one
    // comes back from the next receive().
    receive_once(out, batch_ - taken, &err);
    return 0;
  }
}

}  // namespace udp
}  // namespace rqcast

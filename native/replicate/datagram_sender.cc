#include "replicate/datagram_sender.h"

#include <errno.h>

namespace rqcast {
namespace replicate {

DatagramSender::DatagramSender(const DatagramOptions& options)
    : options_(options) {
  if (options_.max_batch == 0 || options_.max_batch > udp::kMaxBatch)
    options_.max_batch = udp::kMaxBatch;
  if (options_.max_segments == 0 || options_.max_segments > udp::kMaxGsoSegments)
    options_.max_segments = udp::kMaxGsoSegments;
}

int DatagramSender::open() {
  int rc = v4_.open(AF_INET, options_.send_buffer_bytes, options_.send_timeout_ms);
  if (rc != 0) return rc;
  if (v6_.open(AF_INET6, options_.send_buffer_bytes, options_.send_timeout_ms) != 0)
    v6_.close();
  allocate(v4_.gso_supported());
  return 0;
}

void DatagramSender::open_for(const udp::Socket& own) {
  allocate(own.gso_supported());
}

void DatagramSender::allocate(bool gso_supported) {
  gso_supported_ = gso_supported;
  gso_active_.store(options_.gso && gso_supported_);
  if (!run_) run_.reset(new DatagramRun());
  msgs_.resize(options_.max_batch);
  msg_segs_.resize(options_.max_batch);
  msg_bytes_.resize(options_.max_batch);
}

void DatagramSender::close() {
  v4_.close();
  v6_.close();
}

bool DatagramSender::has_family(int family) const {
  if (family == AF_INET) return v4_.is_open();
  if (family == AF_INET6) return v6_.is_open();
  return false;
}

const DatagramRun& DatagramSender::group(const Run& r) {
  // Every segment of one datagram has the group's first size, except a
  // shorter last one (the kernel's rule for UDP_SEGMENT).
  DatagramRun& run = *run_;
  const bool gso = gso_active();
  run.groups = 0;
  run.packets = r.count;
  uint32_t i = 0;
  while (i < r.count) {
    uint32_t seg = r.length(i);
    uint32_t g = 1;
    uint64_t total = seg;
    if (gso) {
      while (i + g < r.count && g < options_.max_segments) {
        uint32_t l = r.length(i + g);
        if (l > seg || total + l > udp::kMaxDatagramPayload) break;
        total += l;
        ++g;
        if (l < seg) break;
      }
    }
    uint32_t k = run.groups++;
    run.first[k] = i;
    run.segs[k] = g;
    run.bytes[k] = total;
    for (uint32_t j = 0; j < g; ++j) {
      run.iov[i + j].iov_base = const_cast<uint8_t*>(r.packet(i + j));
      run.iov[i + j].iov_len = r.length(i + j);
    }
    if (g > 1) udp::write_gso_control(run.control[k], static_cast<uint16_t>(seg));
    i += g;
  }
  return run;
}

void DatagramSender::send(udp::Socket& s, DestinationSet& set,
                          const DatagramRun& run, ChannelCounters& counters) {
  if (!s.is_open()) {
    counters.errors.add(set.size() * run.packets);
    return;
  }
  const size_t nd = set.size();
  const unsigned cap = options_.max_batch;
  unsigned m = 0;
  auto add = [&](size_t d, iovec* iov, uint32_t g, void* control,
                 size_t controllen, uint64_t bytes) {
    msghdr& h = msgs_[m].msg_hdr;
    h.msg_name = const_cast<sockaddr_storage*>(&set[d].addr);
    h.msg_namelen = set[d].len;
    h.msg_iov = iov;
    h.msg_iovlen = g;
    h.msg_control = control;
    h.msg_controllen = controllen;
    h.msg_flags = 0;
    msg_segs_[m] = g;
    msg_bytes_[m] = bytes;
    if (++m == cap) {
      flush(s, set, m, counters);
      m = 0;
    }
  };
  // Packet-major: each destination gets the groups in order.
  for (uint32_t k = 0; k < run.groups; ++k) {
    iovec* iov = const_cast<iovec*>(&run.iov[run.first[k]]);
    const uint32_t g = run.segs[k];
    void* control = g > 1 ? const_cast<uint8_t*>(run.control[k]) : nullptr;
    const size_t controllen = g > 1 ? udp::kGsoControlSize : 0;
    for (size_t d = 0; d < nd; ++d) {
      if (g > 1 && set.plain_only(d)) {
        for (uint32_t j = 0; j < g; ++j) add(d, iov + j, 1, nullptr, 0, iov[j].iov_len);
      } else {
        add(d, iov, g, control, controllen, run.bytes[k]);
      }
    }
  }
  if (m) flush(s, set, m, counters);
}

// A GSO message the kernel would not take. EIO/ENOPROTOOPT: the device
// (or kernel) cannot segment at all, so GSO is off from now on. EINVAL or
// EMSGSIZE: this route's MTU is smaller than a segment (udp_send_skb checks
// gso_size against the path's fragment size), so this message is sent plain,
// the destination gets plain datagrams from then on (no failing call per
// run), and GSO stays on for everyone else.
static bool gso_refused(int err) {
  return err == EIO || err == ENOPROTOOPT || err == EINVAL || err == EMSGSIZE;
}

void DatagramSender::flush(udp::Socket& s, DestinationSet& set, unsigned count,
                           ChannelCounters& counters) {
  const uint32_t* segs = msg_segs_.data();
  const uint64_t* bytes = msg_bytes_.data();
  unsigned off = 0;
  uint64_t calls = 0, dgrams = 0, nbytes = 0, gsos = 0;
  while (off < count) {
    if (segs[off] > 1 && !gso_active()) {
      // GSO was switched off earlier in this run.
      send_segments_plain(s, msgs_[off].msg_hdr, counters);
      ++off;
      continue;
    }
    int err = 0;
    int r = s.send_batch(&msgs_[off], count - off, &err);
    ++calls;
    if (r > 0) {
      for (unsigned j = off; j < off + static_cast<unsigned>(r); ++j) {
        dgrams += segs[j];
        nbytes += bytes[j];
        gsos += segs[j] > 1;
      }
      off += static_cast<unsigned>(r);
      continue;
    }
    if (err == EINTR) continue;
    if (segs[off] > 1 && gso_refused(err)) {
      gso_fallbacks_.fetch_add(1, std::memory_order_relaxed);
      if (err == EIO || err == ENOPROTOOPT) {
        gso_active_.store(false, std::memory_order_relaxed);
      } else {
        size_t d = set.index_of_name(msgs_[off].msg_hdr.msg_name);
        if (d < set.size()) set.set_plain_only(d);
      }
      send_segments_plain(s, msgs_[off].msg_hdr, counters);
      ++off;
      continue;
    }
    counters.count_error(err, segs[off]);
    off += 1;
  }
  counters.syscalls.add(calls);
  counters.datagrams.add(dgrams);
  counters.bytes.add(nbytes);
  counters.gso_sends.add(gsos);
  syscalls_.fetch_add(calls, std::memory_order_relaxed);
}

void DatagramSender::send_segments_plain(udp::Socket& s, const msghdr& h,
                                         ChannelCounters& counters) {
  // One plain datagram per segment of the refused GSO message.
  plain_.clear();
  for (size_t k = 0; k < h.msg_iovlen; ++k) {
    struct mmsghdr p{};
    p.msg_hdr.msg_name = h.msg_name;
    p.msg_hdr.msg_namelen = h.msg_namelen;
    p.msg_hdr.msg_iov = &h.msg_iov[k];
    p.msg_hdr.msg_iovlen = 1;
    plain_.push_back(p);
  }
  size_t off = 0;
  uint64_t calls = 0, dgrams = 0, nbytes = 0;
  while (off < plain_.size()) {
    int err = 0;
    int r = s.send_batch(&plain_[off], static_cast<unsigned>(plain_.size() - off), &err);
    ++calls;
    if (r > 0) {
      for (size_t j = off; j < off + static_cast<size_t>(r); ++j) {
        dgrams += 1;
        nbytes += plain_[j].msg_hdr.msg_iov->iov_len;
      }
      off += static_cast<size_t>(r);
      continue;
    }
    if (err == EINTR) continue;
    counters.count_error(err, 1);
    off += 1;
  }
  counters.syscalls.add(calls);
  counters.datagrams.add(dgrams);
  counters.bytes.add(nbytes);
  syscalls_.fetch_add(calls, std::memory_order_relaxed);
}

int DatagramSender::send_one(const udp::Endpoint& to, const uint8_t* data,
                             size_t len) {
  // Counted as one call either way, as the channel's account counts it.
  syscalls_.fetch_add(1, std::memory_order_relaxed);
  if (!has_family(to.family())) return EAFNOSUPPORT;
  return socket(to.family()).send_one(to, data, len);
}

}  // namespace replicate
}  // namespace rqcast

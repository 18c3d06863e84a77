#include "replicate/multicast_sink.h"

#include <errno.h>

namespace rqcast {
namespace replicate {

int check_multicast_config(const MulticastConfig& c, MulticastStage* failed) {
  MulticastStage stage = MulticastStage::kNone;
  const int family = c.group.family();
  if ((family != AF_INET && family != AF_INET6) || !udp::is_multicast(c.group) ||
      c.group.port() == 0)
    stage = MulticastStage::kGroup;
  else if (c.hops < 0 || c.hops > 255)
    stage = MulticastStage::kHops;
  else if (family == AF_INET6 && c.interface.address.s_addr != 0)
    stage = MulticastStage::kInterface;  // IPv6 names the interface by index
  else if (c.source.family() != 0 &&
           (c.source.family() != family || udp::is_multicast(c.source) ||
            udp::is_unspecified(c.source)))
    stage = MulticastStage::kSource;
  if (failed) *failed = stage;
  return stage == MulticastStage::kNone ? 0 : EINVAL;
}

MulticastSink::MulticastSink(const MulticastConfig& config,
                             const DatagramOptions& options)
    : config_(config), options_(options), sender_(options) {}

int MulticastSink::open(MulticastStage* failed) {
  MulticastStage ignored;
  if (!failed) failed = &ignored;
  int rc = check_multicast_config(config_, failed);
  if (rc != 0) return rc;
  auto fail = [&](MulticastStage stage, int err) {
    socket_.close();
    *failed = stage;
    return err;
  };
  rc = socket_.open(config_.group.family(), options_.send_buffer_bytes,
                    options_.send_timeout_ms);
  if (rc != 0) return fail(MulticastStage::kSocket, rc);
  if ((rc = socket_.set_multicast_ttl(config_.hops)) != 0 ||
      (rc = socket_.set_multicast_loop(config_.loop)) != 0)
    return fail(MulticastStage::kSocket, rc);
  if (config_.interface.index != 0 || config_.interface.address.s_addr != 0) {
    rc = socket_.set_multicast_interface(config_.interface);
    if (rc != 0) return fail(MulticastStage::kInterface, rc);
  }
  if (config_.source.family() != 0) {
    // Port 0: the kernel picks one; only the address matters to receivers.
    udp::Endpoint local = config_.source;
    if (local.family() == AF_INET)
      reinterpret_cast<sockaddr_in*>(&local.addr)->sin_port = 0;
    else
      reinterpret_cast<sockaddr_in6*>(&local.addr)->sin6_port = 0;
    rc = socket_.bind(local);
    if (rc != 0) return fail(MulticastStage::kSource, rc);
  }
  sender_.open_for(socket_);
  group_.clear();
  group_.add(config_.group);
  *failed = MulticastStage::kNone;
  return 0;
}

uint32_t MulticastSink::send(const Run& run, ChannelCounters& counters) {
  if (!is_open() || run.count == 0) return run.count;
  sender_.send(socket_, group_, sender_.group(run), counters);
  return run.count;
}

}  // namespace replicate
}  // namespace rqcast

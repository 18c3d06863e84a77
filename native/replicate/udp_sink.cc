#include "replicate/udp_sink.h"

namespace rqcast {
namespace replicate {

uint32_t UdpSink::send(const Run& run, ChannelCounters& counters) {
  if (empty()) return run.count;
  // Grouped once for both families: kMaxDatagramPayload is the IPv4 bound,
  // so a group fits either.
  const DatagramRun& d = sender_.group(run);
  if (!dests_[0].empty()) sender_.send(sender_.socket(AF_INET), dests_[0], d, counters);
  if (!dests_[1].empty()) sender_.send(sender_.socket(AF_INET6), dests_[1], d, counters);
  return run.count;
}

}  // namespace replicate
}  // namespace rqcast

#include "replicate/tcp_sink.h"

namespace rqcast {
namespace replicate {

TcpSink::TcpSink(std::shared_ptr<tcp::FramePool> pool, std::shared_ptr<tcp::ReadyQueue> ready,
                 uint32_t channel, uint32_t connection)
    : pool_(std::move(pool)), ready_(std::move(ready)), channel_(channel), connection_(connection) {}

uint32_t TcpSink::send(const Run& run, ChannelCounters& counters) {
  if (run.count == 0 || pool_->detached()) return run.count;
  bool woke = false;
  const uint32_t taken = pool_->PushRun(
      channel_, run.count,
      [&run](uint32_t i, const uint8_t** p, size_t* len) {
        *p = run.packet(i);
        *len = run.length(i);
      },
      run.sole, &woke);
  if (woke) ready_->Push(connection_);
  // The packets copied in, per channel: what this connection will send of
  // the stream (a full pool evicts its oldest, counted by the pool).
  uint64_t bytes = 0;
  for (uint32_t i = 0; i < taken; ++i) bytes += run.length(i);
  counters.tcp_packets.add(taken);
  counters.tcp_bytes.add(bytes);
  // All of the run (copied, or dropped by a full pool and counted there);
  // fewer only when this connection is the channel's only receiver.
  return taken;
}

}  // namespace replicate
}  // namespace rqcast

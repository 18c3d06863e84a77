#include "replicate/tcp_sink.h"

namespace rqcast {
namespace replicate {

TcpSink::TcpSink(std::shared_ptr<tcp::FramePool> pool, std::shared_ptr<tcp::ReadyQueue> ready,
                 uint32_t channel, uint32_t connection)
    : pool_(std::move(pool)), ready_(std::move(ready)), channel_(channel), connection_(connection) {}

uint32_t TcpSink::send(const Run& run, ChannelCounters& counters) {
  if (run.count == 0 || pool_->detached()) return run.count;
  const bool woke = pool_->PushRun(channel_, run.count,
                                   [&run](uint32_t i, const uint8_t** p, size_t* len) {
                                     *p = run.packet(i);
                                     *len = run.length(i);
                                   });
  if (woke) ready_->Push(connection_);
  return run.count;  // taken: copied, or dropped by the pool and counted there
}

}  // namespace replicate
}  // namespace rqcast

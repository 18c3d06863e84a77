// rqcast — one user-space TCP connection as a sink of a channel: the
// channel's stream is copied into the connection's FramePool (tagged with
// the channel, for its block keys) and the TCP thread is woken; the
// connection sends from the pool at its own pace (its window, its
// congestion control), and the pool drops what arrives while it is full.
//
// So the sender thread never waits on the TCP thread (one mutex held for a
// run's copies) and a slow connection never slows the channel: send()
// takes the whole run — except when the connection is the channel's only
// receiver (Run::sole): then a full pool holds the stream back, and the
// pool wakes the engine once it has room (the connection paces its channel
// rather than have it encode symbols only to drop them). Once the connection is gone (its pool
// detached) the sink has no destination and takes runs without copying,
// until the service's remove_sink is applied.
#pragma once

#include <cstdint>
#include <memory>

#include "replicate/sink.h"
#include "tcp/frame_pool.h"
#include "tcp/ready_queue.h"

namespace rqcast {
namespace replicate {

class TcpSink : public Sink {
 public:
  TcpSink(std::shared_ptr<tcp::FramePool> pool, std::shared_ptr<tcp::ReadyQueue> ready,
          uint32_t channel, uint32_t connection);

  size_t destination_count() const override { return pool_->detached() ? 0 : 1; }
  uint32_t send(const Run& run, ChannelCounters& counters) override;

  uint32_t channel() const { return channel_; }

 private:
  std::shared_ptr<tcp::FramePool> pool_;
  std::shared_ptr<tcp::ReadyQueue> ready_;
  uint32_t channel_, connection_;
};

}  // namespace replicate
}  // namespace rqcast

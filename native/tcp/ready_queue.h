// rqcast — how other threads wake the TCP thread: an eventfd and the ids
// of connections whose FramePool got frames. Shared (shared_ptr) between
// the service and every TcpSink, so that a sink the engine still holds
// after the service stopped wakes nobody and touches live memory.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace rqcast {
namespace tcp {

class ReadyQueue {
 public:
  ReadyQueue();
  ~ReadyQueue();
  ReadyQueue(const ReadyQueue&) = delete;
  ReadyQueue& operator=(const ReadyQueue&) = delete;

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // Any thread: connection `id` may have frames; wakes the TCP thread.
  void Push(uint32_t id);
  // Any thread: wakes the TCP thread (commands queued elsewhere).
  void Wake();
  // TCP thread, when fd() is readable: clears the wake-up and takes the
  // ids pushed since the last call (at most one entry per Push).
  void Take(std::vector<uint32_t>* out);

 private:
  int fd_ = -1;
  std::atomic<bool> pending_{false};  // a wake-up is in the eventfd
  std::mutex mu_;
  std::vector<uint32_t> ids_;
};

}  // namespace tcp
}  // namespace rqcast

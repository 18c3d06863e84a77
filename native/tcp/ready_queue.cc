#include "tcp/ready_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

namespace rqcast {
namespace tcp {

ReadyQueue::ReadyQueue() { fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

ReadyQueue::~ReadyQueue() {
  if (fd_ >= 0) ::close(fd_);
}

void ReadyQueue::Push(uint32_t id) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    ids_.push_back(id);
  }
  Wake();
}

void ReadyQueue::Wake() {
  // One write until the TCP thread reads it: a burst of pushes is one
  // syscall.
  if (pending_.exchange(true, std::memory_order_acq_rel)) return;
  uint64_t one = 1;
  if (fd_ >= 0) (void)!::write(fd_, &one, sizeof one);
}

void ReadyQueue::Take(std::vector<uint32_t>* out) {
  uint64_t v;
  if (fd_ >= 0) (void)!::read(fd_, &v, sizeof v);
  // Cleared before the ids are taken: a push after this line writes again.
  pending_.store(false, std::memory_order_release);
  std::lock_guard<std::mutex> lk(mu_);
  out->swap(ids_);
  ids_.clear();
}

}  // namespace tcp
}  // namespace rqcast

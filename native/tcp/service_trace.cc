// rqcast — the TCP service thread's debug trace (see service_trace.h).
#include "tcp/service_trace.h"

#include <cstdlib>

namespace rqcast {
namespace tcp {

constexpr uint32_t ServiceTrace::kEdgesUs[];

ServiceTrace* ServiceTrace::FromEnvironment() {
  const char* path = std::getenv("RQCAST_TCP_TRACE");
  if (path == nullptr || *path == '\0') return nullptr;
  FILE* f = std::fopen(path, "a");
  return f ? new ServiceTrace(f) : nullptr;
}

ServiceTrace::~ServiceTrace() {
  Summary();
  std::fclose(f_);
}

namespace {
int Bucket(uint64_t ns, const uint32_t* edges_us, int buckets) {
  int b = 0;
  while (b < buckets - 1 && ns > uint64_t(edges_us[b]) * 1000) ++b;
  return b;
}

void PrintHistogram(FILE* f, const char* name, const uint64_t* counts, const uint32_t* edges_us,
                    int buckets) {
  std::fprintf(f, " %s", name);
  for (int b = 0; b < buckets; ++b) {
    if (b < buckets - 1) {
      std::fprintf(f, " <=%u:%llu", edges_us[b], (unsigned long long)counts[b]);
    } else {
      std::fprintf(f, " >%u:%llu", edges_us[b - 1], (unsigned long long)counts[b]);
    }
  }
}
}  // namespace

void ServiceTrace::Received(uint64_t rx_ns, uint64_t now_ns) {
  if (rx_ns == 0) return;
  const uint64_t wait = now_ns > rx_ns ? now_ns - rx_ns : 0;
  ++stamped_;
  wait_ns_ += wait;
  if (wait > max_wait_ns_) max_wait_ns_ = wait;
  ++buckets_[Bucket(wait, kEdgesUs, kBuckets)];
}

void ServiceTrace::Sent(uint64_t held_ns) {
  ++sending_passes_;
  held_ns_ += held_ns;
  if (held_ns > max_held_ns_) max_held_ns_ = held_ns;
  ++held_buckets_[Bucket(held_ns, kEdgesUs, kBuckets)];
}

void ServiceTrace::Loop(bool by_socket, bool by_queue, bool by_timer, uint64_t packets,
                        uint64_t busy_ns) {
  ++loops_;
  by_socket_ += by_socket;
  by_queue_ += by_queue;
  by_timer_ += by_timer;
  packets_ += packets;
  busy_ns_ += busy_ns;
  if (busy_ns > max_busy_ns_) max_busy_ns_ = busy_ns;
}

void ServiceTrace::Connection(const char* what, uint64_t now_ns, uint32_t id,
                              const ConnectionStats& s) {
  if (start_ns_ == 0) start_ns_ = now_ns;
  std::fprintf(f_,
               "%s %.3f %u cwnd %u ssthresh %u flight %u pipe %u srtt_us %u rto_ms %u rec %u "
               "snd_wnd %u "
               "data_segs %llu rtx %llu recoveries %llu rto %llu rto_in_rec %llu rack_lost %llu "
               "tlp %llu rprobe %llu sacks_in %llu\n",
               what, double(now_ns - start_ns_) / 1e9, id, s.cwnd, s.ssthresh, s.flight, s.pipe,
               s.srtt_us, s.rto_ms, unsigned(s.recovery), s.snd_wnd,
               (unsigned long long)s.data_segments_sent, (unsigned long long)s.retransmitted_segments,
               (unsigned long long)s.fast_retransmits, (unsigned long long)s.rto_timeouts,
               (unsigned long long)s.rto_in_recovery, (unsigned long long)s.rack_lost,
               (unsigned long long)s.tlp_probes, (unsigned long long)s.recovery_probes,
               (unsigned long long)s.segments_received);
}

void ServiceTrace::Summary() {
  std::fprintf(f_,
               "loop passes %llu woken_by socket %llu queue %llu timer %llu packets %llu "
               "busy_ms %.1f max_busy_us %.1f stamped %llu mean_wait_us %.1f max_wait_us %.1f",
               (unsigned long long)loops_, (unsigned long long)by_socket_,
               (unsigned long long)by_queue_, (unsigned long long)by_timer_,
               (unsigned long long)packets_, double(busy_ns_) / 1e6, double(max_busy_ns_) / 1e3,
               (unsigned long long)stamped_, stamped_ ? double(wait_ns_) / stamped_ / 1e3 : 0.0,
               double(max_wait_ns_) / 1e3);
  PrintHistogram(f_, "wait_us_hist", buckets_, kEdgesUs, kBuckets);
  std::fprintf(f_, " sending_passes %llu mean_held_us %.1f max_held_us %.1f",
               (unsigned long long)sending_passes_,
               sending_passes_ ? double(held_ns_) / sending_passes_ / 1e3 : 0.0,
               double(max_held_ns_) / 1e3);
  PrintHistogram(f_, "held_us_hist", held_buckets_, kEdgesUs, kBuckets);
  std::fprintf(f_, "\n");
  std::fflush(f_);
}

}  // namespace tcp
}  // namespace rqcast

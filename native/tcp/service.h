// rqcast — the user-space TCP server's thread: the raw sockets around a
// Listener (docs/ARCHITECTURE.md, "TCP (issue 9)").
//
// One thread owns the sockets, the Listener and every Connection. It waits
// (ppoll) on the AF_PACKET socket and on the ReadyQueue's eventfd (woken by
// TcpSinks when a connection's pool got frames, and by commands), and for
// the earliest connection timer; it parses what arrived, hands it to the
// Listener, polls the connections that need it, sends what they built with
// sendmmsg batches, and reports events (open, data, close) through
// ServiceEvents.
//
// Other threads (JS, the replication engine) never touch a Connection:
// control frames go straight into the connection's FramePool (thread-safe),
// close/abort/stop are commands, membership in a channel is a TcpSink
// added to the engine, and statistics are snapshots the thread publishes
// for the connections it touched.
//
// Peer bytes are read from connections only while fewer than
// max_pending_data bytes wait for the consumer (DataConsumed): a consumer
// that falls behind closes the peers' windows rather than growing a queue.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "replicate/engine.h"
#include "replicate/tcp_sink.h"
#include "tcp/connection.h"
#include "tcp/frame_pool.h"
#include "tcp/listener.h"
#include "tcp/raw_socket.h"
#include "tcp/ready_queue.h"
#include "tcp/service_trace.h"

namespace rqcast {
namespace tcp {

struct ServiceConfig {
  ListenerConfig listener;          // local address and port, limits, TCP config
  size_t max_pending_data = 4u << 20;
  size_t max_data_event = 64u << 10;  // peer bytes in one data event at most
  int receive_buffer_bytes = 8 << 20;
  int send_buffer_bytes = 4 << 20;
  // Segments per GSO train at most (segment_train.h); 0: no packet socket,
  // every segment by the routed IPPROTO_RAW path.
  uint32_t max_train_segments = 64;
};

struct ServiceEvent {
  enum Type : uint8_t { kOpen, kData, kClose };
  Type type = kOpen;
  uint32_t id = 0;
  Endpoint4 remote;                        // kOpen
  CloseReason reason = CloseReason::kNone; // kClose
  std::vector<uint8_t> bytes;              // kData
};

class ServiceEvents {
 public:
  virtual ~ServiceEvents() = default;
  // On the service thread, once per loop that raised any: take them (swap).
  virtual void OnEvents(std::vector<ServiceEvent>* events) = 0;
};

struct ServiceStats {
  uint32_t connections = 0, half_open = 0;
  uint64_t accepted = 0, refused = 0, resets_sent = 0, resets_suppressed = 0, ignored = 0;
  uint64_t segments_in = 0, segments_out = 0, bad_segments = 0, send_errors = 0;
  uint64_t fresh_frames = 0, stale_frames = 0, retransmitted_segments = 0, pool_evicted = 0;
  uint64_t receive_errors = 0, truncated = 0, control_refused = 0, pending_data = 0;
  uint64_t martians = 0;  // loopback addresses off a loopback device
  // Packets handed to the kernel (both paths); of the packet path's, those
  // that were GSO trains, and the segments they and its others carried.
  uint64_t packets_out = 0, gso_packets = 0, gso_segments = 0;
  // Whether the packet (GSO) path is on, and else why not: the errno of
  // opening it, or of the send that was refused (0: turned off, or not
  // started).
  bool packet_path = false;
  int packet_path_error = 0;
};

struct ConnectionSnapshot {
  uint32_t id = 0;
  State state = State::kSynReceived;
  ConnectionStats stats;
  FramePoolStats pool;
};

class Service {
 public:
  // engine may be null (no channel membership: control frames only).
  Service(const ServiceConfig& config, std::shared_ptr<replicate::Engine> engine,
          ServiceEvents* events);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Reserves the port (ReservePort), opens the sockets and starts the
  // thread: 0 or an errno value (EPERM without CAP_NET_RAW, EADDRINUSE,
  // EADDRNOTAVAIL, EINVAL for port 0, EALREADY if running).
  int Start();
  // Aborts every connection (RST), stops and joins the thread, removes the
  // sinks from the engine. Idempotent; also run by the destructor.
  void Stop();
  bool running() const { return thread_.joinable(); }

  // Any thread. A control packet for connection id, framed natively: false
  // if the connection is gone, or (then it is aborted) if its queue of
  // unsent control bytes would pass max_control_bytes.
  bool SendControl(uint32_t id, const uint8_t* packet, size_t len);
  // The connection gets channel's stream: 0, or the engine's errno
  // (ENOENT: no such channel; ESHUTDOWN); a gone connection or a present
  // membership is a no-op (0). ENOTSUP without an engine.
  int AddMember(uint32_t channel, uint32_t id);
  int RemoveMember(uint32_t channel, uint32_t id);
  void Close(uint32_t id);
  void Abort(uint32_t id);
  // The consumer has taken `bytes` of data events: more may be read.
  void DataConsumed(size_t bytes);

  ServiceStats stats() const;
  bool Snapshot(uint32_t id, ConnectionSnapshot* out) const;

 private:
  struct Command {
    enum Type : uint8_t { kClose, kAbort, kStop } type;
    uint32_t id;
  };
  class Output;

  void Run();
  // Returns the packets taken.
  uint64_t ReceiveAll(uint64_t now);
  void ApplyCommands(uint64_t now, bool* stop);
  void DeliverData(std::vector<ServiceEvent>* events);
  void Publish(const std::vector<ListenerEvent>& lev, std::vector<ServiceEvent>* events);
  // Service thread: the connection is gone; its sinks leave the engine.
  void DropMembers(uint32_t id);
  void Post(Command c);
  static uint64_t Now();

  ServiceConfig config_;
  std::shared_ptr<replicate::Engine> engine_;
  ServiceEvents* events_;
  std::shared_ptr<ReadyQueue> ready_;
  int port_fd_ = -1;
  RawReceiver rx_;
  RawSender tx_;
  PacketSender ptx_;
  // Whether the packet path is on, and else why not (readable before the
  // thread's first loop: stats() takes them from here).
  std::atomic<bool> packet_path_{false};
  std::atomic<int> packet_path_error_{0};
  std::unique_ptr<Output> output_;
  std::unique_ptr<Listener> listener_;  // service thread only
  std::unique_ptr<ServiceTrace> trace_; // RQCAST_TCP_TRACE (service_trace.h); thread only
  std::thread thread_;

  std::mutex cmd_mu_;
  std::vector<Command> commands_;

  std::atomic<uint64_t> pending_data_{0};
  std::atomic<bool> data_blocked_{false};

  // Shared with other threads: open connections' pools, sinks, snapshots.
  mutable std::mutex shared_mu_;
  std::unordered_map<uint32_t, std::shared_ptr<FramePool>> pools_;
  std::unordered_map<uint32_t, std::vector<std::shared_ptr<replicate::TcpSink>>> members_;
  std::unordered_map<uint32_t, ConnectionSnapshot> snapshots_;
  ServiceStats stats_;         // the thread's counters as of its last loop
  ServiceStats own_;           // service thread only: counted as they happen
  ServiceStats closed_totals_; // frame counters of connections gone
};

}  // namespace tcp
}  // namespace rqcast

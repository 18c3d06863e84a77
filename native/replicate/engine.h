// rqcast — the replication engine: channels of ready packets, each paced and
// handed to every one of its sinks by one native sender thread.
//
// The core here is transport-free: a command queue, a ring of packets per
// channel, a token bucket per channel, low-water events and counters. Where
// the packets go is the channel's list of sinks (sink.h): its UdpSink (the
// unicast destinations that add_destination() manages), its multicast group
// if add_group() gave it one, and any sink added with add_sink() (a TCP
// connection).
//
// Threads: any producer thread (the JS thread, a native encoder) calls the
// public methods; they only enqueue commands or fill a channel's ring. The
// sender thread alone touches sockets, sinks and token buckets.
// Ordering promise: a command issued before pushPackets(X) (on the same
// thread) is applied before X is sent — a destination (or sink) added before
// X gets X, one removed before X does not. Packets pushed before the command
// may go either way (a fountain stream does not care).
//
// A channel with no destination in any sink holds its packets (nothing is
// consumed).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "replicate/channel_counters.h"
#include "replicate/datagram_sender.h"
#include "replicate/destination_set.h"
#include "replicate/multicast_sink.h"
#include "replicate/packet_ring.h"
#include "replicate/pacing.h"
#include "replicate/sink.h"
#include "udp/udp.h"

namespace rqcast {
namespace replicate {

// The UDP sending options (DatagramOptions: GSO, socket buffer and send
// timeout, batch and segment limits) hold for the unicast sockets and for
// every group's socket alike.
struct EngineOptions : DatagramOptions {
  // Monotonic nanoseconds for pacing. Empty: CLOCK_MONOTONIC. Tests inject
  // a manual clock so that pacing is checked by token arithmetic alone.
  std::function<uint64_t()> clock;
};

struct ChannelConfig {
  uint32_t slot_size = 1500;     // largest packet
  uint32_t capacity = 4096;      // ring slots
  uint32_t low_water = 1024;     // ask for more at or below this many queued
  uint64_t rate_bytes_per_s = 0; // 0: unpaced
  uint64_t burst_bytes = 0;      // 0: default_burst()
};

// Counters are written by the sender thread and read by anyone.
struct ChannelStats {
  uint32_t id = 0;
  uint64_t stream_packets = 0;  // ring packets sent to all destinations
  uint64_t datagrams = 0;       // wire datagrams (GSO segments counted)
  uint64_t bytes = 0;           // payload bytes of those datagrams
  uint64_t syscalls = 0;
  uint64_t gso_sends = 0;       // super-datagrams handed to the kernel
  uint64_t drops_eagain = 0;    // send timed out on a full buffer
  uint64_t drops_enobufs = 0;
  uint64_t errors = 0;          // other per-destination errors
  uint64_t one_offs = 0;
  uint64_t tcp_packets = 0;    // stream packets copied into TCP connections' pools
  uint64_t tcp_bytes = 0;
  uint64_t pacing_forfeited = 0;  // bytes of rate stalls took beyond the burst
  uint64_t pacing_repaid = 0;     // of them, paid back later (pacing.h)
  uint64_t destinations = 0;   // UDP ones, as of the last add/remove call returned
  uint64_t groups = 0;         // multicast groups (0 or 1), likewise
  uint64_t queued = 0;
};

struct EngineStats {
  bool gso_active = false;
  uint64_t gso_fallbacks = 0;  // GSO messages refused by the kernel (sent plain)
  uint64_t syscalls = 0;
  uint64_t one_offs = 0;       // sendTo without a channel
  uint64_t one_off_errors = 0;
  uint64_t commands = 0;
};

// Called on the sender thread, once per loop with every channel that fell to
// its low-water mark since the producer last pushed to it.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void on_low_water(const uint32_t* channels, size_t count) = 0;
};

class Engine {
 public:
  Engine(const EngineOptions& options, EventSink* events);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Opens the sockets (IPv4, and IPv6 if the host has it) and starts the
  // sender thread. Returns an errno value.
  int start();
  // Stops and joins the sender thread; queued packets are discarded.
  // Idempotent; also run by the destructor.
  void stop();
  bool running() const { return thread_.joinable(); }

  // All return 0 or an errno value: EEXIST, ENOENT, EINVAL, EAFNOSUPPORT,
  // EMSGSIZE (packet larger than the channel's slots or than a datagram),
  // ESHUTDOWN (engine stopped). Adding a present destination (or sink) or
  // removing an absent one is a no-op that returns 0.
  int create_channel(uint32_t id, const ChannelConfig& config);
  int remove_channel(uint32_t id);
  int add_destination(uint32_t id, const udp::Endpoint& to);
  int remove_destination(uint32_t id, const udp::Endpoint& to);
  int clear_destinations(uint32_t id);
  // A sink beside the channel's UDP destinations (a multicast group, a TCP
  // connection). From this call on the sender thread alone calls it, until
  // remove_sink() is applied (after the next barrier() the engine holds it
  // no more). It gets the stream from the first packet sent after the
  // command, as a destination does. EINVAL for a null sink.
  int add_sink(uint32_t id, std::shared_ptr<Sink> sink);
  int remove_sink(uint32_t id, const Sink* sink);
  // The channel's multicast group (one at most): a MulticastSink opened
  // here, on the caller's thread, so that a bad group, interface or source
  // fails this call (*failed names which, see MulticastSink::open) rather
  // than the sender thread. EEXIST if the channel has a group already
  // (remove it first to change it), ENOENT for an unknown channel. The
  // group gets the stream as an added sink does; removing a channel
  // without a group is a no-op.
  int add_group(uint32_t id, const MulticastConfig& config,
                MulticastStage* failed = nullptr);
  int remove_group(uint32_t id);
  int set_rate(uint32_t id, uint64_t rate_bytes_per_s, uint64_t burst_bytes);
  int set_paused(uint32_t id, bool paused);

  // Copies up to `count` packets (laid end to end) into the channel's ring;
  // *accepted tells how many fit.
  int push_packets(uint32_t id, const uint8_t* packets, uint32_t packet_size,
                   uint32_t count, uint32_t* accepted);
  // Native producers fill the ring themselves (reserve/commit on the
  // returned ring, one producer at a time) and then call wake().
  std::shared_ptr<PacketRing> ring(uint32_t id);
  void producer_pushed(uint32_t id);

  // One datagram outside the stream (an ACK's replacement symbol). With a
  // channel, it is counted and paced on that channel's account.
  int send_to(const uint32_t* channel, const udp::Endpoint& to,
              const uint8_t* data, size_t len);

  int channel_stats(uint32_t id, ChannelStats* out) const;
  void all_channel_stats(std::vector<ChannelStats>* out) const;
  EngineStats stats() const;
  bool gso_supported() const { return udp_.gso_supported(); }

  // Blocks until the sender thread has finished one whole loop (commands
  // applied, every channel sent what its tokens allow, events delivered)
  // that began after this call. For tests and for an orderly close; returns
  // ESHUTDOWN if the engine is stopped.
  int barrier();

  // Wakes the sender thread: a sink that held packets back (Sink::send took
  // fewer than offered) has room again. Any thread.
  void wake();

 private:
  struct Channel;
  struct Command;

  int enqueue(Command&& c);
  // add_sink / remove_sink with map_mutex_ held and the channel found.
  int add_sink_locked(Channel& ch, std::shared_ptr<Sink> sink);
  int remove_sink_locked(Channel& ch, const Sink* sink);
  int change_members(uint32_t id, int kind, const udp::Endpoint* to);
  void run();
  bool drain_commands();
  void apply(Command& c);
  // One channel's turn in a loop: lagging sinks catch up, then the stream
  // moves on by what its tokens allow. Returns whether any sink took a
  // packet; *min_wait learns when a paced channel can next send.
  bool serve(Channel& c, uint64_t now_ns, uint64_t* min_wait);
  // The channel had nothing to send at now_ns (pacing.h: rest).
  void rest(Channel& c, uint64_t now_ns);
  // Hands packets [first, end) to every sink whose next packet is `first`;
  // returns whether any of them took one.
  bool offer(Channel& c, uint64_t first, uint64_t end, uint64_t now_ns);
  // Gives the producer back the slots every sink has taken; returns how many.
  uint32_t release_taken(Channel& c);
  // Packets a run may hold: a budget of wire messages over the channel's
  // destinations.
  uint32_t run_limit(size_t destinations, uint32_t per_message) const;
  // Packets a paced channel waits to have tokens for before it sends.
  uint32_t pacing_quantum(const Channel& c, uint32_t per_message) const;
  uint64_t now() const;

  EngineOptions options_;
  EventSink* events_;  // low-water signals (not a packet Sink)
  std::atomic<uint64_t> one_offs_{0}, one_off_errors_{0}, commands_{0};
  // The unicast sockets and the GSO state every UDP sink shares (opened by
  // start(); sender thread only, but for its read-only counters).
  DatagramSender udp_;

  // Producer side: which channels exist (guarded by map_mutex_).
  mutable std::mutex map_mutex_;
  std::unordered_map<uint32_t, std::shared_ptr<Channel>> channels_;

  // Command queue and wake-up.
  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<Command> queue_;
  bool wake_pending_ = false;
  bool stopping_ = false;
  // barrier(): loops asked for and loops finished, by generation.
  uint64_t barrier_requested_ = 0;
  uint64_t barrier_done_ = 0;
  std::condition_variable barrier_cv_;

  // Sender thread only.
  std::thread thread_;
  std::vector<std::shared_ptr<Channel>> active_;
  std::vector<uint32_t> low_;
  bool rescan_ = false;  // a channel was added: look at its tail next loop
};

}  // namespace replicate
}  // namespace rqcast

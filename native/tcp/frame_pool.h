// rqcast — a TCP connection's FrameSource: what it sends and what it
// retransmits with (docs/PROTOCOL.md §3 framing, §10.10 fallback).
//
// Two queues, filled by other threads and drained by the TCP thread:
//
// - control frames (JS's send()): never dropped; a connection whose
//   unsent control bytes pass max_control_bytes is the caller's to abort
//   (PushControl says so), since a peer that does not read must not make
//   the host hold an unbounded queue;
// - stream packets (the replication engine's TcpSink, one copy per packet
//   of each channel the connection is a member of): a bounded pool that,
//   when full, drops what arrives (counted: a fountain stream needs no
//   packet in particular, and dropping costs no copy — a connection far
//   slower than the stream costs the engine a check per packet, not a
//   copy); or, for a run whose sink is the channel's only one (Run::sole),
//   takes no more and holds the stream back until the connection has sent
//   half the pool (then the room callback wakes the engine): a lone TCP
//   client paces its channel instead of making it encode symbols to drop.
//   It sends new data from its front, and gives a
//   retransmission a fresh packet of the lost frame's length and LCT header
//   length from anywhere in it (same block first): a packet whose TSI and
//   TOI fit 16 bits (24-byte header) never stands in for one with 32-bit
//   ones (28 bytes), even where a symbol 4 bytes longer would make the
//   lengths match (PROTOCOL.md §10.11). Every packet leaves the pool once: a client
//   gets each (block, ESI) at most once.
//
// A reserve of refreshable packets (default 16) is kept back from new data
// so that a retransmission finds a replacement even when the stream is
// slower than the connection. Packets that cannot stand in for a lost one
// — the FDT (TOI 0) and anything whose ALC header does not parse — go out
// as kControl frames: never refreshed and never used as a replacement.
//
// One mutex guards everything; each call holds it for one packet copy (or
// one run's copies, PushRun) and never waits on anything else.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include "tcp/frame_source.h"

namespace rqcast {
namespace tcp {

// The largest packet a frame can carry (u16 length, PROTOCOL.md §3).
constexpr size_t kMaxFramedPacket = 65535;
constexpr size_t kFrameHeader = 2;

struct FramePoolConfig {
  uint32_t pool_packets = 256;       // stream packets held at most
  uint32_t reserve = 16;             // refreshable packets new data leaves
  uint64_t max_control_bytes = 1u << 20;  // unsent framed control bytes
};

struct FramePoolStats {
  uint64_t pushed = 0;          // stream packets copied in
  uint64_t evicted = 0;         // stream packets dropped because the pool was full
  uint64_t held = 0;            // runs held back (a sole sink's pool full)
  uint64_t refused = 0;         // empty or longer than a frame holds
  uint64_t dropped_closed = 0;  // arrived after CloseSource / Detach
  uint64_t sent_data = 0;       // handed out as new data (kData)
  uint64_t sent_plain = 0;      // handed out as kControl (FDT, unparsed)
  uint64_t refreshed = 0;       // handed out as replacements
  uint64_t no_replacement = 0;  // Refresh found none
  uint64_t control_frames = 0;  // control frames handed out
  uint64_t control_refused = 0; // PushControl over the limit
  uint32_t queued = 0;          // stream packets now held
  uint64_t control_bytes = 0;   // unsent framed control bytes now held
};

// The opaque block key of an ALC packet of `channel` (PROTOCOL.md §8: the
// LCT header's TOI, then the FEC Payload ID's SBN at HDR_LEN * 4).
// false for the FDT (TOI 0) and for anything that does not parse as an
// rqcast data packet: such a packet has no replacement and replaces none.
bool BlockKeyOf(uint32_t channel, const uint8_t* packet, size_t len,
                uint64_t* key);

class FramePool : public FrameSource {
 public:
  explicit FramePool(const FramePoolConfig& config);

  // Engine thread: copies one stream packet in. Returns false if it was
  // refused (empty, too long, or the source is closed); eviction of an
  // older packet to make room is not a refusal.
  bool Push(uint32_t channel, const uint8_t* packet, size_t len);
  // The same for a run, under one lock: get(i, &packet, &len) gives each.
  // Returns true if the pool was not flagged ready before (the caller
  // wakes the TCP thread once, not per run).
  // With `hold` (the sink is its channel's only one), a full pool takes no
  // more: the packets not taken stay with the engine, and the room callback
  // runs once the pool has drained to half. Returns how many were taken
  // (copied, or dropped and counted); *became_ready tells whether the pool
  // was not flagged ready before (the caller wakes the TCP thread once, not
  // per run).
  template <typename Get>
  uint32_t PushRun(uint32_t channel, uint32_t count, Get get, bool hold, bool* became_ready);

  // Called (on the TCP thread, no lock held) when a pool that held a run
  // back has room again. Set once, before the pool is shared.
  void SetRoomCallback(std::function<void()> on_room) { on_room_ = std::move(on_room); }

  // Any thread: one control packet, framed here. false (nothing queued,
  // counted) if it is empty, too long, or would take the unsent control
  // bytes past max_control_bytes: the caller aborts the connection.
  // *became_ready (if given) tells whether this push flagged the pool ready
  // (the caller wakes the TCP thread then, once).
  bool PushControl(const uint8_t* packet, size_t len, bool* became_ready = nullptr);

  // From now on NextFrame gives control frames only (a graceful close:
  // what JS queued still goes out before the FIN); stream packets still
  // arrive for Refresh.
  void CloseSource();
  // The connection is gone: every push is dropped, the memory freed.
  void Detach();
  bool detached() const { return detached_.load(std::memory_order_relaxed); }

  // Set by pushes, cleared by the TCP thread when it polls the connection:
  // true if it was set (the connection may have new frames).
  bool TakeReady() { return ready_.exchange(false, std::memory_order_acq_rel); }

  // FrameSource (TCP thread).
  size_t NextFrame(uint8_t* out, size_t max_bytes, FrameInfo* info) override;
  bool Refresh(const FrameInfo& lost, uint8_t* out, uint64_t* block) override;

  FramePoolStats stats() const;

 private:
  struct Packet {
    std::vector<uint8_t> bytes;  // the packet, unframed
    uint64_t block = 0;
    uint16_t header = 0;  // LCT header bytes, when refreshable
    bool refreshable = false;
  };
  // With mu_ held.
  bool PushLocked(uint32_t channel, const uint8_t* packet, size_t len);
  // After taking packets out, with mu_ held: whether a held stream may
  // come again (the caller runs on_room_ once the lock is released).
  bool RoomLocked();
  size_t NextFrameLocked(uint8_t* out, size_t max_bytes, FrameInfo* info, bool& room);
  bool RefreshLocked(const FrameInfo& lost, uint8_t* out, uint64_t* block, bool& room);
  void NotifyRoom(bool room) {
    if (room && on_room_) on_room_();
  }
  void Recycle(Packet& p);
  static void WriteFrame(const std::vector<uint8_t>& packet, uint8_t* out);

  const FramePoolConfig config_;
  mutable std::mutex mu_;
  std::deque<Packet> pool_;               // stream packets, oldest first
  uint32_t refreshable_ = 0;              // of them, with a block key
  std::deque<std::vector<uint8_t>> control_;  // unframed control packets
  uint64_t control_bytes_ = 0;            // their framed bytes
  std::vector<std::vector<uint8_t>> spare_;   // buffers to reuse
  bool source_closed_ = false;
  bool holding_ = false;                  // a sole run was held back: tell on_room_
  std::function<void()> on_room_;
  std::atomic<bool> detached_{false};
  std::atomic<bool> ready_{false};
  FramePoolStats stats_;
};

template <typename Get>
uint32_t FramePool::PushRun(uint32_t channel, uint32_t count, Get get, bool hold,
                            bool* became_ready) {
  uint32_t taken = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (; taken < count; ++taken) {
      if (hold && !source_closed_ && pool_.size() >= config_.pool_packets &&
          config_.pool_packets != 0) {
        holding_ = true;
        ++stats_.held;
        break;
      }
      const uint8_t* p;
      size_t len;
      get(taken, &p, &len);
      PushLocked(channel, p, len);
    }
  }
  *became_ready = !ready_.exchange(true, std::memory_order_acq_rel);
  return taken;
}

}  // namespace tcp
}  // namespace rqcast

// rqcast — the passive side of the user-space TCP: the table of
// connections of one local port, I/O-free like the connections it holds
// (time in, segments in, segments out through a SegmentOutput).
//
// - A SYN (no ACK, RST or FIN) for no connection opens one, unless the
//   table holds max_connections, or max_half_open are still in
//   SYN-RECEIVED: then it is dropped and counted (no RST: the client
//   retries, as against a full Linux backlog; a flood gets no reflection).
// - Any other segment for no connection gets a RST (RFC 9293 §3.10.7.1),
//   at most max_resets_per_second of them; a RST for no connection is
//   dropped. Segments from or to an address that cannot be a peer
//   (0.0.0.0, multicast, broadcast, class E; RFC 9293 §3.10.7.2) are
//   dropped without answer.
// - Initial sequence numbers follow RFC 6528: a 4 µs clock plus SipHash-2-4
//   of the 4-tuple under a secret key. The same key hashes the table, so
//   that chosen 4-tuples cannot make its buckets degenerate.
// - Each connection has its FramePool (what it sends); connections are
//   polled when a segment touched them, their pool got frames, JS read from
//   them or a timer fell due (a heap of NextDeadline()s), never all at once.
// - A connection that reaches ESTABLISHED raises kOpened; one that closes
//   after that raises kClosed with its reason (a half-open connection that
//   dies was never seen by anyone: it is only counted). A connection closed
//   gracefully with unread peer bytes stays until they are read. One that
//   enters TIME-WAIT (we closed first) raises kClosed (normal) at once and
//   stays in the table, unseen, until its timer ends: it only absorbs the
//   peer's retransmitted FIN.
// - When the peer's FIN arrives the connection is closed from our side too
//   (close_on_peer_fin): a client that half-closes is done with the
//   session.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <queue>
#include <unordered_map>
#include <vector>

#include "tcp/connection.h"
#include "tcp/frame_pool.h"
#include "tcp/segment.h"

namespace rqcast {
namespace tcp {

struct ListenerConfig {
  Endpoint4 local;                   // addr 0: any address of the host
  uint32_t max_connections = 4096;
  uint32_t max_half_open = 1024;
  uint32_t max_resets_per_second = 1000;
  bool close_on_peer_fin = true;
  Config connection;
  FramePoolConfig pool;
  uint8_t isn_key[16] = {};          // RFC 6528's secret (random per server)
};

struct ListenerStats {
  uint64_t segments_in = 0;
  uint64_t accepted = 0;             // SYNs that made a connection
  uint64_t refused = 0;              // SYNs dropped: table or half-open full
  uint64_t resets_sent = 0;          // to segments of no connection
  uint64_t resets_suppressed = 0;    // over max_resets_per_second
  uint64_t ignored = 0;              // RSTs of no connection, not ours, bad peers
  uint64_t half_open_failed = 0;     // closed before ESTABLISHED
  uint64_t opened = 0, closed = 0;   // events raised
  uint32_t connections = 0, half_open = 0;
};

struct ListenerEvent {
  enum Type : uint8_t { kOpened, kClosed };
  Type type = kOpened;
  uint32_t id = 0;
  Endpoint4 remote;
  CloseReason reason = CloseReason::kNone;  // kClosed
  ConnectionStats final_stats;              // kClosed: its last counters
  FramePoolStats pool_stats;                // kClosed
};

// RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport, key),
// M a clock ticking every 4 µs, F SipHash-2-4 (its low 32 bits).
uint32_t InitialSequenceNumber(const uint8_t key[16], const Endpoint4& local,
                               const Endpoint4& remote, uint64_t now_ns);
uint64_t SipHash24(const uint8_t key[16], const uint8_t* data, size_t len);

class Listener {
 public:
  Listener(const ListenerConfig& config, SegmentOutput* out);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // One parsed segment addressed to the host.
  void OnSegment(const Segment& seg, uint64_t now_ns);
  // The connection's pool may have frames: poll it on the next Poll().
  void MarkReady(uint32_t id);
  // Polls every connection touched since the last call and every one whose
  // timer fell due; reaps closed ones; queues events.
  void Poll(uint64_t now_ns);
  // When Poll must next run: 0 if connections are waiting to be polled,
  // UINT64_MAX if no timer is armed.
  uint64_t NextDeadline() const;

  // Graceful close (queued control frames, then FIN) and RST. false for an
  // unknown id.
  bool Close(uint32_t id, uint64_t now_ns);
  bool Abort(uint32_t id, uint64_t now_ns);
  // Every connection gets a RST and is dropped at once (no events).
  void AbortAll(uint64_t now_ns);

  // Connections with peer bytes to read (may hold ids that were drained or
  // closed since: Read then gives 0).
  void ReadableIds(std::vector<uint32_t>* out);
  // Moves up to cap in-order peer bytes of `id` to out.
  size_t Read(uint32_t id, uint8_t* out, size_t cap);

  std::shared_ptr<FramePool> pool(uint32_t id) const;
  const Connection* connection(uint32_t id) const;
  // Connections polled since the last call (their stats may have moved).
  void TakeTouched(std::vector<uint32_t>* out);

  void TakeEvents(std::vector<ListenerEvent>* out);
  const ListenerStats& stats() const { return stats_; }
  size_t size() const { return by_id_.size(); }

 private:
  struct Tuple {
    uint32_t local_addr, remote_addr;
    uint16_t local_port, remote_port;
    bool operator==(const Tuple& o) const {
      return local_addr == o.local_addr && remote_addr == o.remote_addr &&
             local_port == o.local_port && remote_port == o.remote_port;
    }
  };
  struct TupleHash {
    const uint8_t* key;
    size_t operator()(const Tuple& t) const;
  };
  struct Entry {
    uint32_t id = 0;
    Tuple tuple;
    std::unique_ptr<Connection> conn;
    std::shared_ptr<FramePool> pool;
    uint64_t deadline = UINT64_MAX;  // as last pushed on the heap
    bool opened = false;
    bool reported = false;           // kClosed raised (at TIME-WAIT or removal)
    bool closing = false;            // Close() called
    bool dirty = false;
    bool readable = false;
  };
  using Timer = std::pair<uint64_t, uint32_t>;  // deadline, id

  void SendReset(const Segment& seg, uint64_t now_ns);
  void Accept(const Segment& seg, const Tuple& t, uint64_t now_ns);
  void Touch(Entry& e);
  // After a connection ran: events, reaping, readability, its timer.
  // Returns false if the entry was removed.
  bool Settle(Entry& e, uint64_t now_ns);
  void Remove(Entry& e);
  // Raises kClosed once and detaches the pool: the owner is done with it.
  void ReportClosed(Entry& e, CloseReason reason);
  Entry* Find(uint32_t id) const;
  void RebuildTimers();

  ListenerConfig config_;
  SegmentOutput* out_;
  std::unordered_map<Tuple, uint32_t, TupleHash> by_tuple_;
  std::unordered_map<uint32_t, std::unique_ptr<Entry>> by_id_;
  uint32_t next_id_ = 1;
  std::vector<uint32_t> dirty_;
  std::vector<uint32_t> touched_;
  std::vector<uint32_t> readable_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  std::vector<ListenerEvent> events_;
  // RST budget: a token bucket of max_resets_per_second.
  uint64_t reset_tokens_ = 0, reset_refill_ns_ = 0;
  ListenerStats stats_;
};

}  // namespace tcp
}  // namespace rqcast

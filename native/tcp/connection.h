// rqcast — one connection's state machine, server side
#pragma once

#include <cstddef>
#include <cstdint>

#include "tcp/frame_source.h"
#include "tcp/segment.h"

// (passive open only). I/O-free: time in ns and segments are passed in,
// segments go out through SegmentOutput. Nothing here reads a clock,
// allocates per segment on the steady state, or touches a socket.
namespace rqcast {
namespace tcp {

enum class State : uint8_t { kSynReceived, kEstablished, kFinWait1, kFinWait2, kClosing,
                             kTimeWait, kCloseWait, kLastAck, kClosed };
const char* StateName(State s);
enum class CloseReason : uint8_t { kNone, kNormal, kReset, kTimeout, kAborted, kProtocol };
struct Config {
  uint16_t mss = 1460;              // the most we send and announce (from the path MTU)
  uint8_t wscale = 7;               // announced when the peer offers window scaling
  uint32_t rcv_buffer = 65536;      // bytes of the peer's data we hold unread
  uint32_t initial_cwnd_segments = 10;
  uint32_t max_cwnd_bytes = 8u << 20;
  uint64_t rto_initial_ns = 1000000000ull, rto_min_ns = 200000000ull, rto_max_ns = 60000000000ull;
  uint32_t max_rto_backoffs = 8;    // then abort (kTimeout) with a RST
  uint32_t max_syn_ack_retries = 5;
  uint64_t time_wait_ns = 1000000000ull; // short: the server's TIME_WAIT holds a 4-tuple only
  bool sack = true, timestamps = true, window_scaling = true;  // offered only if the peer offers
};
struct ConnectionStats {
  uint64_t segments_sent = 0, bytes_sent = 0, data_segments_sent = 0;
  uint64_t retransmitted_segments = 0, fast_retransmits = 0, rto_timeouts = 0;
  uint64_t fresh_frames = 0, stale_frames = 0;   // data frames refreshed / resent as they were
  uint64_t segments_received = 0, bytes_received = 0, dup_acks = 0, bad_segments = 0;
  uint64_t challenge_acks = 0, window_probes = 0;
  uint32_t cwnd = 0, ssthresh = 0, flight = 0, srtt_us = 0, rto_ms = 0, snd_wnd = 0;
};
class SegmentOutput {
 public:
  virtual ~SegmentOutput() = default;
  virtual void Transmit(const OutSegment& seg, const uint8_t* payload, size_t len) = 0;
};
class Connection {
 public:
  // A SYN (no ACK, no RST/FIN) arrived for local endpoint `syn.dst`: makes the
  // connection in kSynReceived with initial sequence number iss and sends the
  // SYN-ACK (options: MSS always; WS, SACK-permitted, TS only if the SYN had them
  // and the config allows). The caller checked the SYN's flags.
  Connection(const Config& config, const Segment& syn, uint32_t iss, uint64_t now_ns,
             FrameSource* source, SegmentOutput* out);
  // One arriving segment of this 4-tuple (RFC 9293 §3.10.7 order of checks,
  // RFC 5961 for RST/SYN in the window: challenge ACKs).
  void OnSegment(const Segment& seg, uint64_t now_ns);
  // Timers that fell due, then new data while cwnd and the peer's window allow
  // (whole segments only: a segment is at most min(mss, peer mss) bytes and is
  // sent only when it fits the window whole). Call after OnSegment calls and
  // whenever the FrameSource may have frames again.
  void Poll(uint64_t now_ns);
  // The next time Poll must run for a timer (UINT64_MAX if no timer is armed).
  uint64_t NextDeadline() const;
  // Graceful close from our side: no more new data frames are taken except
  // control frames already offered; FIN after the last byte. (Stops calling
  // NextFrame for data: the source must not give data frames once CloseSource()
  // is called — the shell does that; the connection just sends what it has and FIN.)
  void Close(uint64_t now_ns);
  // Sends RST and goes to kClosed (reason kAborted).
  void Abort(uint64_t now_ns);
  // In-order bytes of the peer's stream not yet read (at most rcv_buffer);
  // Read moves up to cap of them to out and reopens the window (a window update
  // is sent by the next Poll when the window grew by >= 2 MSS or from zero).
  size_t Readable() const;
  size_t Read(uint8_t* out, size_t cap);
  bool PeerFinished() const;   // the peer's FIN arrived (in order)
  State state() const;
  CloseReason close_reason() const;
  const ConnectionStats& stats() const;   // cwnd..snd_wnd refreshed on each call path
  Endpoint4 local() const;
  Endpoint4 remote() const;
 private:
  // ... helper A's choice (keep the public surface above)
};
}  // namespace tcp
}  // namespace rqcast

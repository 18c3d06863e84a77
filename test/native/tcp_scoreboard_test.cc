// Tests of the pieces under the TCP connection: the RFC 6298 estimator
// (native/tcp/rtt.h), NewReno (congestion.h) and the segment records with
// their SACK scoreboard (scoreboard.h). Expected values worked out by hand
// from the RFCs' formulas.
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "tcp/congestion.h"
#include "tcp/rtt.h"
#include "tcp/scoreboard.h"

#include "check.h"

using namespace rqcast::tcp;

namespace {

constexpr uint64_t kMs = 1000000ull;

void rtt_first_and_later_samples() {
  RttEstimator r(1000 * kMs, 200 * kMs, 60000 * kMs, kMs);
  CHECK_EQ(r.rto_ns(), 1000 * kMs);
  CHECK(!r.has_sample());
  r.Sample(100 * kMs);              // SRTT 100, RTTVAR 50, RTO 100 + 200 = 300
  CHECK_EQ(r.srtt_ns(), 100 * kMs);
  CHECK_EQ(r.rttvar_ns(), 50 * kMs);
  CHECK_EQ(r.rto_ns(), 300 * kMs);
  r.Sample(200 * kMs);              // RTTVAR 3/4 50 + 1/4 100 = 62.5; SRTT 112.5
  CHECK_EQ(r.rttvar_ns(), 62500000u);
  CHECK_EQ(r.srtt_ns(), 112500000u);
  CHECK_EQ(r.rto_ns(), 362500000u);
  r.Backoff();
  CHECK_EQ(r.rto_ns(), 725 * kMs);
  r.Backoff();
  CHECK_EQ(r.rto_ns(), 1450 * kMs);
  r.Sample(112500000u);             // a new sample clears the backoff
  CHECK(r.rto_ns() < 400 * kMs);
  for (int i = 0; i < 20; ++i) r.Backoff();
  CHECK_EQ(r.rto_ns(), 60000 * kMs);
  // The floor: tiny RTTs give the minimum.
  RttEstimator t(1000 * kMs, 200 * kMs, 60000 * kMs, kMs);
  t.Sample(100000);
  CHECK_EQ(t.rto_ns(), 200 * kMs);
}

// CUBIC's β and Reno-friendly α (RFC 9438 §4.6, §4.3), fast convergence
// (§4.7), β on a timeout too (§4.8).
void cubic_beta_windows() {
  NewReno c;
  c.Init(1000, 10, 1u << 20);
  c.EnterRecovery(10000, true);     // W_max 10000
  CHECK_EQ(c.ssthresh(), 7000u);
  c.ExitRecovery(5000, true);
  CHECK_EQ(c.cwnd(), 7000u);
  // Below W_max: one SMSS per 7000 x 17 / 9 = 13222 bytes acknowledged.
  for (int i = 0; i < 13; ++i) c.OnAck(1000);
  CHECK_EQ(c.cwnd(), 7000u);
  c.OnAck(1000);
  CHECK_EQ(c.cwnd(), 8000u);
  // Lost again below W_max: W_max = 8000 x 1.7 / 2 = 6800.
  c.EnterRecovery(8000, true);
  CHECK_EQ(c.ssthresh(), 5600u);
  c.ExitRecovery(0, true);
  for (int i = 0; i < 10; ++i) c.OnAck(1000);   // 5600 x 17 / 9 = 10577
  CHECK_EQ(c.cwnd(), 5600u);
  c.OnAck(1000);
  CHECK_EQ(c.cwnd(), 6600u);                     // 423 left over
  for (int i = 0; i < 13; ++i) c.OnAck(1000);   // 6600 x 17 / 9 = 12466
  CHECK_EQ(c.cwnd(), 7600u);                     // 957 left over
  // Above W_max: one SMSS per cwnd (α 1).
  for (int i = 0; i < 6; ++i) c.OnAck(1000);
  CHECK_EQ(c.cwnd(), 7600u);
  c.OnAck(1000);
  CHECK_EQ(c.cwnd(), 8600u);
  c.OnTimeout(10000, true);
  CHECK_EQ(c.ssthresh(), 7000u);
  CHECK_EQ(c.cwnd(), 1000u);
}

void newreno_windows() {
  NewReno c;
  c.Init(1000, 10, 1u << 20, false);   // Reno's β 0.5, α 1
  CHECK_EQ(c.cwnd(), 10000u);
  CHECK_EQ(c.ssthresh(), 1u << 20);
  c.OnAck(500);
  CHECK_EQ(c.cwnd(), 10500u);
  c.OnAck(3000);                    // at most one SMSS per ACK
  CHECK_EQ(c.cwnd(), 11500u);
  c.EnterRecovery(11000, false);
  CHECK_EQ(c.ssthresh(), 5500u);
  CHECK_EQ(c.cwnd(), 8500u);
  c.OnDupAckInRecovery(false);
  CHECK_EQ(c.cwnd(), 9500u);
  c.OnPartialAck(2500, false);      // 9500 - 2500 + 1000
  CHECK_EQ(c.cwnd(), 8000u);
  c.ExitRecovery(1000, false);      // min(5500, 1000 + 1000)
  CHECK_EQ(c.cwnd(), 2000u);
  c.OnAck(1000);
  c.OnAck(1000);
  c.OnAck(1000);
  c.OnAck(1000);
  CHECK_EQ(c.cwnd(), 6000u);        // past ssthresh: avoidance from here
  for (int i = 0; i < 5; ++i) c.OnAck(1000);
  CHECK_EQ(c.cwnd(), 6000u);
  c.OnAck(1000);                    // 6000 acknowledged: + 1 SMSS
  CHECK_EQ(c.cwnd(), 7000u);
  c.OnTimeout(7000, true);
  CHECK_EQ(c.ssthresh(), 3500u);
  CHECK_EQ(c.cwnd(), 1000u);
  c.OnTimeout(7000, false);         // a repeated timeout keeps ssthresh
  CHECK_EQ(c.ssthresh(), 3500u);
  c.EnterRecovery(1000, true);      // never below 2 SMSS
  CHECK_EQ(c.ssthresh(), 2000u);
  CHECK_EQ(c.cwnd(), 2000u);
  NewReno m;
  m.Init(1000, 10, 4000);           // capped
  CHECK_EQ(m.cwnd(), 4000u);
  m.OnAck(1000);
  CHECK_EQ(m.cwnd(), 4000u);
}

// Ten records of 100 bytes from sequence 0xFFFFFE00 (wrapping).
void Fill(Scoreboard& b, uint32_t first) {
  for (int i = 0; i < 10; ++i) {
    const uint64_t r = b.Append(first + 100u * i);
    b.at(r).len = 100;
    std::memset(b.slot(r), i, 100);
    FrameRecord f;
    f.length = 100;
    f.block = i;
    b.AddFrame(r, f);
    b.Sent(r, 1000 + i);
  }
}

void scoreboard_pipe_sack_loss() {
  const uint32_t first = 0xFFFFFE00u;
  Scoreboard b;
  b.Init(100, 64);
  Fill(b, first);
  CHECK_EQ(b.pipe(), 1000u);
  CHECK_EQ(b.size(), size_t(10));
  // SACK records 2..4 and 6 (the second block across the wrap).
  SackBlock blocks[2] = {{first + 200, first + 500}, {first + 600, first + 700}};
  CHECK_EQ(b.Sack(blocks, 2, first, first + 1000), 400u);
  CHECK_EQ(b.Sack(blocks, 2, first, first + 1000), 0u);   // nothing new
  CHECK_EQ(b.pipe(), 600u);
  CHECK_EQ(b.sacked_bytes(), 400u);
  // A block partly outside the sent range is ignored; so is one that covers
  // a record only in part.
  SackBlock odd[2] = {{first + 900, first + 1100}, {first + 750, first + 850}};
  CHECK_EQ(b.Sack(odd, 2, first, first + 1000), 0u);
  // IsLost with 3 SACKed records above: records 0 and 1 (4 SACKed above),
  // not 5 (1 above).
  CHECK(b.FrontIsLost(3, 1000));
  CHECK_EQ(b.MarkLostBySack(3, 1000), 2);
  CHECK_EQ(b.pipe(), 400u);
  CHECK_EQ(b.NextToRetransmit(b.begin()), b.begin());
  b.Sent(b.begin(), 2000);
  CHECK_EQ(b.pipe(), 500u);
  CHECK_EQ(b.NextToRetransmit(b.begin()), b.begin() + 1);
  CHECK_EQ(b.MarkLostBySack(3, 1000), 0);   // not again in this episode
  b.Sent(b.begin() + 1, 2000);
  CHECK_EQ(b.NextToRetransmit(b.begin()), b.end());
  // Cumulative ACK of 0..4.
  for (int i = 0; i < 5; ++i) b.PopFront();
  CHECK_EQ(b.pipe(), 400u);                 // 5, 7, 8, 9
  CHECK_EQ(b.sacked_bytes(), 100u);         // 6
  CHECK_EQ(b.at(b.begin()).seq, first + 500);
  CHECK_EQ(b.Find(first + 650), b.begin() + 1);
  b.MarkAllLost();
  CHECK_EQ(b.pipe(), 0u);
  CHECK_EQ(b.NextToRetransmit(b.begin()), b.begin());
  b.EndEpisode();
}

void scoreboard_grows_keeping_slots() {
  Scoreboard b;
  b.Init(100, 1000);
  Fill(b, 0);
  for (int i = 0; i < 4; ++i) b.PopFront();
  // 6 left; 30 more force growth (16 -> 32 -> 64) with the ring wrapped.
  for (int i = 0; i < 30; ++i) {
    const uint64_t r = b.Append(1000 + 100u * i);
    b.at(r).len = 100;
    std::memset(b.slot(r), 10 + i, 100);
    b.Sent(r, 0);
  }
  bool ok = true;
  for (uint64_t i = b.begin(); i != b.end(); ++i) {
    const uint8_t want = static_cast<uint8_t>(i - b.begin() + 4);
    const uint8_t* s = b.slot(i);
    for (int k = 0; k < 100; ++k) ok = ok && s[k] == want;
  }
  CHECK(ok);
  CHECK_EQ(b.frame(b.at(b.begin()).first_frame).block, 4u);
  CHECK_EQ(b.pipe(), 3600u);
  CHECK(!b.Full());
  Scoreboard small;
  small.Init(100, 4);
  Fill(small, 0);
  CHECK(small.Full());
}

// RACK (RFC 8985 §6.2) over the records: times in ns, records 0..9 sent at
// 1000..1009, min_RTT 50, reo_wnd 10.
void scoreboard_rack_detects_lost_retransmission() {
  const uint32_t first = 0xFFFFFE00u;
  Scoreboard b;
  b.Init(100, 64);
  Fill(b, first);
  Rack rack;
  rack.NoteRtt(50);
  int marked = -1;
  CHECK_EQ(b.RackDetectLost(rack, 10, 1100, &marked), 0u);   // nothing delivered yet
  CHECK_EQ(marked, 0);
  // Record 5 SACKed at 1100: RACK's segment went at 1005, RACK.rtt 95.
  SackBlock five = {first + 500, first + 600};
  CHECK_EQ(b.Sack(&five, 1, first, first + 1000, &rack, 1100), 100u);
  CHECK(rack.valid);
  CHECK_EQ(rack.xmit_ns, 1005u);
  CHECK_EQ(rack.end_seq, first + 600);
  CHECK_EQ(rack.rtt_ns, 95u);
  CHECK_EQ(rack.min_rtt_ns, 50u);
  // 0..4 are lost at 1000 + 95 + 10 .. 1004 + 95 + 10: none yet; the last
  // waits 9 more.
  CHECK_EQ(b.RackDetectLost(rack, 10, 1100, &marked), 9u);
  CHECK_EQ(marked, 0);
  CHECK_EQ(b.RackDetectLost(rack, 10, 1107, &marked), 2u);   // 0, 1, 2 lost
  CHECK_EQ(marked, 3);
  CHECK_EQ(b.pipe(), 600u);
  // 0 and 1 go again at 1200; 1's SACK at 1230 comes sooner than min_RTT
  // after: the original's, which tells RACK nothing.
  b.Sent(b.begin(), 1200);
  b.Sent(b.begin() + 1, 1200);
  SackBlock one = {first + 100, first + 200};
  CHECK_EQ(b.Sack(&one, 1, first, first + 1000, &rack, 1230), 100u);
  CHECK_EQ(rack.xmit_ns, 1005u);
  // New data at 1210, SACKed at 1300 (RACK.rtt 90): the retransmission of
  // 0 (1200 + 90 + 10 <= 1300) is lost again, so are 3, 4 and 6..9; 2 is
  // still waiting for its retransmission.
  const uint64_t r = b.Append(first + 1000);
  b.at(r).len = 100;
  b.Sent(r, 1210);
  SackBlock ten = {first + 1000, first + 1100};
  CHECK_EQ(b.Sack(&ten, 1, first, first + 1100, &rack, 1300), 100u);
  CHECK_EQ(rack.xmit_ns, 1210u);
  CHECK_EQ(rack.rtt_ns, 90u);
  CHECK_EQ(b.RackDetectLost(rack, 10, 1300, &marked), 0u);
  CHECK_EQ(marked, 7);
  CHECK_EQ(b.at(b.begin()).transmissions, 2u);
  CHECK(b.at(b.begin()).needs_rtx);
  CHECK_EQ(b.pipe(), 0u);
  CHECK_EQ(b.NextToRetransmit(b.begin()), b.begin());
}

}  // namespace

int main() {
  rtt_first_and_later_samples();
  newreno_windows();
  cubic_beta_windows();
  scoreboard_pipe_sack_loss();
  scoreboard_grows_keeping_slots();
  scoreboard_rack_detects_lost_retransmission();
  if (g_failures) {
    std::fprintf(stderr, "tcp_scoreboard_test: %d of %d checks failed\n", g_failures.load(),
                 g_checks.load());
    return 1;
  }
  std::printf("tcp_scoreboard_test: %d checks passed\n", g_checks.load());
  return 0;
}

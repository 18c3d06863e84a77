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

void newreno_windows() {
  NewReno c;
  c.Init(1000, 10, 1u << 20);
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

}  // namespace

int main() {
  rtt_first_and_later_samples();
  newreno_windows();
  scoreboard_pipe_sack_loss();
  scoreboard_grows_keeping_slots();
  if (g_failures) {
    std::fprintf(stderr, "tcp_scoreboard_test: %d of %d checks failed\n", g_failures.load(),
                 g_checks.load());
    return 1;
  }
  std::printf("tcp_scoreboard_test: %d checks passed\n", g_checks.load());
  return 0;
}

// Tests of a TCP connection's FrameSource (native/tcp/frame_pool): block
// keys read from ALC headers (PROTOCOL.md §8), eviction, the reserve kept
// for retransmissions, Refresh's choice of replacement, control frames, and
// one pusher thread against one taker.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "replicate/engine.h"
#include "replicate/tcp_sink.h"
#include "tcp/frame_pool.h"
#include "tcp/ready_queue.h"

#include "check.h"

using namespace rqcast::tcp;

namespace {

using Bytes = std::vector<uint8_t>;

// An ALC packet as rqcast sends it (PROTOCOL.md §8.1, no extensions, TSI
// 7): V=1, CP 6, CCI 0, then SBN | ESI and `symbol` bytes (the ESI
// repeated, so that each packet is unique). alc(): TSI and TOI of 32 bits
// (S=1, O=1, HDR_LEN 4 words), as when either needs them; alc16(): of 16
// bits (H=1, HDR_LEN 3 words), 4 bytes fewer.
Bytes alc_form(bool short_ids, uint32_t toi, uint8_t sbn, uint32_t esi, size_t symbol) {
  const size_t header = short_ids ? 12 : 16;
  Bytes p(header + 4 + symbol);
  p[0] = 0x10;
  p[1] = short_ids ? 0x10 : 0xa0;
  p[2] = static_cast<uint8_t>(header / 4);
  p[3] = 6;
  const size_t id = short_ids ? 2 : 4;  // bytes of TSI, then of TOI
  p[8 + id - 1] = 7;
  for (size_t i = 0; i < id; ++i) p[8 + 2 * id - 1 - i] = static_cast<uint8_t>(toi >> (8 * i));
  p[header] = sbn;
  p[header + 1] = esi >> 16, p[header + 2] = esi >> 8, p[header + 3] = esi;
  for (size_t i = 0; i < symbol; ++i) p[header + 4 + i] = static_cast<uint8_t>(esi + i);
  return p;
}
Bytes alc(uint32_t toi, uint8_t sbn, uint32_t esi, size_t symbol = 8) { return alc_form(false, toi, sbn, esi, symbol); }
Bytes alc16(uint16_t toi, uint8_t sbn, uint32_t esi, size_t symbol = 8) { return alc_form(true, toi, sbn, esi, symbol); }

uint32_t esi_of(const uint8_t* frame) {  // of a framed alc() packet
  const uint8_t* p = frame + 2;
  return (p[17] << 16) | (p[18] << 8) | p[19];
}

void push(FramePool& pool, const Bytes& p, uint32_t channel = 7) {
  CHECK(pool.Push(channel, p.data(), p.size()));
}

void test_block_key() {
  uint64_t a, b, c, d;
  Bytes p = alc(1, 0, 0);
  CHECK(BlockKeyOf(7, p.data(), p.size(), &a));
  Bytes q = alc(1, 0, 99);
  CHECK(BlockKeyOf(7, q.data(), q.size(), &b));
  CHECK_EQ(a, b);  // same (channel, TOI, SBN): same block
  Bytes r = alc(1, 1, 0);
  CHECK(BlockKeyOf(7, r.data(), r.size(), &c));
  CHECK(a != c);   // another SBN
  CHECK(BlockKeyOf(8, p.data(), p.size(), &d));
  CHECK(a != d);   // another channel
  Bytes fdt = alc(0, 0, 0);
  CHECK(!BlockKeyOf(7, fdt.data(), fdt.size(), &a));
  // Not ALC: a control message, a bad version, HDR_LEN past the packet,
  // no symbol byte after the payload ID, another FEC encoding.
  Bytes ctl = {0x52, 0x51, 1, 1, 0, 8, 0, 0};
  CHECK(!BlockKeyOf(7, ctl.data(), ctl.size(), &a));
  Bytes bad = p;
  bad[0] = 0x20;
  CHECK(!BlockKeyOf(7, bad.data(), bad.size(), &a));
  bad = p;
  bad[2] = 200;
  CHECK(!BlockKeyOf(7, bad.data(), bad.size(), &a));
  bad = alc(1, 0, 0, 0);
  CHECK(!BlockKeyOf(7, bad.data(), bad.size(), &a));
  bad = p;
  bad[3] = 5;
  CHECK(!BlockKeyOf(7, bad.data(), bad.size(), &a));
  bad = p;
  bad[2] = 3;  // HDR_LEN shorter than the fixed fields
  CHECK(!BlockKeyOf(7, bad.data(), bad.size(), &a));
  CHECK(!BlockKeyOf(7, p.data(), 3, &a));
  // Every prefix of a packet is read within bounds (and refused).
  for (size_t n = 0; n <= 20; ++n) CHECK(!BlockKeyOf(7, p.data(), n, &a));
}

void test_frames_are_framed() {
  FramePoolConfig c;
  c.reserve = 0;
  FramePool pool(c);
  Bytes p = alc(1, 0, 5);
  push(pool, p);
  CHECK(pool.TakeReady());
  CHECK(!pool.TakeReady());
  uint8_t out[2000];
  FrameInfo info;
  CHECK_EQ(pool.NextFrame(out, p.size() + 1, &info), 0u);  // too short: kept
  CHECK_EQ(pool.NextFrame(out, sizeof out, &info), p.size() + 2);
  CHECK_EQ(info.kind, FrameInfo::kData);
  CHECK_EQ(info.length, p.size() + 2);
  CHECK_EQ(info.header, 16u);
  CHECK_EQ(out[0], 0);
  CHECK_EQ(out[1], p.size());
  CHECK(std::memcmp(out + 2, p.data(), p.size()) == 0);
  CHECK_EQ(pool.NextFrame(out, sizeof out, &info), 0u);
}

void test_full_pool_drops_arrivals() {
  // A full pool keeps what it has and drops what arrives, uncopied.
  FramePoolConfig c;
  c.pool_packets = 4;
  c.reserve = 0;
  FramePool pool(c);
  for (uint32_t i = 0; i < 10; ++i) push(pool, alc(1, 0, i));
  FramePoolStats s = pool.stats();
  CHECK_EQ(s.evicted, 6u);
  CHECK_EQ(s.pushed, 4u);
  CHECK_EQ(s.queued, 4u);
  uint8_t out[2000];
  FrameInfo info;
  for (uint32_t i = 0; i < 4; ++i) {  // the first four, in order
    CHECK(pool.NextFrame(out, sizeof out, &info) > 0);
    CHECK_EQ(esi_of(out), i);
  }
  CHECK_EQ(pool.NextFrame(out, sizeof out, &info), 0u);
}

void test_reserve_honoured() {
  FramePoolConfig c;
  c.reserve = 3;
  FramePool pool(c);
  uint8_t out[2000];
  FrameInfo info;
  for (uint32_t i = 0; i < 3; ++i) push(pool, alc(1, 0, i));
  CHECK_EQ(pool.NextFrame(out, sizeof out, &info), 0u);  // all reserve
  push(pool, alc(1, 0, 3));
  CHECK(pool.NextFrame(out, sizeof out, &info) > 0);
  CHECK_EQ(esi_of(out), 0u);
  CHECK_EQ(pool.NextFrame(out, sizeof out, &info), 0u);
  // An FDT packet costs the reserve nothing: it goes out, as kControl.
  FramePool pool2(c);
  push(pool2, alc(0, 0, 1));
  push(pool2, alc(1, 0, 2));
  CHECK(pool2.NextFrame(out, sizeof out, &info) > 0);
  CHECK_EQ(info.kind, FrameInfo::kControl);
  CHECK_EQ(esi_of(out), 1u);
  CHECK_EQ(pool2.NextFrame(out, sizeof out, &info), 0u);
  // The reserve is there for Refresh.
  FrameInfo lost;
  lost.kind = FrameInfo::kData;
  lost.header = 16;
  lost.length = static_cast<uint32_t>(alc(1, 0, 0).size() + 2);
  uint64_t block = 0;
  CHECK(pool2.Refresh(lost, out, &block));
  CHECK_EQ(esi_of(out), 2u);
}

void test_refresh_prefers_same_block_then_length() {
  FramePoolConfig c;
  c.reserve = 0;
  FramePool pool(c);
  push(pool, alc(1, 0, 10, 8));   // block A, length L
  push(pool, alc(1, 1, 20, 16));  // block B, other length
  push(pool, alc(1, 1, 21, 8));   // block B, length L
  push(pool, alc(1, 2, 30, 8));   // block C, length L
  uint64_t key_b, key_c;
  Bytes b = alc(1, 1, 0, 8), cc = alc(1, 2, 0, 8);
  BlockKeyOf(7, b.data(), b.size(), &key_b);
  BlockKeyOf(7, cc.data(), cc.size(), &key_c);
  uint8_t out[2000];
  uint64_t block = 0;
  FrameInfo lost;
  lost.kind = FrameInfo::kData;
  lost.header = 16;
  lost.length = static_cast<uint32_t>(b.size() + 2);
  lost.block = key_c;
  CHECK(pool.Refresh(lost, out, &block));  // same block C, though last
  CHECK_EQ(esi_of(out), 30u);
  CHECK_EQ(block, key_c);
  CHECK(pool.Refresh(lost, out, &block));  // none of C left: oldest of L
  CHECK_EQ(esi_of(out), 10u);
  CHECK(pool.Refresh(lost, out, &block));
  CHECK_EQ(esi_of(out), 21u);
  CHECK_EQ(block, key_b);
  CHECK(!pool.Refresh(lost, out, &block));  // only the 16-byte one is left
  lost.length = static_cast<uint32_t>(alc(1, 1, 0, 16).size() + 2);
  CHECK(pool.Refresh(lost, out, &block));
  CHECK_EQ(esi_of(out), 20u);
  FramePoolStats s = pool.stats();
  CHECK_EQ(s.refreshed, 4u);
  CHECK_EQ(s.no_replacement, 1u);
  CHECK_EQ(s.queued, 0u);
  // A lost control frame is never refreshed.
  push(pool, alc(1, 0, 40, 8));
  lost.kind = FrameInfo::kControl;
  lost.length = static_cast<uint32_t>(b.size() + 2);
  CHECK(!pool.Refresh(lost, out, &block));
}

// A lost frame is replaced only by a packet with its LCT header length:
// a 16-bit TSI/TOI packet (12-byte header) with a symbol 4 bytes longer has
// the same frame length as a 32-bit one (16 bytes), and still never stands
// in for it, nor the reverse (PROTOCOL.md §10.11).
void test_refresh_keeps_header_length() {
  FramePoolConfig c;
  c.reserve = 0;
  FramePool pool(c);
  const Bytes wide = alc(0x10000, 0, 1, 8), narrow = alc16(1, 0, 2, 12);
  CHECK_EQ(wide.size(), narrow.size());
  push(pool, narrow);
  uint8_t out[2000];
  uint64_t block = 0;
  FrameInfo lost;
  lost.kind = FrameInfo::kData;
  lost.length = static_cast<uint32_t>(wide.size() + 2);
  lost.header = 16;
  CHECK(!pool.Refresh(lost, out, &block));  // only a 12-byte header there
  push(pool, wide);
  CHECK(pool.Refresh(lost, out, &block));
  CHECK(std::memcmp(out + 2, wide.data(), wide.size()) == 0);
  lost.header = 12;
  push(pool, alc(0x10001, 0, 3, 8));
  CHECK(pool.Refresh(lost, out, &block));   // the narrow one, not the newer wide one
  CHECK(std::memcmp(out + 2, narrow.data(), narrow.size()) == 0);
  CHECK(!pool.Refresh(lost, out, &block));
  FramePoolStats s = pool.stats();
  CHECK_EQ(s.refreshed, 2u);
  CHECK_EQ(s.no_replacement, 2u);
  // New data tells the connection each packet's header length.
  FrameInfo info;
  CHECK(pool.NextFrame(out, sizeof out, &info) > 0);
  CHECK_EQ(info.header, 16u);
  push(pool, narrow);
  CHECK(pool.NextFrame(out, sizeof out, &info) > 0);
  CHECK_EQ(info.header, 12u);
  // The 16-bit form names its block as the 32-bit one does: TSI, TOI, SBN.
  uint64_t a, b2;
  const Bytes other = alc16(1, 1, 2, 12);
  CHECK(BlockKeyOf(7, narrow.data(), narrow.size(), &a));
  CHECK(BlockKeyOf(7, other.data(), other.size(), &b2));
  CHECK(a != b2);
  const Bytes fdt16 = alc16(0, 0, 0);
  CHECK(!BlockKeyOf(7, fdt16.data(), fdt16.size(), &a));
}

void test_never_twice() {
  // Every packet leaves the pool once, whether as new data or replacement.
  FramePoolConfig c;
  c.reserve = 4;
  FramePool pool(c);
  std::multiset<uint32_t> seen;
  uint8_t out[2000];
  FrameInfo info, lost;
  lost.kind = FrameInfo::kData;
  lost.header = 16;
  lost.length = static_cast<uint32_t>(alc(1, 0, 0).size() + 2);
  uint64_t block;
  for (uint32_t i = 0; i < 200; ++i) {
    push(pool, alc(1, i % 3, i));
    if (i % 2 == 0 && pool.NextFrame(out, sizeof out, &info) > 0) seen.insert(esi_of(out));
    if (i % 5 == 0 && pool.Refresh(lost, out, &block)) seen.insert(esi_of(out));
  }
  while (pool.NextFrame(out, sizeof out, &info) > 0) seen.insert(esi_of(out));
  while (pool.Refresh(lost, out, &block)) seen.insert(esi_of(out));
  CHECK_EQ(seen.size(), 200u);
  for (uint32_t e : seen) CHECK_EQ(seen.count(e), 1u);
}

void test_fdt_and_unparsed_never_replacements() {
  FramePoolConfig c;
  c.reserve = 0;
  FramePool pool(c);
  Bytes fdt = alc(0, 0, 1);
  Bytes junk(fdt.size(), 0xee);
  push(pool, fdt);
  push(pool, junk);
  FrameInfo lost;
  lost.kind = FrameInfo::kData;
  lost.header = 16;
  lost.length = static_cast<uint32_t>(fdt.size() + 2);
  uint8_t out[2000];
  uint64_t block;
  CHECK(!pool.Refresh(lost, out, &block));
  FrameInfo info;
  CHECK(pool.NextFrame(out, sizeof out, &info) > 0);
  CHECK_EQ(info.kind, FrameInfo::kControl);
  CHECK(pool.NextFrame(out, sizeof out, &info) > 0);
  CHECK_EQ(info.kind, FrameInfo::kControl);
  CHECK(std::memcmp(out + 2, junk.data(), junk.size()) == 0);
  CHECK_EQ(pool.stats().sent_plain, 2u);
}

void test_control_frames() {
  FramePoolConfig c;
  c.reserve = 0;
  c.max_control_bytes = 100;
  FramePool pool(c);
  push(pool, alc(1, 0, 1));
  Bytes m1(40, 0x52), m2(50, 0x53);
  CHECK(pool.PushControl(m1.data(), m1.size()));
  CHECK(pool.PushControl(m2.data(), m2.size()));
  CHECK(!pool.PushControl(m1.data(), 10));  // 42 + 52 + 12 > 100: refused
  CHECK(!pool.PushControl(m1.data(), 0));
  CHECK_EQ(pool.stats().control_refused, 2u);
  CHECK_EQ(pool.stats().control_bytes, 94u);
  // Control first, and never dropped however many stream packets come.
  for (uint32_t i = 0; i < 1000; ++i) push(pool, alc(1, 0, 100 + i));
  uint8_t out[2000];
  FrameInfo info;
  CHECK_EQ(pool.NextFrame(out, 41, &info), 0u);  // does not fit: not skipped
  CHECK_EQ(pool.NextFrame(out, sizeof out, &info), 42u);
  CHECK_EQ(info.kind, FrameInfo::kControl);
  CHECK_EQ(out[2], 0x52);
  CHECK_EQ(pool.NextFrame(out, sizeof out, &info), 52u);
  CHECK_EQ(out[2], 0x53);
  CHECK(pool.NextFrame(out, sizeof out, &info) > 0);
  CHECK_EQ(info.kind, FrameInfo::kData);
  // After CloseSource: control frames still, data no more; Refresh still.
  CHECK(pool.PushControl(m1.data(), m1.size()));
  pool.CloseSource();
  CHECK_EQ(pool.NextFrame(out, sizeof out, &info), 42u);
  CHECK_EQ(pool.NextFrame(out, sizeof out, &info), 0u);
  FrameInfo lost;
  lost.kind = FrameInfo::kData;
  lost.header = 16;
  lost.length = static_cast<uint32_t>(alc(1, 0, 0).size() + 2);
  uint64_t block;
  CHECK(pool.Refresh(lost, out, &block));
  Bytes p = alc(1, 0, 5000);
  CHECK(!pool.Push(7, p.data(), p.size()));
  // Detach: nothing more is taken.
  pool.Detach();
  CHECK(!pool.PushControl(m1.data(), m1.size()));
  CHECK_EQ(pool.stats().queued, 0u);
}

void test_refuses_bad_lengths() {
  FramePool pool{FramePoolConfig()};
  Bytes big(70000, 0x10);
  CHECK(!pool.Push(7, big.data(), big.size()));
  CHECK(!pool.Push(7, big.data(), 0));
  CHECK(pool.Push(7, big.data(), 65535));
  CHECK_EQ(pool.stats().refused, 2u);
}

void test_threads() {
  // One engine thread pushing, one TCP thread taking: every packet taken
  // once, in order, none invented.
  FramePoolConfig c;
  c.pool_packets = 64;
  c.reserve = 0;
  FramePool pool(c);
  constexpr uint32_t kN = 20000;
  std::thread t([&] {
    for (uint32_t i = 0; i < kN; ++i) {
      Bytes p = alc(1, 0, i);
      pool.Push(7, p.data(), p.size());
    }
  });
  uint8_t out[2000];
  FrameInfo info;
  uint32_t got = 0, last = 0;
  bool ordered = true;
  while (true) {
    if (pool.NextFrame(out, sizeof out, &info) > 0) {
      uint32_t e = esi_of(out);
      if (got > 0 && e <= last) ordered = false;
      last = e;
      ++got;
      continue;
    }
    if (pool.stats().pushed + pool.stats().evicted == kN && pool.stats().queued == 0) break;
    std::this_thread::yield();
  }
  t.join();
  CHECK(ordered);
  FramePoolStats s = pool.stats();
  CHECK_EQ(got + s.evicted, kN);
}

Bytes frame_payload(const uint8_t* out) {
  const size_t len = (static_cast<size_t>(out[0]) << 8) | out[1];
  return Bytes(out + 2, out + 2 + len);
}

// Pushes packets alc(1, 0, first..first+count) into channel 7, each retried
// over engine loops while the ring is full; returns how many went in.
uint32_t push_through(rqcast::replicate::Engine& engine, uint32_t first, uint32_t count) {
  uint32_t pushed = 0;
  for (uint32_t i = first; i < first + count; ++i) {
    Bytes p = alc(1, 0, i);
    uint32_t accepted = 0;
    for (int tries = 0; tries < 50 && accepted == 0; ++tries) {
      engine.push_packets(7, p.data(), static_cast<uint32_t>(p.size()), 1, &accepted);
      if (accepted == 0) engine.barrier();
    }
    if (accepted == 0) break;
    pushed += accepted;
  }
  return pushed;
}

void test_tcp_sink_beside_others_never_holds_back() {
  // Two connections on one channel: the engine hands each TcpSink every
  // run, each pool takes the whole run (a full one drops the rest), so the
  // ring drains and neither connection slows the channel; each TCP thread
  // wake-up is one per ready transition.
  using namespace rqcast::replicate;
  Engine engine(EngineOptions{}, nullptr);
  CHECK_EQ(engine.start(), 0);
  ChannelConfig cc;
  cc.capacity = 64;
  CHECK_EQ(engine.create_channel(7, cc), 0);
  FramePoolConfig c;
  c.pool_packets = 50;
  c.reserve = 0;
  auto pool = std::make_shared<FramePool>(c);
  auto other = std::make_shared<FramePool>(c);
  auto ready = std::make_shared<ReadyQueue>();
  auto sink = std::make_shared<TcpSink>(pool, ready, 7, 42);
  auto other_sink = std::make_shared<TcpSink>(other, ready, 7, 43);
  CHECK_EQ(sink->destination_count(), 1u);
  CHECK_EQ(engine.add_sink(7, sink), 0);
  CHECK_EQ(engine.add_sink(7, other_sink), 0);
  CHECK_EQ(push_through(engine, 0, 200), 200u);
  CHECK_EQ(engine.barrier(), 0);
  for (const auto& p : {pool, other}) {
    FramePoolStats s = p->stats();
    CHECK_EQ(s.pushed, 50u);
    CHECK_EQ(s.queued, 50u);
    CHECK_EQ(s.evicted, 150u);
    CHECK_EQ(s.held, 0u);
  }
  // The channel counts what its TCP sinks copied: every packet, once per
  // connection (the pools' evictions are theirs to count).
  ChannelStats cs;
  CHECK_EQ(engine.channel_stats(7, &cs), 0);
  CHECK_EQ(cs.tcp_packets, 400u);
  CHECK_EQ(cs.tcp_bytes, 400u * alc(1, 0, 0).size());
  CHECK_EQ(cs.datagrams, 0u);
  std::vector<uint32_t> ids;
  ready->Take(&ids);
  std::sort(ids.begin(), ids.end());
  CHECK(ids == std::vector<uint32_t>({42, 43}));  // one wake-up each until polled
  uint8_t out[2000];
  FrameInfo info;
  CHECK(pool->NextFrame(out, sizeof out, &info) > 0);
  CHECK_EQ(info.kind, FrameInfo::kData);
  Bytes first = alc(1, 0, 0);
  CHECK(frame_payload(out) == first);
  uint64_t key = 0;
  CHECK(BlockKeyOf(7, first.data(), first.size(), &key));
  CHECK_EQ(info.block, key);  // tagged with the channel
  // Polled: the next push wakes again.
  CHECK(pool->TakeReady());
  CHECK_EQ(push_through(engine, 999, 1), 1u);
  CHECK_EQ(engine.barrier(), 0);
  ids.clear();
  ready->Take(&ids);
  CHECK_EQ(ids.size(), 1u);
  // Gone: no destination any more.
  pool->Detach();
  CHECK_EQ(sink->destination_count(), 0u);
  CHECK_EQ(engine.remove_sink(7, sink.get()), 0);
  CHECK_EQ(engine.remove_sink(7, other_sink.get()), 0);
  engine.stop();
}

void test_sole_tcp_sink_paces_its_channel() {
  // The channel's only receiver: a full pool holds the stream back (the
  // ring fills and the producer is refused) instead of dropping; draining
  // half the pool runs the room callback, which wakes the engine, and the
  // held packets then arrive, every one, in stream order.
  using namespace rqcast::replicate;
  Engine engine(EngineOptions{}, nullptr);
  CHECK_EQ(engine.start(), 0);
  ChannelConfig cc;
  cc.capacity = 16;
  cc.low_water = 4;
  CHECK_EQ(engine.create_channel(7, cc), 0);
  FramePoolConfig c;
  c.pool_packets = 20;
  c.reserve = 0;
  auto pool = std::make_shared<FramePool>(c);
  std::atomic<int> rooms{0};
  pool->SetRoomCallback([&] {
    ++rooms;
    engine.wake();
  });
  auto ready = std::make_shared<ReadyQueue>();
  auto sink = std::make_shared<TcpSink>(pool, ready, 7, 42);
  CHECK_EQ(engine.add_sink(7, sink), 0);
  // 20 in the pool, 16 held in the ring: the 37th push is refused.
  CHECK_EQ(push_through(engine, 0, 40), 36u);
  FramePoolStats s = pool->stats();
  CHECK_EQ(s.queued, 20u);
  CHECK_EQ(s.evicted, 0u);
  CHECK(s.held > 0);
  // Held packets stay in the ring: only the 20 copied are counted.
  ChannelStats cs;
  CHECK_EQ(engine.channel_stats(7, &cs), 0);
  CHECK_EQ(cs.tcp_packets, 20u);
  uint8_t out[2000];
  FrameInfo info;
  uint32_t next = 0;
  // Taking 9 leaves 11 (> half): no room yet.
  for (int i = 0; i < 9; ++i) {
    CHECK(pool->NextFrame(out, sizeof out, &info) > 0);
    CHECK_EQ(esi_of(out), next++);
  }
  CHECK_EQ(rooms.load(), 0);
  CHECK(pool->NextFrame(out, sizeof out, &info) > 0);  // 10 left: half
  CHECK_EQ(esi_of(out), next++);
  CHECK_EQ(rooms.load(), 1);
  CHECK_EQ(engine.barrier(), 0);
  CHECK_EQ(engine.barrier(), 0);
  // The engine came back: the ring's 16 went on into the pool.
  CHECK_EQ(pool->stats().queued, 20u);
  while (pool->NextFrame(out, sizeof out, &info) > 0) {
    CHECK_EQ(esi_of(out), next++);
    if (next == 36) break;
    engine.barrier();
  }
  CHECK_EQ(next, 36u);
  CHECK_EQ(pool->stats().evicted, 0u);
  CHECK_EQ(engine.channel_stats(7, &cs), 0);
  CHECK_EQ(cs.tcp_packets, 36u);
  engine.remove_sink(7, sink.get());
  engine.stop();
}

}  // namespace

int main() {
  test_block_key();
  test_frames_are_framed();
  test_full_pool_drops_arrivals();
  test_reserve_honoured();
  test_refresh_prefers_same_block_then_length();
  test_refresh_keeps_header_length();
  test_never_twice();
  test_fdt_and_unparsed_never_replacements();
  test_control_frames();
  test_refuses_bad_lengths();
  test_threads();
  test_tcp_sink_beside_others_never_holds_back();
  test_sole_tcp_sink_paces_its_channel();
  if (g_failures) {
    std::fprintf(stderr, "tcp_frame_pool_test: %d of %d checks failed\n",
                 g_failures.load(), g_checks.load());
    return 1;
  }
  std::printf("tcp_frame_pool_test: %d checks passed\n", g_checks.load());
  return 0;
}

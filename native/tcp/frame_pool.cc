#include "tcp/frame_pool.h"

#include <algorithm>
#include <cstring>

namespace rqcast {
namespace tcp {

namespace {

// FNV-1a over the bytes that name a block, then a splitmix64 finish: the
// key only has to tell the blocks of one pool apart (a collision makes a
// replacement come from another block of the same length, which any
// retransmission may do anyway).
struct KeyHash {
  uint64_t h = 0xcbf29ce484222325ull;
  void add(uint8_t b) { h = (h ^ b) * 0x100000001b3ull; }
  uint64_t finish() const {
    uint64_t z = h + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

}  // namespace

bool BlockKeyOf(uint32_t channel, const uint8_t* p, size_t len, uint64_t* key) {
  // RFC 5651 §5.1: V = 1, C, S, O, H give the sizes of CCI, TSI and TOI;
  // HDR_LEN words of header, then the RFC 6330 FEC Payload ID (Codepoint 6).
  if (len < 4 || (p[0] >> 4) != 1 || p[3] != 6) return false;
  const size_t c = (p[0] >> 2) & 3, s = (p[1] >> 7) & 1, o = (p[1] >> 5) & 3,
               h = (p[1] >> 4) & 1;
  const size_t cci = 4 * (c + 1), tsi = 4 * s + 2 * h, toi = 4 * o + 2 * h;
  const size_t header = static_cast<size_t>(p[2]) * 4;
  if (4 + cci + tsi + toi > header || header + 4 >= len) return false;
  const uint8_t* t = p + 4 + cci + tsi;
  bool fdt = true;
  for (size_t i = 0; i < toi; ++i) fdt = fdt && t[i] == 0;
  if (fdt) return false;  // TOI 0 (or none): the FDT, FLUTE's own
  KeyHash k;
  for (int i = 0; i < 4; ++i) k.add(static_cast<uint8_t>(channel >> (8 * i)));
  k.add(static_cast<uint8_t>(toi));
  for (size_t i = 0; i < toi; ++i) k.add(t[i]);
  k.add(p[header]);  // SBN
  *key = k.finish();
  return true;
}

FramePool::FramePool(const FramePoolConfig& config) : config_(config) {}

bool FramePool::Push(uint32_t channel, const uint8_t* packet, size_t len) {
  bool ok;
  {
    std::lock_guard<std::mutex> lk(mu_);
    ok = PushLocked(channel, packet, len);
  }
  if (ok) ready_.store(true, std::memory_order_release);
  return ok;
}

bool FramePool::PushLocked(uint32_t channel, const uint8_t* packet, size_t len) {
  if (len == 0 || len > kMaxFramedPacket) {
    ++stats_.refused;
    return false;
  }
  if (source_closed_ || detached_.load(std::memory_order_relaxed) ||
      config_.pool_packets == 0) {
    ++stats_.dropped_closed;
    return false;
  }
  if (pool_.size() >= config_.pool_packets) {
    // Full: the new packet goes, uncopied (any packet of the stream serves
    // as well as another, and the pool's keep it busy).
    ++stats_.evicted;
    return true;
  }
  Packet n;
  if (!spare_.empty()) {
    n.bytes.swap(spare_.back());
    spare_.pop_back();
  }
  n.bytes.assign(packet, packet + len);
  n.refreshable = BlockKeyOf(channel, packet, len, &n.block);
  // HDR_LEN, read by BlockKeyOf: a refreshable packet has one.
  n.header = n.refreshable ? static_cast<uint16_t>(packet[2] * 4) : 0;
  if (n.refreshable) ++refreshable_;
  pool_.push_back(std::move(n));
  ++stats_.pushed;
  return true;
}

void FramePool::Recycle(Packet& p) {
  // A bounded free list: as many buffers as the pool holds packets.
  if (spare_.size() < config_.pool_packets && p.bytes.capacity() != 0) {
    spare_.emplace_back();
    spare_.back().swap(p.bytes);
  }
}

bool FramePool::PushControl(const uint8_t* packet, size_t len, bool* became_ready) {
  std::lock_guard<std::mutex> lk(mu_);
  const uint64_t framed = kFrameHeader + len;
  if (len == 0 || len > kMaxFramedPacket || detached_.load(std::memory_order_relaxed) ||
      control_bytes_ + framed > config_.max_control_bytes) {
    ++stats_.control_refused;
    return false;
  }
  control_.emplace_back(packet, packet + len);
  control_bytes_ += framed;
  const bool was = ready_.exchange(true, std::memory_order_acq_rel);
  if (became_ready) *became_ready = !was;
  return true;
}

void FramePool::CloseSource() {
  std::lock_guard<std::mutex> lk(mu_);
  source_closed_ = true;
}

void FramePool::Detach() {
  std::lock_guard<std::mutex> lk(mu_);
  detached_.store(true, std::memory_order_relaxed);
  source_closed_ = true;
  stats_.dropped_closed += pool_.size();
  pool_.clear();
  pool_.shrink_to_fit();
  refreshable_ = 0;
  control_.clear();
  control_bytes_ = 0;
  spare_.clear();
  spare_.shrink_to_fit();
}

void FramePool::WriteFrame(const std::vector<uint8_t>& packet, uint8_t* out) {
  out[0] = static_cast<uint8_t>(packet.size() >> 8);
  out[1] = static_cast<uint8_t>(packet.size());
  std::memcpy(out + kFrameHeader, packet.data(), packet.size());
}

size_t FramePool::NextFrame(uint8_t* out, size_t max_bytes, FrameInfo* info) {
  bool room = false;
  const size_t n = NextFrameLocked(out, max_bytes, info, room);
  NotifyRoom(room);
  return n;
}

size_t FramePool::NextFrameLocked(uint8_t* out, size_t max_bytes, FrameInfo* info, bool& room) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!control_.empty()) {
    const size_t framed = kFrameHeader + control_.front().size();
    if (framed > max_bytes) return 0;  // never skipped: asked again later
    WriteFrame(control_.front(), out);
    control_.pop_front();
    control_bytes_ -= framed;
    ++stats_.control_frames;
    *info = FrameInfo();
    info->kind = FrameInfo::kControl;
    info->length = static_cast<uint32_t>(framed);
    return framed;
  }
  if (source_closed_ || pool_.empty()) return 0;
  Packet& p = pool_.front();
  // New data leaves `reserve` refreshable packets for retransmissions; a
  // packet that can replace none costs the reserve nothing.
  if (p.refreshable && refreshable_ <= config_.reserve) return 0;
  const size_t framed = kFrameHeader + p.bytes.size();
  if (framed > max_bytes) return 0;
  WriteFrame(p.bytes, out);
  *info = FrameInfo();
  info->length = static_cast<uint32_t>(framed);
  if (p.refreshable) {
    info->kind = FrameInfo::kData;
    info->block = p.block;
    info->header = p.header;
    --refreshable_;
    ++stats_.sent_data;
  } else {
    info->kind = FrameInfo::kControl;
    ++stats_.sent_plain;
  }
  Recycle(p);
  pool_.pop_front();
  room = RoomLocked();
  return framed;
}

bool FramePool::Refresh(const FrameInfo& lost, uint8_t* out, uint64_t* block) {
  bool room = false;
  const bool ok = RefreshLocked(lost, out, block, room);
  NotifyRoom(room);
  return ok;
}

bool FramePool::RefreshLocked(const FrameInfo& lost, uint8_t* out, uint64_t* block, bool& room) {
  std::lock_guard<std::mutex> lk(mu_);
  if (lost.kind != FrameInfo::kData || lost.length <= kFrameHeader) {
    ++stats_.no_replacement;
    return false;
  }
  const size_t want = lost.length - kFrameHeader;
  // Same block first (its symbols are what the client was missing), then
  // any block whose packets have the length the segment needs and the lost
  // packet's header length (so the symbol's size and offset too: a 16-bit
  // TSI/TOI packet never replaces a 32-bit one, nor the reverse).
  auto same_len = pool_.end(), same_block = pool_.end();
  for (auto it = pool_.begin(); it != pool_.end(); ++it) {
    if (!it->refreshable || it->bytes.size() != want || it->header != lost.header) continue;
    if (it->block == lost.block) {
      same_block = it;
      break;
    }
    if (same_len == pool_.end()) same_len = it;
  }
  auto pick = same_block != pool_.end() ? same_block : same_len;
  if (pick == pool_.end()) {
    ++stats_.no_replacement;
    return false;
  }
  WriteFrame(pick->bytes, out);
  *block = pick->block;
  --refreshable_;
  ++stats_.refreshed;
  Recycle(*pick);
  pool_.erase(pick);
  room = RoomLocked();
  return true;
}

bool FramePool::RoomLocked() {
  if (!holding_ || pool_.size() > config_.pool_packets / 2) return false;
  holding_ = false;
  return true;
}

FramePoolStats FramePool::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  FramePoolStats s = stats_;
  s.queued = static_cast<uint32_t>(pool_.size());
  s.control_bytes = control_bytes_;
  return s;
}

}  // namespace tcp
}  // namespace rqcast

// ObjectDecoder: collects packets (§4.4.2) per source block, decodes each
// block as soon as it can, and scatters decoded symbols back into the
// object's byte order (§4.4.1.2).
//
// Memory: a block's BlockDecoder exists from its first packet until it is
// decoded; then only the block's K*T decoded bytes are kept (copied out of
// the decoder, which is dropped with its working matrices) until
// ReleaseBlock. Packets for decoded blocks are ignored without cost.
//
// Threads: each block has its own mutex, so an async decode of one block
// (TryDecodeBlock on a worker) can run while packets for other blocks
// arrive. Packets are untrusted network input: every field is checked
// before use.
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>

#include "fec/codec.h"

namespace rqcast {
namespace fec {

struct ObjectDecoder::Impl {
  struct Slot {
    mutable std::mutex mu;
    std::unique_ptr<BlockDecoder> decoder;  // until decoded
    SymbolBuffer source;                    // K*T bytes once decoded
    uint32_t received = 0;                  // distinct symbols at decode
    bool decoded = false;
    bool released = false;  // decoded, then ReleaseBlock
  };
  ObjectLayout layout;
  std::unique_ptr<Slot[]> slots;
  std::atomic<uint32_t> blocks_decoded{0};

  // Parses and checks a packet; on success *sbn/*esi are in range.
  Status Parse(const uint8_t* packet, size_t len, uint32_t* sbn,
               uint32_t* esi) const {
    if (packet == nullptr) return Status::kInvalidArgument;
    if (len != kPayloadIdSize + layout.oti.T) return Status::kBadPacketLength;
    uint8_t s;
    payload_id_decode(packet, &s, esi);
    // The ESI field is 24 bits wide, so *esi <= kMaxEsi by construction.
    if (s >= layout.oti.Z) return Status::kSbnOutOfRange;
    *sbn = s;
    return Status::kOk;
  }

  // Adds the symbol to its block; slot.mu must be held.
  Status AddLocked(Slot& slot, uint32_t sbn, uint32_t esi,
                   const uint8_t* symbol, bool* added) {
    *added = false;
    if (slot.decoded) return Status::kOk;  // nothing more to learn
    if (!slot.decoder) {
      slot.decoder.reset(new (std::nothrow) BlockDecoder(
          layout.source_symbols(sbn), layout.oti.T));
      if (!slot.decoder) return Status::kOutOfMemory;
    }
    BlockDecoder::AddResult r;
    Status s = slot.decoder->Add(esi, symbol, &r);
    if (s != Status::kOk) return s;
    *added = r == BlockDecoder::AddResult::kAdded;
    return Status::kOk;
  }

  // Decodes if the block holds enough symbols; slot.mu must be held.
  // kNeedMoreSymbols when it cannot decode yet.
  Status DecodeLocked(Slot& slot) {
    if (slot.decoded) return Status::kOk;
    if (!slot.decoder || slot.decoder->Received() < slot.decoder->K()) {
      return Status::kNeedMoreSymbols;
    }
    // Counted before decoding: a decoder may drop its repair symbols (and
    // with them its count) once it has the source block.
    const uint32_t received = slot.decoder->Received();
    Status s = slot.decoder->TryDecode();
    if (s != Status::kOk) return s;
    // The decoder's source buffer becomes the block's (no copy).
    slot.received = received;
    slot.source = slot.decoder->TakeSource();
    slot.decoder.reset();
    slot.decoded = true;
    blocks_decoded.fetch_add(1, std::memory_order_relaxed);
    return Status::kOk;
  }
};

Status ObjectDecoder::Create(const Oti& oti,
                             std::unique_ptr<ObjectDecoder>* out) {
  if (out == nullptr) return Status::kInvalidArgument;
  ObjectLayout layout;
  Status s = object_layout(oti, &layout);
  if (s != Status::kOk) return s;
  std::unique_ptr<ObjectDecoder> dec(new (std::nothrow) ObjectDecoder());
  if (!dec) return Status::kOutOfMemory;
  dec->impl_.reset(new (std::nothrow) Impl());
  if (!dec->impl_) return Status::kOutOfMemory;
  dec->impl_->slots.reset(new (std::nothrow) Impl::Slot[oti.Z]);
  if (!dec->impl_->slots) return Status::kOutOfMemory;
  dec->impl_->layout = layout;
  *out = std::move(dec);
  return Status::kOk;
}

ObjectDecoder::~ObjectDecoder() = default;

const ObjectLayout& ObjectDecoder::Layout() const { return impl_->layout; }

Status ObjectDecoder::AddPacket(const uint8_t* packet, size_t len,
                                bool* block_done) {
  if (block_done) *block_done = false;
  uint32_t sbn, esi;
  Status s = impl_->Parse(packet, len, &sbn, &esi);
  if (s != Status::kOk) return s;
  Impl::Slot& slot = impl_->slots[sbn];
  std::lock_guard<std::mutex> lock(slot.mu);
  if (slot.decoded) return Status::kOk;
  bool added;
  s = impl_->AddLocked(slot, sbn, esi, packet + kPayloadIdSize, &added);
  if (s != Status::kOk || !added) return s;
  s = impl_->DecodeLocked(slot);
  if (s == Status::kNeedMoreSymbols) return Status::kOk;
  if (s != Status::kOk) return s;
  if (block_done) *block_done = true;
  return Status::kOk;
}

Status ObjectDecoder::AddPacketNoDecode(const uint8_t* packet, size_t len,
                                        uint32_t* sbn) {
  uint32_t s_bn, esi;
  Status s = impl_->Parse(packet, len, &s_bn, &esi);
  if (s != Status::kOk) return s;
  if (sbn) *sbn = s_bn;
  Impl::Slot& slot = impl_->slots[s_bn];
  std::lock_guard<std::mutex> lock(slot.mu);
  bool added;
  return impl_->AddLocked(slot, s_bn, esi, packet + kPayloadIdSize, &added);
}

Status ObjectDecoder::TryDecodeBlock(uint32_t sbn) {
  if (sbn >= impl_->layout.oti.Z) return Status::kSbnOutOfRange;
  Impl::Slot& slot = impl_->slots[sbn];
  std::lock_guard<std::mutex> lock(slot.mu);
  return impl_->DecodeLocked(slot);
}

bool ObjectDecoder::BlockDecoded(uint32_t sbn) const {
  if (sbn >= impl_->layout.oti.Z) return false;
  const Impl::Slot& slot = impl_->slots[sbn];
  std::lock_guard<std::mutex> lock(slot.mu);
  return slot.decoded;
}

uint32_t ObjectDecoder::BlocksDecoded() const {
  return impl_->blocks_decoded.load(std::memory_order_relaxed);
}

bool ObjectDecoder::Complete() const {
  return BlocksDecoded() == impl_->layout.oti.Z;
}

uint32_t ObjectDecoder::Received(uint32_t sbn) const {
  if (sbn >= impl_->layout.oti.Z) return 0;
  const Impl::Slot& slot = impl_->slots[sbn];
  std::lock_guard<std::mutex> lock(slot.mu);
  if (slot.decoded) return slot.received;
  return slot.decoder ? slot.decoder->Received() : 0;
}

Status ObjectDecoder::CopyBlock(uint32_t sbn, uint8_t* out) const {
  const ObjectLayout& l = impl_->layout;
  if (sbn >= l.oti.Z) return Status::kSbnOutOfRange;
  if (out == nullptr) return Status::kInvalidArgument;
  const Impl::Slot& slot = impl_->slots[sbn];
  std::lock_guard<std::mutex> lock(slot.mu);
  if (!slot.decoded) return Status::kNeedMoreSymbols;
  if (slot.released) return Status::kInvalidArgument;
  deinterleave_block(l, l.source_symbols(sbn), slot.source.data(), out,
                     l.block_length(sbn));
  return Status::kOk;
}

// Releasing a block that is not decoded yet drops the symbols collected so
// far (the block starts over with later packets); a decoded block stays
// decoded, only its bytes go.
void ObjectDecoder::ReleaseBlock(uint32_t sbn) {
  if (sbn >= impl_->layout.oti.Z) return;
  Impl::Slot& slot = impl_->slots[sbn];
  std::lock_guard<std::mutex> lock(slot.mu);
  slot.decoder.reset();
  if (slot.decoded) {
    slot.source.reset();
    slot.released = true;
  }
}

bool ObjectDecoder::DiscardBlock(uint32_t sbn) {
  if (sbn >= impl_->layout.oti.Z) return false;
  Impl::Slot& slot = impl_->slots[sbn];
  std::lock_guard<std::mutex> lock(slot.mu);
  if (slot.decoded || !slot.decoder) return false;
  slot.decoder.reset();
  return true;
}

Status ObjectDecoder::TakeSource(uint32_t sbn, SymbolBuffer* out) {
  const ObjectLayout& l = impl_->layout;
  if (sbn >= l.oti.Z) return Status::kSbnOutOfRange;
  if (out == nullptr || l.oti.N != 1) return Status::kInvalidArgument;
  Impl::Slot& slot = impl_->slots[sbn];
  std::lock_guard<std::mutex> lock(slot.mu);
  if (!slot.decoded) return Status::kNeedMoreSymbols;
  if (slot.released) return Status::kInvalidArgument;
  *out = std::move(slot.source);
  slot.released = true;
  return Status::kOk;
}

size_t ObjectDecoder::HeldBytes(uint32_t sbn) const {
  if (sbn >= impl_->layout.oti.Z) return 0;
  const Impl::Slot& slot = impl_->slots[sbn];
  std::lock_guard<std::mutex> lock(slot.mu);
  if (slot.decoded) return slot.source.size();
  return slot.decoder ? slot.decoder->HeldBytes() : 0;
}

}  // namespace fec
}  // namespace rqcast

// ObjectEncoder: an object's blocks (RFC 6330 §4.4.1.2) and packets
// (§4.4.2: FEC Payload ID + one encoding symbol).
//
// Threads: PrepareBlock runs on worker threads, Packet on the sender's
// thread(s). Each block has its own slot guarded by a shared_mutex: symbol
// generation (BlockEncoder::Symbol is const) shares it, preparing and
// releasing take it exclusively. Distinct blocks never contend.
#include <memory>
#include <mutex>
#include <new>
#include <shared_mutex>

#include "fec/codec.h"

namespace rqcast {
namespace fec {

struct ObjectEncoder::Impl {
  struct Slot {
    std::shared_mutex mu;
    std::unique_ptr<BlockEncoder> encoder;
  };
  const uint8_t* data = nullptr;  // not owned; see Create
  ObjectLayout layout;
  std::unique_ptr<Slot[]> slots;  // one per source block
};

Status ObjectEncoder::Create(const uint8_t* data, uint64_t length,
                             const Oti& oti,
                             std::unique_ptr<ObjectEncoder>* out) {
  if (out == nullptr || data == nullptr) return Status::kInvalidArgument;
  ObjectLayout layout;
  Status s = object_layout(oti, &layout);
  if (s != Status::kOk) return s;
  // The OTI describes exactly this object: F is its length.
  if (length != oti.F) return Status::kInvalidArgument;
  std::unique_ptr<ObjectEncoder> enc(new (std::nothrow) ObjectEncoder());
  if (!enc) return Status::kOutOfMemory;
  enc->impl_.reset(new (std::nothrow) Impl());
  if (!enc->impl_) return Status::kOutOfMemory;
  enc->impl_->slots.reset(new (std::nothrow) Impl::Slot[oti.Z]);
  if (!enc->impl_->slots) return Status::kOutOfMemory;
  enc->impl_->data = data;
  enc->impl_->layout = layout;
  *out = std::move(enc);
  return Status::kOk;
}

ObjectEncoder::~ObjectEncoder() = default;

const ObjectLayout& ObjectEncoder::Layout() const { return impl_->layout; }

Status ObjectEncoder::PrepareBlock(uint32_t sbn) {
  const ObjectLayout& l = impl_->layout;
  if (sbn >= l.oti.Z) return Status::kSbnOutOfRange;
  Impl::Slot& slot = impl_->slots[sbn];
  std::unique_lock<std::shared_mutex> lock(slot.mu);
  if (slot.encoder) return Status::kOk;
  const uint32_t K = l.source_symbols(sbn);
  const uint64_t size = uint64_t(K) * l.oti.T;
  const uint8_t* block = impl_->data + l.block_offset(sbn);
  // With one sub-block the source symbols are the block's bytes in order
  // (§4.4.1.2): unless the block is the zero-padded tail of the object,
  // the encoder reads them in place (the caller keeps `data` alive).
  if (l.oti.N == 1 && l.block_length(sbn) == size) {
    return BlockEncoder::CreateBorrowed(block, K, l.oti.T, &slot.encoder);
  }
  SymbolBuffer symbols(size);
  if (!symbols) return Status::kOutOfMemory;
  interleave_block(l, K, block, l.block_length(sbn), symbols.data());
  return BlockEncoder::CreateOwned(std::move(symbols), K, l.oti.T,
                                   &slot.encoder);
}

void ObjectEncoder::ReleaseBlock(uint32_t sbn) {
  if (sbn >= impl_->layout.oti.Z) return;
  Impl::Slot& slot = impl_->slots[sbn];
  std::unique_lock<std::shared_mutex> lock(slot.mu);
  slot.encoder.reset();
}

Status ObjectEncoder::Packet(uint32_t sbn, uint32_t esi, uint8_t* out) {
  if (out == nullptr) return Status::kInvalidArgument;
  if (sbn >= impl_->layout.oti.Z) return Status::kSbnOutOfRange;
  if (esi > kMaxEsi) return Status::kEsiOutOfRange;
  Impl::Slot& slot = impl_->slots[sbn];
  // A ReleaseBlock from another thread may land between PrepareBlock and
  // the shared lock; then prepare again.
  for (;;) {
    {
      std::shared_lock<std::shared_mutex> lock(slot.mu);
      if (slot.encoder) {
        payload_id_encode(static_cast<uint8_t>(sbn), esi, out);
        return slot.encoder->Symbol(esi, out + kPayloadIdSize);
      }
    }
    Status s = PrepareBlock(sbn);
    if (s != Status::kOk) return s;
  }
}

}  // namespace fec
}  // namespace rqcast

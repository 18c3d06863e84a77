// ObjectEncoder: an object's blocks (RFC 6330 §4.4.1.2) and packets
// (§4.4.2: FEC Payload ID + one encoding symbol).
//
// The object is either caller memory (Create) or a file (CreateFromFile).
// A file-backed encoder reads a block's bytes when the block is prepared
// and keeps them only while it stays prepared, so its memory is that of
// its prepared blocks whatever the object's size.
//
// Threads: PrepareBlock runs on worker threads, Packet on the sender's
// thread(s). Each block has its own slot guarded by a shared_mutex: symbol
// generation (BlockEncoder::Symbol is const) shares it, preparing and
// releasing take it exclusively. Distinct blocks never contend.
#include <errno.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <shared_mutex>

#include "fec/codec.h"
#include "fec/encoding_plan.h"

namespace rqcast {
namespace fec {

struct ObjectEncoder::Impl {
  struct Slot {
    std::shared_mutex mu;
    std::unique_ptr<BlockEncoder> encoder;
  };
  const uint8_t* data = nullptr;  // not owned; see Create
  int fd = -1;                    // not owned; see CreateFromFile
  ObjectLayout layout;
  std::unique_ptr<Slot[]> slots;  // one per source block
  std::atomic<int> io_errno{0};

  // Reads bytes [offset, offset + len) of the file into out. pread may
  // return less than asked (signals, reads beyond 2 GiB on Linux), so it
  // loops; end of file before len bytes means the file was cut short.
  Status ReadFile(uint64_t offset, uint64_t len, uint8_t* out) {
    while (len > 0) {
      ssize_t n = ::pread(fd, out, len, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        io_errno.store(errno, std::memory_order_relaxed);
        return Status::kIoError;
      }
      if (n == 0) return Status::kSourceTruncated;
      out += n;
      offset += static_cast<uint64_t>(n);
      len -= static_cast<uint64_t>(n);
    }
    return Status::kOk;
  }

  // Source symbols of block sbn for a file-backed encoder: K*T bytes,
  // symbol-major, beyond F the zero padding of §4.4.1.2.
  Status ReadBlock(uint32_t sbn, SymbolBuffer* symbols) {
    const uint32_t K = layout.source_symbols(sbn);
    const uint64_t size = uint64_t(K) * layout.oti.T;
    const uint64_t len = layout.block_length(sbn);
    SymbolBuffer out(size);
    if (!out) return Status::kOutOfMemory;
    if (layout.oti.N == 1) {
      // One sub-block: the symbols are the block's bytes in order.
      Status s = ReadFile(layout.block_offset(sbn), len, out.data());
      if (s != Status::kOk) return s;
      std::memset(out.data() + len, 0, size - len);
    } else {
      SymbolBuffer block(len);
      if (!block) return Status::kOutOfMemory;
      Status s = ReadFile(layout.block_offset(sbn), len, block.data());
      if (s != Status::kOk) return s;
      interleave_block(layout, K, block.data(), len, out.data());
    }
    *symbols = std::move(out);
    return Status::kOk;
  }
};

Status ObjectEncoder::Make(const Oti& oti, const uint8_t* data, int fd,
                           std::unique_ptr<ObjectEncoder>* out) {
  ObjectLayout layout;
  Status s = object_layout(oti, &layout);
  if (s != Status::kOk) return s;
  std::unique_ptr<ObjectEncoder> enc(new (std::nothrow) ObjectEncoder());
  if (!enc) return Status::kOutOfMemory;
  enc->impl_.reset(new (std::nothrow) Impl());
  if (!enc->impl_) return Status::kOutOfMemory;
  enc->impl_->slots.reset(new (std::nothrow) Impl::Slot[oti.Z]);
  if (!enc->impl_->slots) return Status::kOutOfMemory;
  enc->impl_->data = data;
  enc->impl_->fd = fd;
  enc->impl_->layout = layout;
  *out = std::move(enc);
  return Status::kOk;
}

Status ObjectEncoder::Create(const uint8_t* data, uint64_t length,
                             const Oti& oti,
                             std::unique_ptr<ObjectEncoder>* out) {
  if (out == nullptr || data == nullptr) return Status::kInvalidArgument;
  Status s = oti_validate(oti);
  if (s != Status::kOk) return s;
  // The OTI describes exactly this object: F is its length.
  if (length != oti.F) return Status::kInvalidArgument;
  return Make(oti, data, -1, out);
}

Status ObjectEncoder::CreateFromFile(int fd, const Oti& oti,
                                     std::unique_ptr<ObjectEncoder>* out) {
  if (out == nullptr || fd < 0) return Status::kInvalidArgument;
  Status s = oti_validate(oti);
  if (s != Status::kOk) return s;
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::kIoError;
  // A regular file must hold the F bytes now; the reads check again, as
  // it may be truncated later. Other kinds (block devices) report no
  // useful size here and are checked by the reads only.
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) < oti.F) {
    return Status::kSourceTruncated;
  }
  return Make(oti, nullptr, fd, out);
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
  SymbolBuffer symbols;
  if (impl_->data == nullptr) {
    Status s = impl_->ReadBlock(sbn, &symbols);
    if (s != Status::kOk) return s;
  } else {
    const uint8_t* block = impl_->data + l.block_offset(sbn);
    // With one sub-block the source symbols are the block's bytes in
    // order (§4.4.1.2): unless the block is the zero-padded tail of the
    // object, the encoder reads them in place (the caller keeps `data`
    // alive).
    if (l.oti.N == 1 && l.block_length(sbn) == size) {
      return BlockEncoder::CreateBorrowed(block, K, l.oti.T, &slot.encoder);
    }
    symbols = SymbolBuffer(size);
    if (!symbols) return Status::kOutOfMemory;
    interleave_block(l, K, block, l.block_length(sbn), symbols.data());
  }
  return BlockEncoder::CreateOwned(std::move(symbols), K, l.oti.T,
                                   &slot.encoder);
}

void ObjectEncoder::ReleaseBlock(uint32_t sbn) {
  if (sbn >= impl_->layout.oti.Z) return;
  Impl::Slot& slot = impl_->slots[sbn];
  std::unique_lock<std::shared_mutex> lock(slot.mu);
  slot.encoder.reset();
}

bool ObjectEncoder::Prepared(uint32_t sbn) const {
  if (sbn >= impl_->layout.oti.Z) return false;
  Impl::Slot& slot = impl_->slots[sbn];
  std::shared_lock<std::shared_mutex> lock(slot.mu);
  return slot.encoder != nullptr;
}

bool ObjectEncoder::PrepareIsReplay(uint32_t sbn) const {
  const ObjectLayout& l = impl_->layout;
  if (sbn >= l.oti.Z || impl_->data == nullptr) return false;
  SystematicParams p;
  return systematic_params(l.source_symbols(sbn), &p) &&
         encoding_plan_cached(p);
}

uint64_t ObjectEncoder::BlockMemory(uint32_t sbn) const {
  const ObjectLayout& l = impl_->layout;
  if (sbn >= l.oti.Z) return 0;
  {
    Impl::Slot& slot = impl_->slots[sbn];
    std::shared_lock<std::shared_mutex> lock(slot.mu);
    if (slot.encoder) return slot.encoder->MemoryBytes();
  }
  return BlockEncoder::MemoryBytesFor(l.source_symbols(sbn), l.oti.T);
}

int ObjectEncoder::LastIoErrno() const {
  return impl_->io_errno.load(std::memory_order_relaxed);
}

Status ObjectEncoder::Packet(uint32_t sbn, uint32_t esi, uint8_t* out) {
  return Packets(sbn, esi, 1, out, kPayloadIdSize + impl_->layout.oti.T);
}

Status ObjectEncoder::Packets(uint32_t sbn, uint32_t first_esi,
                              uint32_t count, uint8_t* out, size_t stride) {
  if (sbn >= impl_->layout.oti.Z) return Status::kSbnOutOfRange;
  if (first_esi > kMaxEsi ||
      (count > 0 && count - 1 > kMaxEsi - first_esi)) {
    return Status::kEsiOutOfRange;
  }
  // An empty run writes nothing (an empty JS buffer has no data pointer).
  if (count == 0) return Status::kOk;
  if (out == nullptr || stride < kPayloadIdSize + impl_->layout.oti.T) {
    return Status::kInvalidArgument;
  }
  Impl::Slot& slot = impl_->slots[sbn];
  // A ReleaseBlock from another thread may land between PrepareBlock and
  // the shared lock; then prepare again.
  for (;;) {
    {
      std::shared_lock<std::shared_mutex> lock(slot.mu);
      if (slot.encoder) {
        for (uint32_t i = 0; i < count; ++i) {
          payload_id_encode(static_cast<uint8_t>(sbn), first_esi + i,
                            out + size_t(i) * stride);
        }
        return slot.encoder->Symbols(first_esi, count, out + kPayloadIdSize,
                                     stride);
      }
    }
    Status s = PrepareBlock(sbn);
    if (s != Status::kOk) return s;
  }
}

}  // namespace fec
}  // namespace rqcast

// Source blocks and sub-blocks (RFC 6330 §4.4.1.2).
//
// An object of F bytes is Kt = ceil(F/T) symbols (zero-padded to Kt*T).
// (KL, KS, ZL, ZS) = Partition[Kt, Z]: the first ZL blocks have KL symbols,
// the other ZS have KS. Each block of K symbols (K*T bytes, contiguous in the
// object) is cut into N contiguous sub-blocks with
// (TL, TS, NL, NS) = Partition[T/Al, N]: the first NL sub-blocks hold K
// sub-symbols of TL*Al bytes, the other NS hold K sub-symbols of TS*Al bytes.
// Source symbol m is sub-symbol m of sub-block 0, then of sub-block 1, ...
#include <algorithm>
#include <cstring>

#include "fec/codec.h"

namespace rqcast {
namespace fec {

Partition rfc_partition(uint64_t I, uint32_t J) {
  Partition p{0, 0, 0, 0};
  if (J == 0) return p;  // undefined in the RFC; callers validate J >= 1
  const uint64_t IL = I / J + (I % J != 0);
  const uint64_t IS = I / J;
  const uint64_t JL = I - IS * J;
  p.IL = static_cast<uint32_t>(IL);
  p.IS = static_cast<uint32_t>(IS);
  p.JL = static_cast<uint32_t>(JL);
  p.JS = static_cast<uint32_t>(J - JL);
  return p;
}

Status object_layout(const Oti& oti, ObjectLayout* out) {
  if (out == nullptr) return Status::kInvalidArgument;
  Status s = oti_validate(oti);
  if (s != Status::kOk) return s;
  ObjectLayout l;
  l.oti = oti;
  l.Kt = oti.F / oti.T + (oti.F % oti.T != 0);
  l.blocks = rfc_partition(l.Kt, oti.Z);
  l.subblocks = rfc_partition(oti.T / oti.Al, oti.N);
  *out = l;
  return Status::kOk;
}

uint32_t ObjectLayout::source_symbols(uint32_t sbn) const {
  if (sbn >= oti.Z) return 0;
  return sbn < blocks.JL ? blocks.IL : blocks.IS;
}

uint64_t ObjectLayout::block_offset(uint32_t sbn) const {
  const uint64_t large = std::min<uint64_t>(sbn, blocks.JL);
  const uint64_t small = sbn - large;
  return (large * blocks.IL + small * blocks.IS) * oti.T;
}

uint64_t ObjectLayout::block_length(uint32_t sbn) const {
  if (sbn >= oti.Z) return 0;
  const uint64_t offset = block_offset(sbn);
  if (offset >= oti.F) return 0;
  return std::min<uint64_t>(uint64_t(source_symbols(sbn)) * oti.T,
                            oti.F - offset);
}

namespace {

// Walks every (sub-block, symbol) piece of a block of K symbols: calls
// fn(block_offset, symbol_offset, length) for sub-symbol m of sub-block n,
// which sits at block_offset in the block and symbol_offset in the
// symbol-major buffer.
template <typename Fn>
void for_each_sub_symbol(const ObjectLayout& layout, uint32_t K, Fn fn) {
  const uint64_t T = layout.oti.T;
  const uint64_t Al = layout.oti.Al;
  const Partition& sb = layout.subblocks;
  const uint32_t N = layout.oti.N;
  uint64_t sub_block_start = 0;  // byte offset of sub-block n in the block
  uint64_t column = 0;           // byte offset of sub-symbols n in a symbol
  for (uint32_t n = 0; n < N; ++n) {
    const uint64_t t = (n < sb.JL ? sb.IL : sb.IS) * Al;
    for (uint32_t m = 0; m < K; ++m) {
      fn(sub_block_start + m * t, m * T + column, t);
    }
    sub_block_start += K * t;
    column += t;
  }
}

}  // namespace

void interleave_block(const ObjectLayout& layout, uint32_t K,
                      const uint8_t* block, uint64_t block_len,
                      uint8_t* symbols) {
  const uint64_t size = uint64_t(K) * layout.oti.T;
  block_len = std::min(block_len, size);
  if (layout.oti.N == 1) {  // no sub-blocking: the block is the symbols
    if (block_len) std::memcpy(symbols, block, block_len);
    std::memset(symbols + block_len, 0, size - block_len);
    return;
  }
  for_each_sub_symbol(layout, K, [&](uint64_t from, uint64_t to,
                                     uint64_t len) {
    uint64_t real = from >= block_len ? 0 : std::min(len, block_len - from);
    if (real) std::memcpy(symbols + to, block + from, real);
    if (real < len) std::memset(symbols + to + real, 0, len - real);
  });
}

void deinterleave_block(const ObjectLayout& layout, uint32_t K,
                        const uint8_t* symbols, uint8_t* block,
                        uint64_t block_len) {
  const uint64_t size = uint64_t(K) * layout.oti.T;
  block_len = std::min(block_len, size);
  if (layout.oti.N == 1) {
    if (block_len) std::memcpy(block, symbols, block_len);
    return;
  }
  for_each_sub_symbol(layout, K, [&](uint64_t to, uint64_t from,
                                     uint64_t len) {
    uint64_t real = to >= block_len ? 0 : std::min(len, block_len - to);
    if (real) std::memcpy(block + to, symbols + from, real);
  });
}

}  // namespace fec
}  // namespace rqcast

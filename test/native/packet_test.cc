// Tests of ALC packet assembly (native/packet): the LCT header rqcast sends
// (RFC 5651 §5.1, §5.2; PROTOCOL.md §8), header templates, and runs of
// finished packets — header with the EXT_RQSEQ sequence number stamped,
// FEC Payload ID (RFC 6330 §3.2), symbol.
//
// The expected header bytes were written out by hand from the RFC 5651
// layout and PROTOCOL.md §8.1 – §8.5, not by running this code. The symbols
// are held against fec::ObjectEncoder::Packet, packet by packet.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fec/codec.h"
#include "packet/alc_packet.h"
#include "packet/lct_header.h"

#include "check.h"
#include "codec_fixtures.h"

using namespace rqcast;
using fec::Status;
using packet::HeaderTemplate;
using packet::LctHeaderFields;
using packet::PacketRun;

namespace {

using Bytes = std::vector<uint8_t>;

// The header the fields describe, written into a buffer of exactly its
// size; empty if WriteLctHeader refused.
Bytes header_of(const LctHeaderFields& f) {
  Bytes out(packet::LctHeaderSize(f));
  size_t written = 0;
  if (packet::WriteLctHeader(f, out.data(), out.size(), &written) !=
      Status::kOk) {
    return Bytes();
  }
  CHECK(written == out.size());
  return out;
}

bool all_are(const uint8_t* p, size_t n, uint8_t v) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != v) return false;
  }
  return true;
}

uint32_t get_u32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) |
         (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// -------------------------------------------------------- LCT header --

// A data packet (TOI >= 1) of a stream: the fixed 16 bytes (12 when TSI
// and TOI fit 16 bits) and EXT_RQSEQ.
void test_lct_data_header() {
  LctHeaderFields f;
  f.tsi = 0x01020304;
  f.toi = 7;
  f.has_sequence = true;
  f.sequence = 0xA1B2C3D4;
  const Bytes want = {
      0x10, 0xa0, 0x06, 0x06,  // V=1 C=0 PSI=0 | S=1 O=1 H=0 | 6 words | CP 6
      0x00, 0x00, 0x00, 0x00,  // CCI
      0x01, 0x02, 0x03, 0x04,  // TSI
      0x00, 0x00, 0x00, 0x07,  // TOI
      0x78, 0x02, 0x00, 0x00,  // EXT_RQSEQ: HET 120, HEL 2, reserved
      0xa1, 0xb2, 0xc3, 0xd4,  //   sequence
  };
  CHECK(header_of(f) == want);
  CHECK(packet::LctHeaderSize(f) == 24);
  CHECK(packet::LctSequenceOffset(f) == 20);

  // A fresh-symbol replacement: the same header without EXT_RQSEQ.
  f.has_sequence = false;
  const Bytes bare = {0x10, 0xa0, 0x04, 0x06, 0, 0, 0, 0,
                      0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0x07};
  CHECK(header_of(f) == bare);

  // TSI and TOI use all 32 bits, big-endian.
  f.tsi = 0xFFFFFFFF;
  f.toi = 0xFEDCBA98;
  const Bytes wide = {0x10, 0xa0, 0x04, 0x06, 0,    0,    0,    0,
                      0xff, 0xff, 0xff, 0xff, 0xfe, 0xdc, 0xba, 0x98};
  CHECK(header_of(f) == wide);

  // Both fit 16 bits: S = 0, O = 0, H = 1 (RFC 5651 §5.1), HDR_LEN 5 words,
  // TSI | TOI in one word, 4 bytes fewer.
  f.tsi = 0x0102;
  f.toi = 0xFFFF;
  f.has_sequence = true;
  const Bytes narrow = {0x10, 0x10, 0x05, 0x06, 0, 0, 0, 0, 0x01, 0x02,
                        0xff, 0xff, 0x78, 0x02, 0, 0, 0xa1, 0xb2, 0xc3, 0xd4};
  CHECK(header_of(f) == narrow);
  CHECK(packet::LctSequenceOffset(f) == 16);
  // The boundaries, for each field: 65535 short, 65536 long (both fields).
  const uint32_t cases[][3] = {{0xFFFF, 0xFFFF, 20}, {0x10000, 0xFFFF, 24},
                               {0xFFFF, 0x10000, 24}, {0, 0, 20}};
  for (const auto& c : cases) {
    f.tsi = c[0];
    f.toi = c[1];
    const Bytes h = header_of(f);
    CHECK(h.size() == c[2] && packet::LctHeaderSize(f) == c[2]);
    CHECK(h[1] == (c[2] == 20 ? 0x10 : 0xa0));
  }
}

// An FDT packet (TOI 0) with all three extensions, in rqcast's order, on a
// channel whose TSI takes 32 bits: 44 bytes, HDR_LEN 11 (PROTOCOL.md §8.1).
void test_lct_fdt_header() {
  LctHeaderFields f;
  f.tsi = 0x10005;
  f.toi = 0;
  f.has_fdt = true;
  f.fdt_instance_id = 0xABCDE;
  f.has_fti = true;
  f.oti = make_oti(1000000, 1280, 1, 1, 4);
  f.has_sequence = true;
  f.sequence = 0x00000100;
  const Bytes want = {
      0x10, 0xa0, 0x0b, 0x06,  // 11 words
      0x00, 0x00, 0x00, 0x00,  // CCI
      0x00, 0x01, 0x00, 0x05,  // TSI
      0x00, 0x00, 0x00, 0x00,  // TOI 0: FDT instance
      0xc0, 0x2a, 0xbc, 0xde,  // EXT_FDT: HET 192 | V=2, Instance ID 0xABCDE
      0x40, 0x04,              // EXT_FTI: HET 64, HEL 4
      0x00, 0x00, 0x0f, 0x42, 0x40,  // F = 1000000 (40 bits)
      0x00,                          // reserved
      0x05, 0x00,                    // T = 1280
      0x01,                          // Z = 1
      0x00, 0x01,                    // N = 1
      0x04,                          // Al = 4
      0x00, 0x00,                    // padding to the word
      0x78, 0x02, 0x00, 0x00,        // EXT_RQSEQ
      0x00, 0x00, 0x01, 0x00,        //   sequence 256
  };
  CHECK(header_of(f) == want);
  CHECK(packet::LctSequenceOffset(f) == 40);

  // Each extension's size on its own, and HDR_LEN always size / 4.
  for (int mask = 0; mask < 8; ++mask) {
    LctHeaderFields g = f;
    g.has_fdt = mask & 1;
    g.has_fti = mask & 2;
    g.has_sequence = mask & 4;
    const size_t size = 16 + (g.has_fdt ? 4 : 0) + (g.has_fti ? 16 : 0) +
                        (g.has_sequence ? 8 : 0);
    CHECK(packet::LctHeaderSize(g) == size);
    const Bytes h = header_of(g);
    CHECK(h.size() == size);
    if (h.size() == size) {
      CHECK(h[2] == size / 4);
      // The first extension follows the TOI; EXT_RQSEQ is always last.
      if (g.has_fdt) CHECK(h[16] == packet::kHetExtFdt);
      if (!g.has_fdt && g.has_fti) CHECK(h[16] == packet::kHetExtFti);
      if (g.has_sequence) CHECK(h[size - 8] == packet::kHetExtRqseq);
    }
  }
}

// A and B (Close Session, Close Object) are the two low bits of byte 1.
void test_lct_close_flags() {
  LctHeaderFields f;
  f.close_session = true;
  CHECK(header_of(f)[1] == 0x12);  // H = 1 (TSI 0, TOI 0)
  f.close_object = true;
  CHECK(header_of(f)[1] == 0x13);
  f.close_session = false;
  CHECK(header_of(f)[1] == 0x11);
  f.toi = 0x10000;  // S = O = 1
  CHECK(header_of(f)[1] == 0xa1);
}

// The extensions' own bounds: the 20-bit FDT Instance ID, the OTI's
// RFC 6330 bounds, Z = 256 written as 0 (PROTOCOL.md §8.4).
void test_lct_extension_bounds() {
  LctHeaderFields f;
  f.has_fdt = true;
  f.fdt_instance_id = packet::kMaxFdtInstanceId;
  const Bytes top = header_of(f);
  CHECK(top.size() == 16);  // TSI 0, TOI 0: 16-bit ids
  if (top.size() == 16) {
    CHECK(top[12] == 0xc0 && top[13] == 0x2f && top[14] == 0xff &&
          top[15] == 0xff);
  }
  f.fdt_instance_id = packet::kMaxFdtInstanceId + 1;
  Bytes out(64, 0x5a);
  size_t written = 99;
  CHECK_STATUS(packet::WriteLctHeader(f, out.data(), out.size(), &written),
               Status::kInvalidArgument);
  CHECK(all_are(out.data(), out.size(), 0x5a));
  CHECK(written == 99);

  LctHeaderFields g;
  g.has_fti = true;
  // 512 symbols of 1280 bytes in 256 blocks: Z = 256 goes out as 0.
  g.oti = make_oti(512 * 1280, 1280, 256, 1, 4);
  const Bytes z256 = header_of(g);
  CHECK(z256.size() == 28);
  if (z256.size() == 28) CHECK(z256[12 + 2 + 8] == 0);

  // Out-of-bounds OTIs: oti_validate's status, nothing written.
  g.oti = make_oti(1000, 0, 1, 1, 1);  // T = 0
  CHECK_STATUS(packet::WriteLctHeader(g, out.data(), out.size(), nullptr),
               Status::kOtiOutOfBounds);
  g.oti = make_oti(1000, 30, 1, 1, 4);  // T not a multiple of Al
  CHECK_STATUS(packet::WriteLctHeader(g, out.data(), out.size(), nullptr),
               Status::kSymbolSizeNotAligned);
  g.oti = make_oti(0, 16, 1, 1, 4);  // F = 0
  CHECK(packet::WriteLctHeader(g, out.data(), out.size(), nullptr) !=
        Status::kOk);
  CHECK(all_are(out.data(), out.size(), 0x5a));
  // An OTI that is not there is not checked.
  g.has_fti = false;
  CHECK_STATUS(packet::WriteLctHeader(g, out.data(), out.size(), nullptr),
               Status::kOk);
}

// The output bounds: exactly the header's size is enough, a byte less or
// no buffer is refused, and nothing is written then.
void test_lct_output_bounds() {
  LctHeaderFields f;
  f.has_sequence = true;
  Bytes out(20, 0x5a);
  CHECK_STATUS(packet::WriteLctHeader(f, out.data(), 19, nullptr),
               Status::kInvalidArgument);
  CHECK(all_are(out.data(), out.size(), 0x5a));
  CHECK_STATUS(packet::WriteLctHeader(f, nullptr, 20, nullptr),
               Status::kInvalidArgument);
  size_t written = 0;
  CHECK_STATUS(packet::WriteLctHeader(f, out.data(), 20, &written),
               Status::kOk);
  CHECK(written == 20);
}

// ---------------------------------------------------- header template --

void test_template_from_bytes() {
  Bytes src = {1, 2, 3, 4, 5, 6, 7, 8};
  HeaderTemplate t;
  CHECK_STATUS(HeaderTemplate::FromBytes(src.data(), src.size(), 4, &t),
               Status::kOk);
  CHECK(t.size() == 8 && t.has_sequence() && t.sequence_offset() == 4);
  // The bytes are copied: changing the source later changes nothing.
  src[0] = 99;
  CHECK(t.data()[0] == 1);

  // The sequence number's 4 bytes must lie inside the header.
  HeaderTemplate keep = t;
  CHECK_STATUS(HeaderTemplate::FromBytes(src.data(), 8, 5, &t),
               Status::kInvalidArgument);
  CHECK_STATUS(HeaderTemplate::FromBytes(src.data(), 3, 0, &t),
               Status::kInvalidArgument);
  CHECK_STATUS(HeaderTemplate::FromBytes(nullptr, 4, 0, &t),
               Status::kInvalidArgument);
  // A refused template leaves the old one as it was.
  CHECK(t.size() == keep.size() && t.sequence_offset() == 4 &&
        std::memcmp(t.data(), keep.data(), t.size()) == 0);

  CHECK_STATUS(HeaderTemplate::FromBytes(src.data(), 4, 0, &t), Status::kOk);
  CHECK_STATUS(HeaderTemplate::FromBytes(nullptr, 0,
                                         HeaderTemplate::kNoSequence, &t),
               Status::kOk);
  CHECK(t.size() == 0 && !t.has_sequence());
  const HeaderTemplate empty;
  CHECK(empty.size() == 0 && !empty.has_sequence());
}

void test_template_for_lct() {
  LctHeaderFields f;
  f.tsi = 9;
  f.toi = 3;
  f.has_sequence = true;
  HeaderTemplate t;
  CHECK_STATUS(HeaderTemplate::ForLct(f, &t), Status::kOk);
  const Bytes want = header_of(f);
  CHECK(t.size() == want.size() &&
        std::memcmp(t.data(), want.data(), want.size()) == 0);
  CHECK(t.has_sequence() && t.sequence_offset() == 16);

  f.has_sequence = false;
  f.has_fdt = true;
  CHECK_STATUS(HeaderTemplate::ForLct(f, &t), Status::kOk);
  CHECK(t.size() == 16 && !t.has_sequence());

  f.fdt_instance_id = 1u << 20;
  CHECK_STATUS(HeaderTemplate::ForLct(f, &t), Status::kInvalidArgument);
  CHECK(t.size() == 16);  // unchanged
}

// -------------------------------------------------------- packet runs --

// 40000 bytes in 3 blocks of 2 sub-blocks with T = 96: sub-block
// interleaving and a zero-padded last block, as the jest test of
// packetsWithHeader uses.
const fec::Oti kOti = make_oti(40000, 96, 3, 2, 4);

Bytes object_bytes() {
  Bytes data(kOti.F);
  uint32_t x = 12345;
  for (auto& b : data) {
    x = x * 1103515245u + 12345u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return data;
}

// An encoder of `data` (which must outlive it) under kOti, as the binding
// makes one over a JS buffer; null, and a failed check, if Create refuses.
std::unique_ptr<fec::ObjectEncoder> memory_encoder(const Bytes& data) {
  std::unique_ptr<fec::ObjectEncoder> enc;
  CHECK_STATUS(fec::ObjectEncoder::Create(data.data(), data.size(), kOti,
                                          &enc),
               Status::kOk);
  return enc;
}

// Packet i of a run at `p`: the template with (first_sequence + i) mod
// 2^32 at its offset, the payload ID and symbol fec::ObjectEncoder::Packet
// writes for (sbn, first_esi + i).
void check_run(fec::ObjectEncoder& enc, const HeaderTemplate& h,
               const PacketRun& run, const uint8_t* out, size_t stride) {
  const size_t T = enc.Layout().oti.T;
  Bytes want(fec::kPayloadIdSize + T);
  for (uint32_t i = 0; i < run.count; ++i) {
    const uint8_t* p = out + size_t(i) * stride;
    for (size_t b = 0; b < h.size(); ++b) {
      if (h.has_sequence() && b >= h.sequence_offset() &&
          b < h.sequence_offset() + 4) {
        continue;
      }
      CHECK(p[b] == h.data()[b]);
    }
    if (h.has_sequence()) {
      CHECK(get_u32(p + h.sequence_offset()) ==
            static_cast<uint32_t>(run.first_sequence + i));
    }
    CHECK_STATUS(enc.Packet(run.sbn, run.first_esi + i, want.data()),
                 Status::kOk);
    CHECK(std::memcmp(p + h.size(), want.data(), want.size()) == 0);
  }
}

// Runs of source and repair ESIs in every block, packed and in larger
// slots, with a stamped data header, an FDT header and no header at all.
void test_runs_match_object_encoder() {
  const Bytes data = object_bytes();
  std::unique_ptr<fec::ObjectEncoder> enc = memory_encoder(data);
  if (!enc) return;
  LctHeaderFields data_fields;
  data_fields.tsi = 77;
  data_fields.toi = 1;
  data_fields.has_sequence = true;
  LctHeaderFields fdt_fields = data_fields;
  fdt_fields.toi = 0;
  fdt_fields.has_fdt = true;
  fdt_fields.has_fti = true;
  fdt_fields.oti = kOti;
  HeaderTemplate stream, fdt, fresh, none;
  CHECK_STATUS(HeaderTemplate::ForLct(data_fields, &stream), Status::kOk);
  CHECK_STATUS(HeaderTemplate::ForLct(fdt_fields, &fdt), Status::kOk);
  data_fields.has_sequence = false;
  CHECK_STATUS(HeaderTemplate::ForLct(data_fields, &fresh), Status::kOk);

  for (const HeaderTemplate* h : {&stream, &fdt, &fresh, &none}) {
    for (uint32_t sbn = 0; sbn < kOti.Z; ++sbn) {
      const uint32_t K = enc->Layout().source_symbols(sbn);
      // Source symbols, the source/repair boundary, far repair ESIs.
      for (uint32_t first : {0u, K - 3, 5000u, fec::kMaxEsi - 2}) {
        for (size_t extra : {size_t(0), size_t(13)}) {
          PacketRun run;
          run.sbn = sbn;
          run.first_esi = first;
          run.count = 3;
          run.first_sequence = 1000 * sbn + first;
          const size_t size = packet::PacketSize(*h, kOti.T);
          const size_t stride = size + extra;
          Bytes out(2 * stride + size + 7, 0xc3);
          CHECK_STATUS(packet::WritePackets(*enc, *h, run, out.data(),
                                            out.size() - 7, stride),
                       Status::kOk);
          check_run(*enc, *h, run, out.data(), stride);
          // The slack after each packet and past the run is left alone.
          for (uint32_t i = 0; i + 1 < run.count; ++i) {
            CHECK(all_are(out.data() + i * stride + size, extra, 0xc3));
          }
          CHECK(all_are(out.data() + 2 * stride + size, 7, 0xc3));
        }
      }
    }
  }
  // Without a header the run is exactly what ObjectEncoder::Packets writes.
  const size_t size = fec::kPayloadIdSize + kOti.T;
  Bytes a(10 * size), b(10 * size);
  PacketRun run;
  run.sbn = 2;
  run.first_esi = 40;
  run.count = 10;
  CHECK_STATUS(packet::WritePackets(*enc, none, run, a.data(), a.size(), size),
               Status::kOk);
  CHECK_STATUS(enc->Packets(2, 40, 10, b.data(), size), Status::kOk);
  CHECK(a == b);
}

// FEC Payload ID: SBN u8 then ESI u24, network byte order (RFC 6330 §3.2).
void test_payload_id_bytes() {
  const Bytes data = object_bytes();
  std::unique_ptr<fec::ObjectEncoder> enc = memory_encoder(data);
  if (!enc) return;
  HeaderTemplate h;
  const Bytes hb = {0xee, 0xee, 0xee, 0xee};
  CHECK_STATUS(HeaderTemplate::FromBytes(hb.data(), hb.size(),
                                         HeaderTemplate::kNoSequence, &h),
               Status::kOk);
  PacketRun run;
  run.sbn = 2;
  run.first_esi = 0x0123FF;
  run.count = 2;
  const size_t size = packet::PacketSize(h, kOti.T);
  Bytes out(2 * size);
  CHECK_STATUS(packet::WritePackets(*enc, h, run, out.data(), out.size(),
                                    size),
               Status::kOk);
  const Bytes id0 = {0x02, 0x01, 0x23, 0xff};
  const Bytes id1 = {0x02, 0x01, 0x24, 0x00};
  CHECK(std::memcmp(out.data() + 4, id0.data(), 4) == 0);
  CHECK(std::memcmp(out.data() + size + 4, id1.data(), 4) == 0);
  // A header without a sequence number is copied as it is.
  CHECK(all_are(out.data(), 4, 0xee) && all_are(out.data() + size, 4, 0xee));
  // The last ESI there is, 2^24 - 1.
  run.first_esi = fec::kMaxEsi;
  run.count = 1;
  CHECK_STATUS(packet::WritePackets(*enc, h, run, out.data(), out.size(),
                                    size),
               Status::kOk);
  CHECK(out[4] == 2 && out[5] == 0xff && out[6] == 0xff && out[7] == 0xff);
}

// The sequence number wraps at 2^32 (PROTOCOL.md §8.5), mid-run.
void test_sequence_wraps() {
  const Bytes data = object_bytes();
  std::unique_ptr<fec::ObjectEncoder> enc = memory_encoder(data);
  if (!enc) return;
  LctHeaderFields f;
  f.tsi = 1;
  f.toi = 1;
  f.has_sequence = true;
  HeaderTemplate h;
  CHECK_STATUS(HeaderTemplate::ForLct(f, &h), Status::kOk);
  PacketRun run;
  run.sbn = 1;
  run.first_esi = 7;
  run.count = 4;
  run.first_sequence = 0xFFFFFFFE;
  const size_t size = packet::PacketSize(h, kOti.T);
  Bytes out(4 * size);
  CHECK_STATUS(packet::WritePackets(*enc, h, run, out.data(), out.size(),
                                    size),
               Status::kOk);
  const uint32_t want[] = {0xFFFFFFFE, 0xFFFFFFFF, 0, 1};
  for (uint32_t i = 0; i < 4; ++i) {
    CHECK(get_u32(out.data() + i * size + 16) == want[i]);
    // EXT_RQSEQ's HET, HEL and reserved bytes stay as the template has them.
    CHECK(get_u32(out.data() + i * size + 12) == 0x78020000u);
  }
  check_run(*enc, h, run, out.data(), size);
}

// The header may be a view of the output (the binding passes whatever the
// caller gives): the template's copy is taken before any packet is written.
void test_header_aliasing_output() {
  const Bytes data = object_bytes();
  std::unique_ptr<fec::ObjectEncoder> enc = memory_encoder(data);
  if (!enc) return;
  const Bytes header = {'0', '1', '2', '3', '4', '5', '6', '7',
                        '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  const size_t size = header.size() + fec::kPayloadIdSize + kOti.T;
  Bytes out(4 * size, 0);
  // The header is the second packet's slot, which the run overwrites.
  std::memcpy(out.data() + size, header.data(), header.size());
  HeaderTemplate h;
  CHECK_STATUS(HeaderTemplate::FromBytes(out.data() + size, header.size(), 12,
                                         &h),
               Status::kOk);
  PacketRun run;
  run.first_sequence = 5;
  run.count = 4;
  CHECK_STATUS(packet::WritePackets(*enc, h, run, out.data(), out.size(),
                                    size),
               Status::kOk);
  HeaderTemplate ref;
  CHECK_STATUS(HeaderTemplate::FromBytes(header.data(), header.size(), 12,
                                         &ref),
               Status::kOk);
  check_run(*enc, ref, run, out.data(), size);
}

// Every bound is checked before anything is written.
void test_bounds() {
  const Bytes data = object_bytes();
  std::unique_ptr<fec::ObjectEncoder> enc = memory_encoder(data);
  if (!enc) return;
  Bytes hb(20, 0);
  HeaderTemplate h;
  CHECK_STATUS(HeaderTemplate::FromBytes(hb.data(), hb.size(), 16, &h),
               Status::kOk);
  const size_t size = packet::PacketSize(h, kOti.T);
  CHECK(size == 20 + 4 + 96);
  Bytes out(4 * size, 0x5a);
  auto untouched = [&] { return all_are(out.data(), out.size(), 0x5a); };
  auto write_run = [&](uint32_t sbn, uint32_t first, uint32_t count,
                   size_t out_size, size_t stride) {
    PacketRun run;
    run.sbn = sbn;
    run.first_esi = first;
    run.count = count;
    return packet::WritePackets(*enc, h, run, out.data(), out_size, stride);
  };
  // SBN and ESI bounds, as fec::ObjectEncoder::Packets has them.
  CHECK_STATUS(write_run(3, 0, 1, out.size(), size), Status::kSbnOutOfRange);
  CHECK_STATUS(write_run(0, fec::kMaxEsi, 2, out.size(), size),
               Status::kEsiOutOfRange);
  CHECK_STATUS(write_run(0, fec::kMaxEsi + 1, 0, out.size(), size),
               Status::kEsiOutOfRange);
  // One byte short of four packets; a stride shorter than a packet; a
  // stride so large that (count - 1) * stride would overflow.
  CHECK_STATUS(write_run(0, 0, 4, out.size() - 1, size),
               Status::kInvalidArgument);
  CHECK_STATUS(write_run(0, 0, 1, size - 1, size), Status::kInvalidArgument);
  CHECK_STATUS(write_run(0, 0, 2, out.size(), size - 1),
               Status::kInvalidArgument);
  CHECK_STATUS(write_run(0, 0, 3, out.size(), SIZE_MAX / 2 + 1),
               Status::kInvalidArgument);
  CHECK(untouched());
  PacketRun run;
  run.count = 1;
  CHECK_STATUS(packet::WritePackets(*enc, h, run, nullptr, 1000, size),
               Status::kInvalidArgument);
  // An empty run writes nothing and needs no buffer.
  run.count = 0;
  CHECK_STATUS(packet::WritePackets(*enc, h, run, nullptr, 0, 0), Status::kOk);
  CHECK(untouched());
  // Exactly enough room: (count - 1) strides and one packet.
  CHECK_STATUS(write_run(0, 0, 4, out.size(), size), Status::kOk);
  CHECK_STATUS(write_run(0, 0, 2, size + size, size), Status::kOk);
}

// The block is prepared on demand; when that fails (the object's file
// became shorter), nothing is written and the block stays unprepared.
void test_prepare_on_demand_and_failure() {
  const Bytes data = object_bytes();
  char name[] = "/tmp/rqcast-packet-test-XXXXXX";
  const int fd = mkstemp(name);
  CHECK(fd >= 0);
  if (fd < 0) return;
  unlink(name);
  CHECK(write(fd, data.data(), data.size()) ==
        static_cast<ssize_t>(data.size()));
  std::unique_ptr<fec::ObjectEncoder> disk;
  CHECK_STATUS(fec::ObjectEncoder::CreateFromFile(fd, kOti, &disk),
               Status::kOk);
  std::unique_ptr<fec::ObjectEncoder> mem = memory_encoder(data);
  if (disk && mem) {
    HeaderTemplate h;
    const Bytes hb = {1, 2, 3, 4, 5, 6};
    CHECK_STATUS(HeaderTemplate::FromBytes(hb.data(), hb.size(), 2, &h),
                 Status::kOk);
    const size_t size = packet::PacketSize(h, kOti.T);
    PacketRun run;
    run.sbn = 2;
    run.first_esi = 400;
    run.count = 10;
    run.first_sequence = 99;
    Bytes out(10 * size, 0x5a);
    CHECK(!disk->Prepared(2));
    CHECK_STATUS(packet::WritePackets(*disk, h, run, out.data(), out.size(),
                                      size),
                 Status::kOk);
    CHECK(disk->Prepared(2));
    check_run(*mem, h, run, out.data(), size);

    CHECK(ftruncate(fd, 100) == 0);
    std::fill(out.begin(), out.end(), 0x5a);
    run.sbn = 1;
    CHECK_STATUS(packet::WritePackets(*disk, h, run, out.data(), out.size(),
                                      size),
                 Status::kSourceTruncated);
    CHECK(all_are(out.data(), out.size(), 0x5a));
    CHECK(!disk->Prepared(1));
  }
  disk.reset();
  close(fd);
}

}  // namespace

int main() {
  test_lct_data_header();
  test_lct_fdt_header();
  test_lct_close_flags();
  test_lct_extension_bounds();
  test_lct_output_bounds();
  test_template_from_bytes();
  test_template_for_lct();
  test_runs_match_object_encoder();
  test_payload_id_bytes();
  test_sequence_wraps();
  test_header_aliasing_output();
  test_bounds();
  test_prepare_on_demand_and_failure();
  if (g_failures) {
    std::fprintf(stderr, "packet_test: %d of %d checks failed\n",
                 g_failures.load(), g_checks.load());
    return 1;
  }
  std::printf("packet_test: %d checks passed\n", g_checks.load());
  return 0;
}

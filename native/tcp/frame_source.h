// rqcast — what a TCP connection sends: whole frames (u16 big-endian length
// + packet, docs/PROTOCOL.md §3), taken from a FrameSource.
//
// The connection cuts its byte stream only at frame boundaries, so that a
// lost segment holds whole frames and each data frame in it can be replaced
// by a fresh one of the same length (the receiver decodes any symbol of the
// block; it never needs the very bytes that were lost).
#pragma once

#include <cstddef>
#include <cstdint>

namespace rqcast {
namespace tcp {

struct FrameInfo {
  enum Kind : uint8_t { kControl = 0, kData = 1 };
  Kind kind = kControl;
  uint32_t length = 0;         // framed bytes (2 + packet)
  uint64_t block = 0;          // data: which source block (opaque key); control: 0
  // data: bytes of its packet's LCT header (HDR_LEN * 4; 24 or 28 for a
  // stream packet, PROTOCOL.md §8.1); control: 0. A replacement has the
  // same, so the symbol it carries has the lost one's size and place.
  uint16_t header = 0;
};

class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // The next frame to send as new data (control frames first), if one of at most
  // max_bytes is ready: copies its framed bytes to out, fills *info, returns its
  // length; 0 if none is ready or the next one is longer than max_bytes (the
  // connection never skips a frame: it asks again with more room later).
  virtual size_t NextFrame(uint8_t* out, size_t max_bytes, FrameInfo* info) = 0;
  // A fresh data frame to stand in for a lost one described by `lost`: exactly
  // lost.length framed bytes with an LCT header of lost.header bytes, written
  // to out, *block set to its block key.
  // false if there is none (the connection then resends the original).
  virtual bool Refresh(const FrameInfo& lost, uint8_t* out, uint64_t* block) = 0;
};

}  // namespace tcp
}  // namespace rqcast

// rqcast — public C++ API of the RFC 6330 (RaptorQ) codec core.
//
// This header is the contract between the codec core (native/fec/) and its
// users: the node-addon-api binding (native/napi/), fuzzers and
// micro-benchmarks. It includes no Node header and throws no exception:
// every fallible call returns a Status.
//
// Vocabulary follows RFC 6330:
//   F   transfer length (bytes)          T   symbol size (bytes)
//   Z   number of source blocks          N   number of sub-blocks
//   Al  symbol alignment                 K   source symbols of one block
//   K'  K padded to the next Table 2 row SBN source block number (8 bits)
//   ESI encoding symbol id (24 bits)     ISI internal symbol id
//
// Sub-blocks (N > 1) only change which bytes of a source block form which
// symbol (RFC 6330 §4.4.1.2): the m-th source symbol is the concatenation of
// the m-th sub-symbol of every sub-block. Because every GF(256) operation
// is byte-wise, encoding and decoding such concatenated T-byte symbols gives
// exactly the per-sub-block results; only the object layer (ObjectEncoder /
// ObjectDecoder) gathers and scatters the bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "fec/symbol_buffer.h"

namespace rqcast {
namespace fec {

enum class Status : int {
  kOk = 0,
  kNeedMoreSymbols,     // not an error: the block is not solvable yet
  kInvalidArgument,     // generic bad argument (null, zero length, ...)
  kBadPacketLength,     // packet shorter than 4 + T, or not 4 + T
  kSbnOutOfRange,       // SBN >= Z
  kEsiOutOfRange,       // ESI >= 2^24
  kOtiOutOfBounds,      // OTI field out of the RFC 6330 bounds
  kTransferTooLong,     // F > 946270874880
  kSymbolSizeNotAligned,// T not a multiple of Al
  kTooManySourceSymbols,// K' > 56403 (block too large for T)
  kSubSymbolTooSmall,   // T/(N*Al) < 1 or similar partition failure
  kOutOfMemory,
  kIoError,             // reading the object's file failed (errno kept)
  kSourceTruncated,     // the object's file is shorter than F
};
// The last Status, for tables indexed by status value.
constexpr Status kLastStatus = Status::kSourceTruncated;

// Human-readable, stable, short; never includes user data.
const char* status_message(Status s);
// Stable machine code, e.g. "ERR_RQ_BAD_PACKET_LENGTH".
const char* status_code(Status s);

constexpr uint64_t kMaxTransferLength = 946270874880ULL;  // RFC 6330 §4.4.1.2
constexpr uint32_t kMaxKPrime = 56403;                    // RFC 6330 Table 2
constexpr uint32_t kMaxEsi = (1u << 24) - 1;              // 24-bit ESI
constexpr size_t kOtiSize = 12;                           // §3.3.2 + §3.3.3
constexpr size_t kPayloadIdSize = 4;                      // §3.2

// ---------------------------------------------------------------- tables --
// RFC 6330 §5.6 Table 2: the row for the smallest K' >= K.
struct SystematicParams {
  uint32_t K_prime;  // K'
  uint32_t J;        // J(K'), systematic index
  uint32_t S;        // LDPC symbols
  uint32_t H;        // HDPC symbols
  uint32_t W;        // LT symbols
  uint32_t L;        // K' + S + H
  uint32_t P;        // L - W (PI symbols)
  uint32_t P1;       // smallest prime >= P
  uint32_t U;        // P - H
  uint32_t B;        // W - S
};
// §5.3.1: the ISI of encoding symbol `esi` of a block of K source symbols.
// A source ESI (< K) is its own ISI; a repair ESI X is ISI X + K' - K (the
// padding symbols K..K'-1 are never sent).
inline uint32_t isi_of_esi(const SystematicParams& p, uint32_t K, uint32_t esi) {
  return esi < K ? esi : esi + p.K_prime - K;
}

// Returns false when K > 56403.
bool systematic_params(uint32_t K, SystematicParams* out);

// RFC 6330 §5.3.5.1 Rand[y, i, m] and §5.3.5.2 Deg[v] (given W).
uint32_t rfc_rand(uint32_t y, uint8_t i, uint32_t m);
uint32_t rfc_deg(uint32_t v, uint32_t W);
// RFC 6330 §5.3.5.4 Tuple[K', X].
struct Tuple {
  uint32_t d, a, b, d1, a1, b1;
};
Tuple rfc_tuple(const SystematicParams& p, uint32_t X);

// RFC 6330 §4.4.1.2 Partition[I, J] = (IL, IS, JL, JS).
struct Partition {
  uint32_t IL, IS, JL, JS;
};
Partition rfc_partition(uint64_t I, uint32_t J);

// ------------------------------------------------------------------- OTI --
// RFC 6330 §3.3.2 (Common FEC OTI: F 40 bits, reserved 8 bits, T 16 bits)
// and §3.3.3 (Scheme-Specific: Z 8 bits, N 16 bits, Al 8 bits).
struct Oti {
  uint64_t F = 0;   // transfer length, 1 ..= 946270874880
  uint16_t T = 0;   // symbol size, multiple of Al
  uint16_t Z = 0;   // source blocks, 1 ..= 256 (encoded 0 means 256)
  uint16_t N = 0;   // sub-blocks, 1 ..= 65535
  uint8_t Al = 0;   // alignment, >= 1
};
// Checks every bound; returns the first violated one.
Status oti_validate(const Oti& oti);
void oti_encode(const Oti& oti, uint8_t out[kOtiSize]);
// Parses and validates.
Status oti_decode(const uint8_t* in, size_t len, Oti* out);
// RFC 6330 §4.3 derivation of T, Z, N from F, the packet payload size P',
// Al, the sub-block size lower bound SS (in units of Al) and the maximum
// sub-block size WS (bytes) a receiver can decode in working memory.
Status oti_derive(uint64_t F, uint32_t payload_size, uint8_t Al, uint32_t SS,
                  uint64_t WS, Oti* out);

// The per-object layout that follows from an OTI (RFC 6330 §4.4.1.2).
struct ObjectLayout {
  Oti oti;
  uint64_t Kt;          // ceil(F / T)
  Partition blocks;     // (KL, KS, ZL, ZS) in Partition's field order
  Partition subblocks;  // (TL, TS, NL, NS), TL/TS in units of Al
  // Number of source symbols K of block sbn.
  uint32_t source_symbols(uint32_t sbn) const;
  // Byte offset of block sbn inside the object.
  uint64_t block_offset(uint32_t sbn) const;
  // Size in bytes of block sbn inside the object (the last block may be
  // shorter than K*T: the object is zero-padded to Kt*T).
  uint64_t block_length(uint32_t sbn) const;
};
Status object_layout(const Oti& oti, ObjectLayout* out);

// Gathers source symbols [0, K) of a block laid out per the sub-block
// rules: `block` holds `block_len` real bytes (the rest is zero padding up
// to K*T); writes K*T bytes, symbol-major, to `symbols`.
void interleave_block(const ObjectLayout& layout, uint32_t K,
                      const uint8_t* block, uint64_t block_len,
                      uint8_t* symbols);
// The inverse: writes the first `block_len` bytes of the block.
void deinterleave_block(const ObjectLayout& layout, uint32_t K,
                        const uint8_t* symbols, uint8_t* block,
                        uint64_t block_len);

// ----------------------------------------------------------- payload ID --
// RFC 6330 §3.2: SBN (8 bits) then ESI (24 bits), network byte order.
inline void payload_id_encode(uint8_t sbn, uint32_t esi, uint8_t out[4]) {
  out[0] = sbn;
  out[1] = static_cast<uint8_t>(esi >> 16);
  out[2] = static_cast<uint8_t>(esi >> 8);
  out[3] = static_cast<uint8_t>(esi);
}
inline void payload_id_decode(const uint8_t in[4], uint8_t* sbn,
                              uint32_t* esi) {
  *sbn = in[0];
  *esi = (uint32_t(in[1]) << 16) | (uint32_t(in[2]) << 8) | uint32_t(in[3]);
}

// ------------------------------------------------------ phase counters --
// Process-wide time spent in the two halves of the codec, for benchmarks:
// the solver working on the coefficient matrix (§5.4.2, on a decode or on
// the first block of a K') and the arithmetic on T-byte symbols (replaying
// the recorded row operations, regenerating missing source symbols).
// Repair symbol generation (LTEnc) is per packet and not counted here.
// Relaxed atomics: one update per block operation, not per symbol.
struct PhaseCounters {
  uint64_t solver_ns = 0;
  uint64_t symbol_ns = 0;
  uint64_t solves = 0;
  uint64_t replays = 0;
};
PhaseCounters phase_counters();
void reset_phase_counters();

// ------------------------------------------------------------ one block --
// Encodes one source block of K symbols of T bytes. Construction solves
// for the L intermediate symbols (RFC 6330 §5.3.3.4) by replaying the
// encoding plan cached for K' (computed once per K' per process, thread
// safe); afterwards any ESI in [0, 2^24) can be produced.
class BlockEncoder {
 public:
  // `source` holds K*T bytes, symbol-major (already interleaved).
  static Status Create(const uint8_t* source, uint32_t K, uint32_t T,
                       std::unique_ptr<BlockEncoder>* out);
  // Takes the K*T source bytes without copying them.
  static Status CreateOwned(SymbolBuffer source, uint32_t K, uint32_t T,
                            std::unique_ptr<BlockEncoder>* out);
  // Reads source symbols from `source`, which must stay valid and
  // unchanged while the encoder lives (ObjectEncoder's contract with its
  // caller); nothing is copied.
  static Status CreateBorrowed(const uint8_t* source, uint32_t K, uint32_t T,
                               std::unique_ptr<BlockEncoder>* out);
  ~BlockEncoder();
  uint32_t K() const;
  uint32_t T() const;
  // Bytes this encoder holds: the work buffer of intermediate symbols. A
  // source block given as a copy (Create, CreateOwned) is freed once the
  // intermediate symbols are solved; a borrowed one is the caller's.
  size_t MemoryBytes() const;
  // What MemoryBytes() will be for a block of K symbols of T bytes: the
  // work buffer has the encoding plan's L + 1 slots (pi_solver.cc: the
  // S + K' binary rows, the H HDPC rows and one accumulator). Preparing
  // from a copy holds the K*T source bytes as well until the solve ends.
  static uint64_t MemoryBytesFor(uint32_t K, uint32_t T);
  // Writes encoding symbol `esi` (T bytes). Source ESIs (< K) return the
  // source symbol (copied from a borrowed block, else LTEnc at ISI = ESI);
  // repair ESIs use ISI = esi + K' - K (§5.3.1).
  Status Symbol(uint32_t esi, uint8_t* out) const;
  // Writes count symbols with consecutive ESIs starting at first_esi,
  // each at out + i*stride.
  Status Symbols(uint32_t first_esi, uint32_t count, uint8_t* out,
                 size_t stride) const;

 private:
  BlockEncoder();
  static Status CreateFrom(SymbolBuffer owned, const uint8_t* borrowed,
                           uint32_t K, uint32_t T,
                           std::unique_ptr<BlockEncoder>* out);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Decodes one source block from any mix of source and repair symbols.
class BlockDecoder {
 public:
  enum class AddResult { kAdded, kDuplicate, kAlreadyDecoded };
  BlockDecoder(uint32_t K, uint32_t T);
  ~BlockDecoder();
  uint32_t K() const;
  uint32_t T() const;
  // Copies the symbol (T bytes). Duplicates are ignored.
  Status Add(uint32_t esi, const uint8_t* symbol, AddResult* result);
  // Number of distinct symbols held.
  uint32_t Received() const;
  // Attempts a decode when >= K distinct symbols are held; returns kOk
  // once decoded, kNeedMoreSymbols if not solvable yet (not an error).
  // Cheap to call again after more symbols arrive.
  Status TryDecode();
  bool Decoded() const;
  // K*T bytes, symbol-major, valid once Decoded().
  const uint8_t* Source() const;
  // Frees all buffers (after the caller copied Source()).
  void Release();
  // Once decoded: hands over the K*T source bytes (no copy) and releases
  // everything else. Returns an empty buffer if not decoded.
  SymbolBuffer TakeSource();
  // Bytes this decoder holds on the heap now (buffers, flags, repair
  // bookkeeping), for memory budgets; the solve's transient working memory
  // is not included.
  size_t HeldBytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ----------------------------------------------------------- an object --
// Object-level API: blocks, sub-block interleaving, packets.
// A packet is the 4-byte FEC Payload ID followed by exactly T bytes.
class ObjectEncoder {
 public:
  // `data` must stay valid and unchanged while the encoder lives (the
  // binding keeps a reference to the JS buffer); it is not copied.
  static Status Create(const uint8_t* data, uint64_t length, const Oti& oti,
                       std::unique_ptr<ObjectEncoder>* out);
  // The object is bytes [0, F) of the file open on `fd`, read block by
  // block when a block is prepared, so the object may be larger than
  // memory: the encoder holds only its prepared blocks. `fd` stays the
  // caller's and must stay open while the encoder lives. Fails with
  // kSourceTruncated if the file is shorter than F, kIoError if fstat
  // fails.
  static Status CreateFromFile(int fd, const Oti& oti,
                               std::unique_ptr<ObjectEncoder>* out);
  ~ObjectEncoder();
  const ObjectLayout& Layout() const;
  // Prepares block sbn (solve for its intermediate symbols). Thread-safe
  // for distinct sbn; called from worker threads by the async API. A
  // file-backed encoder reads the block here (kIoError, kSourceTruncated).
  Status PrepareBlock(uint32_t sbn);
  // Drops block sbn's intermediate symbols (and, file-backed, its source
  // symbols) to bound memory.
  void ReleaseBlock(uint32_t sbn);
  bool Prepared(uint32_t sbn) const;
  // Whether preparing block sbn is only the replay of a cached encoding
  // plan over symbols in memory: the encoder reads no file and the plan of
  // the block's K' is computed already (encoding_plan_cached). False for
  // sbn >= Z.
  bool PrepareIsReplay(uint32_t sbn) const;
  // Bytes block sbn holds while prepared (BlockEncoder::MemoryBytes), or,
  // when it is not, what it will hold once prepared. 0 for sbn >= Z.
  uint64_t BlockMemory(uint32_t sbn) const;
  // The errno of the last failed read (kIoError), 0 if none.
  int LastIoErrno() const;
  // Writes one packet (4 + T bytes); prepares the block if needed.
  Status Packet(uint32_t sbn, uint32_t esi, uint8_t* out);
  // Writes `count` packets of block sbn with ESIs first_esi.., each at
  // out + i * stride: the FEC Payload ID, then the T-byte symbol; the
  // other stride - (4 + T) bytes are the caller's (packet headers).
  // Prepares the block if needed.
  Status Packets(uint32_t sbn, uint32_t first_esi, uint32_t count,
                 uint8_t* out, size_t stride);

 private:
  static Status Make(const Oti& oti, const uint8_t* data, int fd,
                     std::unique_ptr<ObjectEncoder>* out);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class ObjectDecoder {
 public:
  static Status Create(const Oti& oti, std::unique_ptr<ObjectDecoder>* out);
  ~ObjectDecoder();
  const ObjectLayout& Layout() const;
  // Adds one packet (4 + T bytes). Sets *block_done when this packet made
  // its block decodable (the block is then decoded inline).
  Status AddPacket(const uint8_t* packet, size_t len, bool* block_done);
  // Adds the symbol without trying to decode (for async decode paths).
  Status AddPacketNoDecode(const uint8_t* packet, size_t len, uint32_t* sbn);
  Status TryDecodeBlock(uint32_t sbn);
  bool BlockDecoded(uint32_t sbn) const;
  uint32_t BlocksDecoded() const;
  bool Complete() const;
  uint32_t Received(uint32_t sbn) const;
  // Copies block sbn's bytes (block_length(sbn) of them) once decoded.
  Status CopyBlock(uint32_t sbn, uint8_t* out) const;
  // Frees a decoded block's memory after the caller has copied it.
  void ReleaseBlock(uint32_t sbn);
  // Drops the symbols of a block that is not decoded (it starts over, empty,
  // with its next packet); true if it held any. A decoded block is left
  // alone (false).
  bool DiscardBlock(uint32_t sbn);
  // Heap bytes block sbn holds now: its BlockDecoder's until decoded, then
  // the K*T decoded bytes until released.
  size_t HeldBytes(uint32_t sbn) const;
  // With one sub-block (N = 1) the decoded symbols, in order, are the
  // block's bytes (then zero padding up to K*T): hands that buffer over
  // without a copy and releases the block, as ReleaseBlock. kInvalidArgument
  // when N > 1 (CopyBlock must gather the sub-blocks) or already released.
  Status TakeSource(uint32_t sbn, SymbolBuffer* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fec
}  // namespace rqcast

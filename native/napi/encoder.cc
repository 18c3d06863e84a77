// Encoder: ObjectWrap around fec::ObjectEncoder.
//
// From memory, the input bytes are not copied: the wrapper keeps a strong
// reference to the caller's Uint8Array, and checks before every use that
// its memory is still the one the core was given (a transferred/detached
// ArrayBuffer would otherwise leave the core reading freed memory).
//
// From a file, the wrapper duplicates the caller's descriptor and closes
// the duplicate with the core, after the last worker job using it: the
// caller may close its own at once, and a descriptor number reused by
// the process can never be read in its place.
//
// Threads: the core guards each block with its own lock, so packets of one
// block can be produced while another is prepared on a worker. Preparing
// the same block twice at once is refused (ERR_RQ_BUSY); the TypeScript
// layer shares one promise per block instead.
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <climits>
#include <memory>
#include <string>
#include <vector>

#include "fec/codec.h"
#include "fec/symbol_buffer.h"
#include "napi/util.h"
#include "packet/alc_packet.h"

namespace rqcast {
namespace napi {
namespace {

using fec::Status;

// A core status as a JS error; a failed read also carries its errno.
Napi::Error CoreError(Napi::Env env, const fec::ObjectEncoder& core,
                     Status s) {
  Napi::Error err = MakeStatusError(env, s);
  if (s == Status::kIoError && core.LastIoErrno() != 0) {
    const int e = core.LastIoErrno();
    const std::string text =
        std::string(fec::status_message(s)) + ": " + ErrnoText(e);
    err.Set("message", Napi::String::New(env, text));
    err.Set("errno", Napi::Number::New(env, e));
  }
  return err;
}

bool ThrowCore(Napi::Env env, const fec::ObjectEncoder& core, Status s) {
  if (!env.IsExceptionPending()) {
    CoreError(env, core, s).ThrowAsJavaScriptException();
  }
  return false;
}

class Encoder : public Napi::ObjectWrap<Encoder> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "Encoder",
        {
            InstanceMethod<&Encoder::Layout>("layout"),
            InstanceMethod<&Encoder::SourceSymbols>("sourceSymbols"),
            InstanceMethod<&Encoder::BlockLength>("blockLength"),
            InstanceMethod<&Encoder::PrepareBlock>("prepareBlock"),
            InstanceMethod<&Encoder::ReleaseBlock>("releaseBlock"),
            InstanceMethod<&Encoder::Packet>("packet"),
            InstanceMethod<&Encoder::Packets>("packets"),
            InstanceMethod<&Encoder::PacketsInto>("packetsInto"),
            InstanceMethod<&Encoder::PacketsWithHeader>("packetsWithHeader"),
            InstanceMethod<&Encoder::IsPrepared>("isPrepared"),
            InstanceMethod<&Encoder::BlockMemory>("blockMemory"),
            InstanceMethod<&Encoder::PrepareBlocksAsync>("prepareBlocksAsync"),
            InstanceMethod<&Encoder::Close>("close"),
        });
  }

  // new Encoder(data: Uint8Array, oti: Uint8Array(12))
  // new Encoder(fd: number, oti: Uint8Array(12)): the object is the first
  // F bytes of the file open on fd (read, not written; see the top).
  explicit Encoder(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<Encoder>(info) {
    Napi::Env env = info.Env();
    in_flight_ = GetInFlight(env);
    Napi::Uint8Array data, oti_bytes;
    if (!ArgBytes(info, 1, "oti", &oti_bytes)) return;
    fec::Oti oti;
    Status s = fec::oti_decode(oti_bytes.Data(), oti_bytes.ByteLength(), &oti);
    if (s != Status::kOk) {
      ThrowStatus(env, s);
      return;
    }
    if (info.Length() > 0 && info[0].IsNumber()) {
      InitFromFile(info, oti);
      return;
    }
    if (!ArgBytes(info, 0, "data", &data)) return;
    if (data.ByteLength() != oti.F) {
      ThrowInvalid(env, "data length " + std::to_string(data.ByteLength()) +
                            " differs from the OTI transfer length " +
                            std::to_string(oti.F));
      return;
    }
    std::unique_ptr<fec::ObjectEncoder> core;
    s = fec::ObjectEncoder::Create(data.Data(), data.ByteLength(), oti, &core);
    if (s != Status::kOk) {
      ThrowStatus(env, s);
      return;
    }
    core_ = std::move(core);
    data_ptr_ = data.Data();
    data_len_ = data.ByteLength();
    data_ref_ = Napi::Persistent(static_cast<Napi::Object>(data));
    preparing_.assign(oti.Z, false);
  }

 private:
  void InitFromFile(const Napi::CallbackInfo& info, const fec::Oti& oti) {
    Napi::Env env = info.Env();
    uint64_t fd;
    if (!ArgUint(info, 0, "fd", 0, INT_MAX, &fd)) return;
    const int own = ::fcntl(static_cast<int>(fd), F_DUPFD_CLOEXEC, 0);
    if (own < 0) {
      const int e = errno;
      Napi::Error err = MakeStatusError(env, Status::kIoError);
      err.Set("message", Napi::String::New(env, "cannot duplicate fd: " +
                                                    ErrnoText(e)));
      err.Set("errno", Napi::Number::New(env, e));
      err.ThrowAsJavaScriptException();
      return;
    }
    std::unique_ptr<fec::ObjectEncoder> core;
    Status s = fec::ObjectEncoder::CreateFromFile(own, oti, &core);
    if (s != Status::kOk) {
      const int e = errno;
      ::close(own);
      Napi::Error err = MakeStatusError(env, s);
      if (s == Status::kIoError) {
        err.Set("message", Napi::String::New(env, "cannot stat fd: " +
                                                      ErrnoText(e)));
        err.Set("errno", Napi::Number::New(env, e));
      }
      err.ThrowAsJavaScriptException();
      return;
    }
    // The duplicate lives exactly as long as the core, whose last owner
    // may be a worker job finishing after close().
    core_ = std::shared_ptr<fec::ObjectEncoder>(
        core.release(), [own](fec::ObjectEncoder* p) {
          delete p;
          ::close(own);
        });
    from_file_ = true;
    preparing_.assign(oti.Z, false);
  }

  // Throws and returns nullptr unless the encoder is usable.
  fec::ObjectEncoder* Usable(Napi::Env env) {
    if (!core_) {
      ThrowCode(env, kErrClosed, "encoder is closed");
      return nullptr;
    }
    if (from_file_) return core_.get();
    Napi::Uint8Array data = data_ref_.Value().As<Napi::Uint8Array>();
    if (data.Data() != data_ptr_ || data.ByteLength() != data_len_) {
      ThrowCode(env, kErrInputDetached,
                "the encoder's input buffer was detached or resized");
      return nullptr;
    }
    return core_.get();
  }

  bool ArgSbn(const Napi::CallbackInfo& info, size_t i, uint32_t* sbn) {
    return ArgUint32(info, i, "sbn", 0, core_->Layout().oti.Z - 1u, sbn,
                     Status::kSbnOutOfRange);
  }

  Napi::Value Layout(const Napi::CallbackInfo& info) {
    fec::ObjectEncoder* core = Usable(info.Env());
    if (!core) return Napi::Value();
    return LayoutObject(info.Env(), core->Layout());
  }

  Napi::Value SourceSymbols(const Napi::CallbackInfo& info) {
    fec::ObjectEncoder* core = Usable(info.Env());
    uint32_t sbn;
    if (!core || !ArgSbn(info, 0, &sbn)) return Napi::Value();
    return Napi::Number::New(info.Env(), core->Layout().source_symbols(sbn));
  }

  Napi::Value BlockLength(const Napi::CallbackInfo& info) {
    fec::ObjectEncoder* core = Usable(info.Env());
    uint32_t sbn;
    if (!core || !ArgSbn(info, 0, &sbn)) return Napi::Value();
    return Napi::Number::New(
        info.Env(), static_cast<double>(core->Layout().block_length(sbn)));
  }

  Napi::Value PrepareBlock(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    fec::ObjectEncoder* core = Usable(env);
    uint32_t sbn;
    if (!core || !ArgSbn(info, 0, &sbn)) return Napi::Value();
    Status s = core->PrepareBlock(sbn);
    if (s != Status::kOk) ThrowCore(env, *core, s);
    return env.Undefined();
  }

  // isPrepared(sbn) -> boolean
  Napi::Value IsPrepared(const Napi::CallbackInfo& info) {
    fec::ObjectEncoder* core = Usable(info.Env());
    uint32_t sbn;
    if (!core || !ArgSbn(info, 0, &sbn)) return Napi::Value();
    return Napi::Boolean::New(info.Env(), core->Prepared(sbn));
  }

  // blockMemory(sbn) -> bytes block sbn holds prepared (or will hold)
  Napi::Value BlockMemory(const Napi::CallbackInfo& info) {
    fec::ObjectEncoder* core = Usable(info.Env());
    uint32_t sbn;
    if (!core || !ArgSbn(info, 0, &sbn)) return Napi::Value();
    return Napi::Number::New(info.Env(),
                             static_cast<double>(core->BlockMemory(sbn)));
  }

  Napi::Value ReleaseBlock(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    fec::ObjectEncoder* core = Usable(env);
    uint32_t sbn;
    if (!core || !ArgSbn(info, 0, &sbn)) return Napi::Value();
    if (preparing_[sbn]) {
      ThrowCode(env, kErrBusy, "block is being prepared");
      return Napi::Value();
    }
    core->ReleaseBlock(sbn);
    return env.Undefined();
  }

  // Writes `count` packets of block sbn with ESIs first..first+count-1.
  static Status WritePackets(fec::ObjectEncoder* core, uint32_t sbn,
                             uint32_t first, uint32_t count, uint8_t* out) {
    const size_t size = fec::kPayloadIdSize + core->Layout().oti.T;
    return core->Packets(sbn, first, count, out, size);
  }

  // Reads (sbn, firstEsi, count) at info[at..at+2].
  bool ArgRange(const Napi::CallbackInfo& info, uint32_t* sbn,
                uint32_t* first, uint32_t* count, size_t at = 0) {
    if (!ArgSbn(info, at, sbn)) return false;
    if (!ArgUint32(info, at + 1, "firstEsi", 0, fec::kMaxEsi, first,
                   Status::kEsiOutOfRange)) {
      return false;
    }
    // The last ESI must fit in 24 bits too.
    return ArgUint32(info, at + 2, "count", 0, fec::kMaxEsi + 1u - *first,
                     count, Status::kEsiOutOfRange);
  }

  // packet(sbn, esi) -> Buffer(4 + T)
  Napi::Value Packet(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    fec::ObjectEncoder* core = Usable(env);
    uint32_t sbn, esi;
    if (!core || !ArgSbn(info, 0, &sbn) ||
        !ArgUint32(info, 1, "esi", 0, fec::kMaxEsi, &esi,
                   Status::kEsiOutOfRange)) {
      return Napi::Value();
    }
    Napi::Buffer<uint8_t> out =
        NewBuffer(env, fec::kPayloadIdSize + core->Layout().oti.T);
    if (out.IsEmpty()) return Napi::Value();
    Status s = core->Packet(sbn, esi, out.Data());
    if (s != Status::kOk) {
      ThrowCore(env, *core, s);
      return Napi::Value();
    }
    return out;
  }

  // packets(sbn, firstEsi, count) -> Buffer(count * (4 + T))
  Napi::Value Packets(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    fec::ObjectEncoder* core = Usable(env);
    uint32_t sbn, first, count;
    if (!core || !ArgRange(info, &sbn, &first, &count)) return Napi::Value();
    const uint64_t size = fec::kPayloadIdSize + core->Layout().oti.T;
    Napi::Buffer<uint8_t> out = NewBuffer(env, size * count);
    if (out.IsEmpty()) return Napi::Value();
    Status s = WritePackets(core, sbn, first, count, out.Data());
    if (s != Status::kOk) {
      ThrowCore(env, *core, s);
      return Napi::Value();
    }
    return out;
  }

  // packetsInto(sbn, firstEsi, count, out: Uint8Array, offset) -> bytes
  Napi::Value PacketsInto(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    fec::ObjectEncoder* core = Usable(env);
    uint32_t sbn, first, count;
    Napi::Uint8Array out;
    uint64_t offset;
    if (!core || !ArgRange(info, &sbn, &first, &count) ||
        !ArgBytes(info, 3, "out", &out) ||
        !ArgUint(info, 4, "offset", 0, out.ByteLength(), &offset)) {
      return Napi::Value();
    }
    const uint64_t bytes =
        (fec::kPayloadIdSize + uint64_t(core->Layout().oti.T)) * count;
    if (bytes > out.ByteLength() - offset) {
      ThrowInvalid(env, "out has room for fewer than count packets");
      return Napi::Value();
    }
    Status s = WritePackets(core, sbn, first, count, out.Data() + offset);
    if (s != Status::kOk) {
      ThrowCore(env, *core, s);
      return Napi::Value();
    }
    return Napi::Number::New(env, static_cast<double>(bytes));
  }

  // packetsWithHeader(out, offset, header, seqAt, firstSeq, sbn, firstEsi,
  //                   count) -> bytes
  // Writes count stream packets back to back from out[offset]: `header`,
  // with the 32-bit big-endian (firstSeq + i) mod 2^32 at header offset
  // seqAt unless seqAt is -1, then the FEC Payload ID and the symbol,
  // generated in place. One call per run: no per-packet JS work or copy.
  // The assembly is packet::WritePackets (native/packet); this only reads
  // the arguments and names what is wrong with them.
  Napi::Value PacketsWithHeader(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    fec::ObjectEncoder* core = Usable(env);
    Napi::Uint8Array out, header_arg;
    uint64_t offset, first_seq;
    packet::PacketRun run;
    if (!core || !ArgBytes(info, 0, "out", &out) ||
        !ArgUint(info, 1, "offset", 0, out.ByteLength(), &offset) ||
        !ArgBytes(info, 2, "header", &header_arg)) {
      return Napi::Value();
    }
    const size_t H = header_arg.ByteLength();
    size_t seq_at = packet::HeaderTemplate::kNoSequence;
    if (!(info.Length() > 3 && info[3].IsNumber() &&
          info[3].As<Napi::Number>().DoubleValue() == -1)) {
      uint64_t at;
      if (H < 4) {
        ThrowInvalid(env, "seqAt must be -1: the header has no room for "
                          "a sequence number");
        return Napi::Value();
      }
      if (!ArgUint(info, 3, "seqAt", 0, H - 4, &at)) return Napi::Value();
      seq_at = static_cast<size_t>(at);
    }
    if (!ArgUint(info, 4, "firstSeq", 0, 0xFFFFFFFFull, &first_seq) ||
        !ArgRange(info, &run.sbn, &run.first_esi, &run.count, 5)) {
      return Napi::Value();
    }
    run.first_sequence = static_cast<uint32_t>(first_seq);
    const uint64_t stride = H + fec::kPayloadIdSize + core->Layout().oti.T;
    const uint64_t bytes = stride * run.count;
    if (bytes > out.ByteLength() - offset) {
      ThrowInvalid(env, "out has room for " +
                            std::to_string(out.ByteLength() - offset) +
                            " bytes from offset, the packets need " +
                            std::to_string(bytes));
      return Napi::Value();
    }
    // The template copies the header, which may be a view of `out` itself.
    packet::HeaderTemplate header;
    Status s = packet::HeaderTemplate::FromBytes(header_arg.Data(), H, seq_at,
                                                 &header);
    if (s == Status::kOk) {
      s = packet::WritePackets(*core, header, run, out.Data() + offset,
                               out.ByteLength() - offset, stride);
    }
    if (s != Status::kOk) {
      ThrowCore(env, *core, s);
      return Napi::Value();
    }
    return Napi::Number::New(env, static_cast<double>(bytes));
  }

  class PrepareWorker : public Napi::AsyncWorker {
   public:
    PrepareWorker(Napi::Env env, Encoder* owner, std::vector<uint32_t> sbns)
        : Napi::AsyncWorker(env, "rqcast.Encoder.prepareBlocksAsync"),
          deferred_(Napi::Promise::Deferred::New(env)),
          owner_(owner),
          core_(owner->core_),
          sbns_(std::move(sbns)),
          token_(owner->in_flight_) {
      // The JS encoder and its input buffer stay alive until OnOK.
      self_ = Napi::Persistent(owner->Value());
      if (!owner->from_file_) {
        data_ = Napi::Persistent(owner->data_ref_.Value());
      }
      for (uint32_t sbn : sbns_) owner_->preparing_[sbn] = true;
    }
    Napi::Promise Promise() const { return deferred_.Promise(); }

    void Execute() override {
      for (uint32_t sbn : sbns_) {
        status_ = core_->PrepareBlock(sbn);
        if (status_ != Status::kOk) break;
      }
      token_.Done();
    }
    void OnOK() override {
      Finish();
      if (status_ == Status::kOk) {
        deferred_.Resolve(Env().Undefined());
      } else {
        deferred_.Reject(CoreError(Env(), *core_, status_).Value());
      }
    }
    void OnError(const Napi::Error& e) override {
      Finish();
      deferred_.Reject(e.Value());
    }

   private:
    void Finish() {
      for (uint32_t sbn : sbns_) owner_->preparing_[sbn] = false;
    }
    Napi::Promise::Deferred deferred_;
    Encoder* owner_;
    std::shared_ptr<fec::ObjectEncoder> core_;
    std::vector<uint32_t> sbns_;
    InFlightToken token_;
    Napi::ObjectReference self_, data_;
    Status status_ = Status::kOk;
  };

  // Up to these, prepareBlocksAsync prepares on the calling thread (K =
  // 1 000 at T = 1 280 is 1.28 MB: a replay of ~0.3 ms). The replay's
  // cost is its row operations (about 20 per symbol) times their length
  // T, so both the bytes and the symbols are bounded: small symbols do
  // not make a large block cheap.
  static constexpr uint64_t kInlinePrepareBytes = uint64_t(2) << 20;
  static constexpr uint64_t kInlinePrepareSymbols = 2048;

  // Whether the blocks are prepared on this thread: an encoder over memory
  // (a file-backed one reads the file: never on the JS thread), the K'
  // plan of every block cached, at most kInlinePrepareBytes and
  // kInlinePrepareSymbols in all.
  bool PrepareInline(const fec::ObjectEncoder& core,
                     const std::vector<uint32_t>& sbns) const {
    if (from_file_) return false;
    const fec::ObjectLayout& l = core.Layout();
    uint64_t bytes = 0, symbols = 0;
    for (uint32_t sbn : sbns) {
      if (core.Prepared(sbn)) continue;
      symbols += l.source_symbols(sbn);
      bytes += uint64_t(l.source_symbols(sbn)) * l.oti.T;
      if (bytes > kInlinePrepareBytes || symbols > kInlinePrepareSymbols ||
          !core.PrepareIsReplay(sbn)) {
        return false;
      }
    }
    return true;
  }

  // prepareBlocksAsync(sbns: number[]) -> Promise<void>
  // Prepares on a worker thread, or inline (PrepareInline) when that is
  // cheaper than the trip to the worker pool.
  Napi::Value PrepareBlocksAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    fec::ObjectEncoder* core = Usable(env);
    if (!core) return Napi::Value();
    if (info.Length() < 1 || !info[0].IsArray()) {
      ThrowInvalid(env, "sbns must be an array");
      return Napi::Value();
    }
    Napi::Array arr = info[0].As<Napi::Array>();
    const uint32_t Z = core->Layout().oti.Z;
    std::vector<uint32_t> sbns;
    std::vector<bool> seen(Z, false);
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value v = arr.Get(i);
      if (env.IsExceptionPending()) return Napi::Value();
      if (!v.IsNumber()) {
        ThrowInvalid(env, "sbns must hold numbers");
        return Napi::Value();
      }
      double d = v.As<Napi::Number>().DoubleValue();
      if (!(d >= 0 && d < Z && d == static_cast<uint32_t>(d))) {
        ThrowStatus(env, Status::kSbnOutOfRange);
        return Napi::Value();
      }
      uint32_t sbn = static_cast<uint32_t>(d);
      if (preparing_[sbn]) {
        ThrowCode(env, kErrBusy, "block " + std::to_string(sbn) +
                                     " is already being prepared");
        return Napi::Value();
      }
      if (!seen[sbn]) {
        seen[sbn] = true;
        sbns.push_back(sbn);
      }
    }
    if (PrepareInline(*core, sbns)) {
      // Small blocks whose plan is cached: the replay costs about what a
      // trip through the worker pool does (queue, wake a thread, wake the
      // loop, and the symbols end up in the other core's cache), so it
      // runs here. The promise still settles asynchronously.
      Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
      Status s = Status::kOk;
      for (uint32_t sbn : sbns) {
        s = core->PrepareBlock(sbn);
        if (s != Status::kOk) break;
      }
      if (s == Status::kOk) {
        d.Resolve(env.Undefined());
      } else {
        d.Reject(CoreError(env, *core, s).Value());
      }
      return d.Promise();
    }
    PrepareWorker* w = new PrepareWorker(env, this, std::move(sbns));
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  // Drops the core and the input reference now rather than at GC. Jobs
  // already running keep their own references and finish normally.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    core_.reset();
    data_ref_.Reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<fec::ObjectEncoder> core_;
  std::shared_ptr<InFlight> in_flight_;
  Napi::ObjectReference data_ref_;
  const uint8_t* data_ptr_ = nullptr;
  size_t data_len_ = 0;
  bool from_file_ = false;
  std::vector<bool> preparing_;
};

// lctHeaderTemplate(tsi, toi, fdtInstanceId, oti, withSeq)
//   -> {bytes: Buffer, seqAt}
// The LCT header template native/packet builds for a channel's packets:
// EXT_FDT unless fdtInstanceId is -1, EXT_FTI with the 12-byte OTI unless
// oti is null, EXT_RQSEQ (sequence 0, at seqAt) if withSeq, else seqAt -1.
// Lets tests hold the C++ header against lib/protocol/lct.ts byte for byte.
Napi::Value LctHeaderTemplate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  packet::LctHeaderFields f;
  if (!ArgUint32(info, 0, "tsi", 0, 0xFFFFFFFFu, &f.tsi) ||
      !ArgUint32(info, 1, "toi", 0, 0xFFFFFFFFu, &f.toi)) {
    return Napi::Value();
  }
  f.has_fdt = !(info.Length() > 2 && info[2].IsNumber() &&
                info[2].As<Napi::Number>().DoubleValue() == -1);
  if (f.has_fdt &&
      !ArgUint32(info, 2, "fdtInstanceId", 0, packet::kMaxFdtInstanceId,
                 &f.fdt_instance_id)) {
    return Napi::Value();
  }
  f.has_fti = !(info.Length() > 3 && info[3].IsNull());
  if (f.has_fti) {
    Napi::Uint8Array oti;
    if (!ArgBytes(info, 3, "oti", &oti)) return Napi::Value();
    Status s = fec::oti_decode(oti.Data(), oti.ByteLength(), &f.oti);
    if (s != Status::kOk) {
      ThrowStatus(env, s);
      return Napi::Value();
    }
  }
  if (!ArgBool(info, 4, "withSeq", &f.has_sequence)) return Napi::Value();
  packet::HeaderTemplate header;
  Status s = packet::HeaderTemplate::ForLct(f, &header);
  if (s != Status::kOk) {
    ThrowStatus(env, s);
    return Napi::Value();
  }
  Napi::Buffer<uint8_t> bytes =
      Napi::Buffer<uint8_t>::Copy(env, header.data(), header.size());
  Napi::Object o = Napi::Object::New(env);
  o.Set("bytes", bytes);
  o.Set("seqAt", Napi::Number::New(
                     env, header.has_sequence()
                              ? static_cast<double>(header.sequence_offset())
                              : -1.0));
  return o;
}

// symbolBufferCounters(reset?, trim?): process-wide counts of the block
// buffers (fec::SymbolBuffer) taken fresh from the system, reused from its
// cache and freed back to the system, read and optionally reset in one
// call; trim also empties the cache first (tests: a known start). Fresh
// bytes are what the kernel zeroes on first touch (page faults).
Napi::Value SymbolBufferCounters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() > 1 && info[1].ToBoolean().Value()) {
    fec::SymbolBuffer::TrimCache();
  }
  const fec::SymbolBuffer::Counters c = fec::SymbolBuffer::Stats();
  if (info.Length() > 0 && info[0].ToBoolean().Value()) {
    fec::SymbolBuffer::ResetCounters();
  }
  Napi::Object o = Napi::Object::New(env);
  SetCount(o, "fresh", c.fresh);
  SetCount(o, "freshBytes", c.fresh_bytes);
  SetCount(o, "reused", c.reused);
  SetCount(o, "reusedBytes", c.reused_bytes);
  SetCount(o, "freed", c.freed);
  SetCount(o, "freedBytes", c.freed_bytes);
  SetCount(o, "cachedBytes", fec::SymbolBuffer::CachedBytes());
  return o;
}

}  // namespace

void InitEncoder(Napi::Env env, Napi::Object exports) {
  exports.Set("Encoder", Encoder::Define(env));
  exports.Set("lctHeaderTemplate",
              Napi::Function::New<LctHeaderTemplate>(env, "lctHeaderTemplate"));
  exports.Set("symbolBufferCounters",
              Napi::Function::New<SymbolBufferCounters>(env,
                                                        "symbolBufferCounters"));
}

}  // namespace napi
}  // namespace rqcast

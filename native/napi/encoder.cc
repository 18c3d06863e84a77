// Encoder: ObjectWrap around fec::ObjectEncoder.
//
// The input bytes are not copied: the wrapper keeps a strong reference to
// the caller's Uint8Array, and checks before every use that its memory is
// still the one the core was given (a transferred/detached ArrayBuffer
// would otherwise leave the core reading freed memory).
//
// Threads: the core guards each block with its own lock, so packets of one
// block can be produced while another is prepared on a worker. Preparing
// the same block twice at once is refused (ERR_RQ_BUSY); the TypeScript
// layer shares one promise per block instead.
#include <memory>
#include <string>
#include <vector>

#include "fec/codec.h"
#include "napi/util.h"

namespace rqcast {
namespace napi {
namespace {

using fec::Status;

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
            InstanceMethod<&Encoder::PrepareBlocksAsync>("prepareBlocksAsync"),
            InstanceMethod<&Encoder::Close>("close"),
        });
  }

  // new Encoder(data: Uint8Array, oti: Uint8Array(12))
  explicit Encoder(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<Encoder>(info) {
    Napi::Env env = info.Env();
    in_flight_ = GetInFlight(env);
    Napi::Uint8Array data, oti_bytes;
    if (!ArgBytes(info, 0, "data", &data)) return;
    if (!ArgBytes(info, 1, "oti", &oti_bytes)) return;
    fec::Oti oti;
    Status s = fec::oti_decode(oti_bytes.Data(), oti_bytes.ByteLength(), &oti);
    if (s != Status::kOk) {
      ThrowStatus(env, s);
      return;
    }
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
  // Throws and returns nullptr unless the encoder is usable.
  fec::ObjectEncoder* Usable(Napi::Env env) {
    if (!core_) {
      ThrowCode(env, kErrClosed, "encoder is closed");
      return nullptr;
    }
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
    if (s != Status::kOk) ThrowStatus(env, s);
    return env.Undefined();
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
    for (uint32_t i = 0; i < count; ++i) {
      Status s = core->Packet(sbn, first + i, out + size_t(i) * size);
      if (s != Status::kOk) return s;
    }
    return Status::kOk;
  }

  // Reads (sbn, firstEsi, count) at info[0..2].
  bool ArgRange(const Napi::CallbackInfo& info, uint32_t* sbn,
                uint32_t* first, uint32_t* count) {
    if (!ArgSbn(info, 0, sbn)) return false;
    if (!ArgUint32(info, 1, "firstEsi", 0, fec::kMaxEsi, first,
                   Status::kEsiOutOfRange)) {
      return false;
    }
    // The last ESI must fit in 24 bits too.
    return ArgUint32(info, 2, "count", 0, fec::kMaxEsi + 1u - *first, count,
                     Status::kEsiOutOfRange);
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
      ThrowStatus(env, s);
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
      ThrowStatus(env, s);
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
      ThrowStatus(env, s);
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
      data_ = Napi::Persistent(owner->data_ref_.Value());
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
        deferred_.Reject(MakeStatusError(Env(), status_).Value());
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

  // prepareBlocksAsync(sbns: number[]) -> Promise<void>
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
  std::vector<bool> preparing_;
};

}  // namespace

void InitEncoder(Napi::Env env, Napi::Object exports) {
  exports.Set("Encoder", Encoder::Define(env));
}

}  // namespace napi
}  // namespace rqcast

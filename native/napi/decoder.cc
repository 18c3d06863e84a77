// Decoder: ObjectWrap around fec::ObjectDecoder.
//
// Packets are untrusted: the core checks every field, this file checks
// every JS argument. Batches cross the boundary once: pushBatch takes one
// buffer of equal-sized packets, pushArray an array of packets.
//
// Async: pushBatchAsync/pushArrayAsync add the symbols on the JS thread (a
// copy per packet) and solve the blocks that became decodable on a worker.
// One async operation at a time per decoder (ERR_RQ_BUSY otherwise; the
// TypeScript layer queues them). Synchronous calls stay allowed meanwhile:
// the core locks each block, so they are safe (a call on the very block
// being solved waits for it).
#include <new>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "fec/codec.h"
#include "napi/util.h"

namespace rqcast {
namespace napi {
namespace {

using fec::Status;

// What a batch did, returned to JS as {accepted, rejected, blocksDecoded,
// complete, firstError?}.
struct BatchResult {
  uint32_t accepted = 0;   // valid packets (including duplicates)
  uint32_t rejected = 0;   // malformed packets skipped
  uint32_t blocks_before = 0;
  Status first_error = Status::kOk;
  uint32_t first_error_index = 0;
};

// Blocks lent to JS by takeBlock, by the address of their bytes: what
// returnBlock may take back. Shared with the Buffers' finalizers, which
// may run after the Decoder is gone.
struct LentTable;
struct LentBlock {
  fec::SymbolBuffer bytes;
  // The Buffer's length (the block's; its symbols' memory may be longer).
  size_t length = 0;
  std::shared_ptr<LentTable> table;
};
struct LentTable {
  std::unordered_map<const uint8_t*, LentBlock*> blocks;
  // Blocks given back by returnBlock (their memory to the cache at once).
  uint64_t returned = 0;
};

class Decoder : public Napi::ObjectWrap<Decoder> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "Decoder",
        {
            InstanceMethod<&Decoder::Layout>("layout"),
            InstanceMethod<&Decoder::Push>("push"),
            InstanceMethod<&Decoder::PushBatch>("pushBatch"),
            InstanceMethod<&Decoder::PushArray>("pushArray"),
            InstanceMethod<&Decoder::PushBatchAsync>("pushBatchAsync"),
            InstanceMethod<&Decoder::PushArrayAsync>("pushArrayAsync"),
            InstanceMethod<&Decoder::AddPackets>("addPackets"),
            InstanceMethod<&Decoder::SolveAsync>("solveAsync"),
            InstanceMethod<&Decoder::Solve>("solve"),
            InstanceMethod<&Decoder::BlockDecoded>("blockDecoded"),
            InstanceMethod<&Decoder::BlocksDecoded>("blocksDecoded"),
            InstanceMethod<&Decoder::Complete>("complete"),
            InstanceMethod<&Decoder::Received>("received"),
            InstanceMethod<&Decoder::BlockReleased>("blockReleased"),
            InstanceMethod<&Decoder::CopyBlock>("copyBlock"),
            InstanceMethod<&Decoder::TakeBlock>("takeBlock"),
            InstanceMethod<&Decoder::ReleaseBlock>("releaseBlock"),
            InstanceMethod<&Decoder::ReturnBlock>("returnBlock"),
            InstanceMethod<&Decoder::ReturnedBlocks>("returnedBlocks"),
            InstanceMethod<&Decoder::DiscardBlock>("discardBlock"),
            InstanceMethod<&Decoder::HeldBytes>("heldBytes"),
            InstanceMethod<&Decoder::Result>("result"),
            InstanceMethod<&Decoder::Close>("close"),
        });
  }

  // new Decoder(oti: Uint8Array(12))
  explicit Decoder(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<Decoder>(info) {
    Napi::Env env = info.Env();
    in_flight_ = GetInFlight(env);
    Napi::Uint8Array oti_bytes;
    if (!ArgBytes(info, 0, "oti", &oti_bytes)) return;
    fec::Oti oti;
    Status s = fec::oti_decode(oti_bytes.Data(), oti_bytes.ByteLength(), &oti);
    if (s != Status::kOk) {
      ThrowStatus(env, s);
      return;
    }
    std::unique_ptr<fec::ObjectDecoder> core;
    s = fec::ObjectDecoder::Create(oti, &core);
    if (s != Status::kOk) {
      ThrowStatus(env, s);
      return;
    }
    core_ = std::move(core);
    released_.assign(oti.Z, false);
  }

 private:
  fec::ObjectDecoder* Usable(Napi::Env env) {
    if (!core_) {
      ThrowCode(env, kErrClosed, "decoder is closed");
      return nullptr;
    }
    return core_.get();
  }

  bool ArgSbn(const Napi::CallbackInfo& info, size_t i, uint32_t* sbn) {
    return ArgUint32(info, i, "sbn", 0, core_->Layout().oti.Z - 1u, sbn,
                     Status::kSbnOutOfRange);
  }

  Napi::Value Layout(const Napi::CallbackInfo& info) {
    fec::ObjectDecoder* core = Usable(info.Env());
    if (!core) return Napi::Value();
    return LayoutObject(info.Env(), core->Layout());
  }

  // Adds one packet. With decode, solves its block inline when possible;
  // without, records the block in *ready (if given) if it may now be
  // solvable.
  Status AddOne(const uint8_t* p, size_t len, bool decode,
                std::vector<uint32_t>* ready, std::vector<bool>* marked) {
    fec::ObjectDecoder* core = core_.get();
    // A block handed out by takeBlock is finished: its packets are late
    // copies and must not restart it (the core would start it over).
    if (len >= fec::kPayloadIdSize && len == fec::kPayloadIdSize +
                                                  core->Layout().oti.T &&
        p[0] < released_.size() && released_[p[0]]) {
      return Status::kOk;
    }
    if (decode) {
      bool done = false;
      return core->AddPacket(p, len, &done);
    }
    uint32_t sbn = 0;
    Status s = core->AddPacketNoDecode(p, len, &sbn);
    if (s != Status::kOk || ready == nullptr) return s;
    if (!(*marked)[sbn] && !core->BlockDecoded(sbn) &&
        core->Received(sbn) >= core->Layout().source_symbols(sbn)) {
      (*marked)[sbn] = true;
      ready->push_back(sbn);
    }
    return Status::kOk;
  }

  // Records the outcome of one packet of a batch; false when the batch
  // must stop (strict mode, or a failure that is not about the packet).
  static bool Account(BatchResult* r, Status s, uint32_t index, bool skip) {
    if (s == Status::kOk) {
      ++r->accepted;
      return true;
    }
    if (r->first_error == Status::kOk) {
      r->first_error = s;
      r->first_error_index = index;
    }
    const bool packet_fault = s == Status::kBadPacketLength ||
                              s == Status::kSbnOutOfRange ||
                              s == Status::kInvalidArgument;
    if (skip && packet_fault) {
      ++r->rejected;
      return true;
    }
    return false;
  }

  static Napi::Object ResultObject(Napi::Env env,
                                   const fec::ObjectDecoder& core,
                                   const BatchResult& r) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("accepted", Napi::Number::New(env, r.accepted));
    o.Set("rejected", Napi::Number::New(env, r.rejected));
    o.Set("blocksDecoded",
          Napi::Number::New(env, core.BlocksDecoded() - r.blocks_before));
    o.Set("complete", Napi::Boolean::New(env, core.Complete()));
    if (r.first_error != Status::kOk) {
      o.Set("firstError", Napi::String::New(
                              env, fec::status_code(r.first_error)));
      o.Set("firstErrorIndex", Napi::Number::New(env, r.first_error_index));
    }
    return o;
  }

  // Throws the batch's error in strict mode; the packets before it stay.
  bool ThrowBatchError(Napi::Env env, const BatchResult& r) {
    Napi::Error err = MakeStatusError(env, r.first_error);
    err.Set("index", Napi::Number::New(env, r.first_error_index));
    err.ThrowAsJavaScriptException();
    return false;
  }

  // Walks a batch: pushBatch(buf, packetSize, skipInvalid) or
  // pushArray(packets, skipInvalid). Returns false if an exception is
  // pending.
  bool RunBatch(const Napi::CallbackInfo& info, bool from_array, bool decode,
                BatchResult* r, std::vector<uint32_t>* ready) {
    Napi::Env env = info.Env();
    fec::ObjectDecoder* core = core_.get();
    r->blocks_before = core->BlocksDecoded();
    std::vector<bool> marked(core->Layout().oti.Z, false);
    bool skip = false;
    if (from_array) {
      if (info.Length() < 1 || !info[0].IsArray()) {
        return ThrowInvalid(env, "packets must be an array");
      }
      if (!ArgBool(info, 1, "skipInvalid", &skip)) return false;
      Napi::Array arr = info[0].As<Napi::Array>();
      const uint32_t n = arr.Length();
      // Two N-API calls per packet (the element, then its type, length and
      // bytes at once) rather than node-addon-api's five: at K = 1 000 the
      // calls were a tenth of the decode.
      for (uint32_t i = 0; i < n; ++i) {
        napi_value v;
        if (napi_get_element(env, arr, i, &v) != napi_ok) {
          // A getter on the array threw, or the array is not usable.
          if (!env.IsExceptionPending()) {
            ThrowInvalid(env, "packets[" + std::to_string(i) +
                                  "] cannot be read");
          }
          return false;
        }
        napi_typedarray_type type;
        size_t length = 0;
        void* data = nullptr;
        Status s;
        // Fails (napi_invalid_arg, nothing thrown) for a non-typed-array.
        if (napi_get_typedarray_info(env, v, &type, &length, &data, nullptr,
                                     nullptr) != napi_ok ||
            type != napi_uint8_array) {
          s = Status::kInvalidArgument;
        } else {
          s = AddOne(static_cast<const uint8_t*>(data), length, decode,
                     ready, &marked);
        }
        if (!Account(r, s, i, skip)) return ThrowBatchError(env, *r);
      }
    } else {
      Napi::Uint8Array buf;
      uint64_t size;
      if (!ArgBytes(info, 0, "buf", &buf) ||
          !ArgUint(info, 1, "packetSize", 1, 0xFFFFFFFFull, &size) ||
          !ArgBool(info, 2, "skipInvalid", &skip)) {
        return false;
      }
      if (size != fec::kPayloadIdSize + core->Layout().oti.T ||
          buf.ByteLength() % size != 0) {
        // The framing itself is wrong: no packet boundary can be trusted.
        return ThrowStatus(env, Status::kBadPacketLength);
      }
      const uint64_t n = buf.ByteLength() / size;
      for (uint64_t i = 0; i < n; ++i) {
        Status s = AddOne(buf.Data() + i * size, size, decode, ready, &marked);
        if (!Account(r, s, static_cast<uint32_t>(i), skip)) {
          return ThrowBatchError(env, *r);
        }
      }
    }
    return true;
  }

  // push(packet) -> complete
  Napi::Value Push(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    fec::ObjectDecoder* core = Usable(env);
    Napi::Uint8Array p;
    if (!core || !ArgBytes(info, 0, "packet", &p)) return Napi::Value();
    Status s = AddOne(p.Data(), p.ByteLength(), true, nullptr, nullptr);
    if (s != Status::kOk) {
      ThrowStatus(env, s);
      return Napi::Value();
    }
    return Napi::Boolean::New(env, core->Complete());
  }

  Napi::Value PushSync(const Napi::CallbackInfo& info, bool from_array) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return Napi::Value();
    BatchResult r;
    if (!RunBatch(info, from_array, true, &r, nullptr)) return Napi::Value();
    return ResultObject(env, *core_, r);
  }
  Napi::Value PushBatch(const Napi::CallbackInfo& info) {
    return PushSync(info, false);
  }
  Napi::Value PushArray(const Napi::CallbackInfo& info) {
    return PushSync(info, true);
  }

  class DecodeWorker : public Napi::AsyncWorker {
   public:
    DecodeWorker(Napi::Env env, Decoder* owner, std::vector<uint32_t> sbns,
                 BatchResult r)
        : Napi::AsyncWorker(env, "rqcast.Decoder.pushAsync"),
          deferred_(Napi::Promise::Deferred::New(env)),
          owner_(owner),
          core_(owner->core_),
          sbns_(std::move(sbns)),
          result_(r),
          token_(owner->in_flight_) {
      self_ = Napi::Persistent(owner->Value());
      owner_->busy_ = true;
    }
    Napi::Promise Promise() const { return deferred_.Promise(); }

    void Execute() override {
      for (uint32_t sbn : sbns_) {
        Status s = core_->TryDecodeBlock(sbn);
        // Not solvable yet is normal (K symbols may be linearly
        // dependent); the next symbols of the block will try again.
        if (s != Status::kOk && s != Status::kNeedMoreSymbols) {
          status_ = s;
          break;
        }
      }
      token_.Done();
    }
    void OnOK() override {
      owner_->busy_ = false;
      if (status_ != Status::kOk) {
        deferred_.Reject(MakeStatusError(Env(), status_).Value());
      } else {
        deferred_.Resolve(ResultObject(Env(), *core_, result_));
      }
    }
    void OnError(const Napi::Error& e) override {
      owner_->busy_ = false;
      deferred_.Reject(e.Value());
    }

   private:
    Napi::Promise::Deferred deferred_;
    Decoder* owner_;
    std::shared_ptr<fec::ObjectDecoder> core_;
    std::vector<uint32_t> sbns_;
    BatchResult result_;
    InFlightToken token_;
    Napi::ObjectReference self_;
    Status status_ = Status::kOk;
  };

  Napi::Value PushAsync(const Napi::CallbackInfo& info, bool from_array) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return Napi::Value();
    if (busy_) {
      ThrowCode(env, kErrBusy, "another async operation is running");
      return Napi::Value();
    }
    BatchResult r;
    std::vector<uint32_t> ready;
    if (!RunBatch(info, from_array, false, &r, &ready)) return Napi::Value();
    DecodeWorker* w = new DecodeWorker(env, this, std::move(ready), r);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }
  Napi::Value PushBatchAsync(const Napi::CallbackInfo& info) {
    return PushAsync(info, false);
  }
  Napi::Value PushArrayAsync(const Napi::CallbackInfo& info) {
    return PushAsync(info, true);
  }

  // addPackets(buf, offsets: Uint32Array, count) -> packets refused as
  // malformed. Packet i is the 4 + T bytes at buf[offsets[i]]: a receiver
  // hands in the FEC Payload ID + symbol where they sit in its receive
  // batch, with no copy and no per-packet JS object. Adds without solving
  // (solveAsync does that), and is allowed while a solve runs: the core
  // locks each block, so the caller must not add to a block being solved
  // (the call would wait for the solve).
  Napi::Value AddPackets(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    fec::ObjectDecoder* core = Usable(env);
    Napi::Uint8Array buf;
    uint32_t count;
    if (!core || !ArgBytes(info, 0, "buf", &buf)) return Napi::Value();
    if (info.Length() < 2 || !info[1].IsTypedArray() ||
        info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
      ThrowInvalid(env, "offsets must be a Uint32Array");
      return Napi::Value();
    }
    Napi::Uint32Array offsets = info[1].As<Napi::Uint32Array>();
    if (!ArgUint32(info, 2, "count", 0, static_cast<uint32_t>(offsets.ElementLength()),
                   &count)) {
      return Napi::Value();
    }
    const size_t size = fec::kPayloadIdSize + core->Layout().oti.T;
    const size_t length = buf.ByteLength();
    const uint8_t* data = buf.Data();
    const uint32_t* at = offsets.Data();
    uint32_t rejected = 0;
    for (uint32_t i = 0; i < count; ++i) {
      if (at[i] > length || length - at[i] < size) {
        ++rejected;
        continue;
      }
      Status s = AddOne(data + at[i], size, false, nullptr, nullptr);
      if (s == Status::kOk) continue;
      if (s == Status::kSbnOutOfRange || s == Status::kBadPacketLength) {
        ++rejected;
        continue;
      }
      ThrowStatus(env, s);  // out of memory: not the packet's fault
      return Napi::Value();
    }
    return Napi::Number::New(env, rejected);
  }

  // The block numbers of a solve/solveAsync call; false on a throw.
  bool ArgSbns(const Napi::CallbackInfo& info, fec::ObjectDecoder* core,
               std::vector<uint32_t>* sbns) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
      return ThrowInvalid(env, "sbns must be a Uint32Array");
    }
    Napi::Uint32Array arr = info[0].As<Napi::Uint32Array>();
    for (size_t i = 0; i < arr.ElementLength(); ++i) {
      if (arr[i] >= core->Layout().oti.Z) {
        return ThrowStatus(env, Status::kSbnOutOfRange);
      }
      sbns->push_back(arr[i]);
    }
    return true;
  }

  // solve(sbns: Uint32Array): tries to decode those blocks now, on the JS
  // thread (those not solvable yet stay as they are).
  Napi::Value Solve(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    fec::ObjectDecoder* core = Usable(env);
    std::vector<uint32_t> sbns;
    if (!core || !ArgSbns(info, core, &sbns)) return Napi::Value();
    for (uint32_t sbn : sbns) {
      Status s = core->TryDecodeBlock(sbn);
      if (s != Status::kOk && s != Status::kNeedMoreSymbols) {
        ThrowStatus(env, s);
        return Napi::Value();
      }
    }
    return env.Undefined();
  }

  // solveAsync(sbns: Uint32Array) -> Promise<batch result>: solve on a
  // worker thread.
  Napi::Value SolveAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    fec::ObjectDecoder* core = Usable(env);
    if (!core) return Napi::Value();
    if (busy_) {
      ThrowCode(env, kErrBusy, "another async operation is running");
      return Napi::Value();
    }
    std::vector<uint32_t> sbns;
    if (!ArgSbns(info, core, &sbns)) return Napi::Value();
    BatchResult r;
    r.blocks_before = core->BlocksDecoded();
    DecodeWorker* w = new DecodeWorker(env, this, std::move(sbns), r);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  Napi::Value BlockDecoded(const Napi::CallbackInfo& info) {
    fec::ObjectDecoder* core = Usable(info.Env());
    uint32_t sbn;
    if (!core || !ArgSbn(info, 0, &sbn)) return Napi::Value();
    return Napi::Boolean::New(info.Env(), core->BlockDecoded(sbn));
  }

  Napi::Value BlockReleased(const Napi::CallbackInfo& info) {
    fec::ObjectDecoder* core = Usable(info.Env());
    uint32_t sbn;
    if (!core || !ArgSbn(info, 0, &sbn)) return Napi::Value();
    return Napi::Boolean::New(info.Env(), released_[sbn]);
  }

  Napi::Value BlocksDecoded(const Napi::CallbackInfo& info) {
    fec::ObjectDecoder* core = Usable(info.Env());
    if (!core) return Napi::Value();
    return Napi::Number::New(info.Env(), core->BlocksDecoded());
  }

  Napi::Value Complete(const Napi::CallbackInfo& info) {
    fec::ObjectDecoder* core = Usable(info.Env());
    if (!core) return Napi::Value();
    return Napi::Boolean::New(info.Env(), core->Complete());
  }

  // received() -> Uint32Array(Z) of distinct symbols held per block.
  Napi::Value Received(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    fec::ObjectDecoder* core = Usable(env);
    if (!core) return Napi::Value();
    const uint32_t Z = core->Layout().oti.Z;
    Napi::Uint32Array out = Napi::Uint32Array::New(env, Z);
    if (env.IsExceptionPending()) return Napi::Value();
    for (uint32_t sbn = 0; sbn < Z; ++sbn) out[sbn] = core->Received(sbn);
    return out;
  }

  // Whether block sbn can be handed out (decoded, not yet taken); throws
  // the typed error and returns false otherwise.
  bool BlockAvailable(Napi::Env env, fec::ObjectDecoder* core, uint32_t sbn) {
    if (released_[sbn]) {
      ThrowCode(env, kErrBlockReleased,
                "block " + std::to_string(sbn) + " was already taken");
      return false;
    }
    if (!core->BlockDecoded(sbn)) {
      ThrowStatus(env, Status::kNeedMoreSymbols);
      return false;
    }
    return true;
  }

  // Copies a decoded block into a new Buffer; empty value on a throw.
  Napi::Value CopyOut(Napi::Env env, uint32_t sbn) {
    fec::ObjectDecoder* core = core_.get();
    if (!BlockAvailable(env, core, sbn)) return Napi::Value();
    Napi::Buffer<uint8_t> out =
        NewBuffer(env, core->Layout().block_length(sbn));
    if (out.IsEmpty()) return Napi::Value();
    Status s = core->CopyBlock(sbn, out.Data());
    if (s != Status::kOk) {
      ThrowStatus(env, s);
      return Napi::Value();
    }
    return out;
  }

  Napi::Value CopyBlock(const Napi::CallbackInfo& info) {
    fec::ObjectDecoder* core = Usable(info.Env());
    uint32_t sbn;
    if (!core || !ArgSbn(info, 0, &sbn)) return Napi::Value();
    return CopyOut(info.Env(), sbn);
  }

  // takeBlock(sbn) -> Buffer. With one sub-block (N = 1, what rqcast's
  // OTIs have unless T is huge) the decoded symbols are the block's bytes:
  // the decoder's own buffer is lent to JS as an external Buffer, no copy.
  // Otherwise the bytes are gathered (RFC 6330 §4.4.1.2) into recycled
  // block memory (fec::SymbolBuffer's cache, typically the buffer a block
  // released just before), lent the same way. Either goes back to the cache
  // when the Buffer is collected. A fresh Buffer per block cost a page
  // fault (and the kernel zeroing the page) per 4 KiB: with megabyte blocks
  // that was most of a fetch's system time.
  Napi::Value TakeBlock(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    fec::ObjectDecoder* core = Usable(env);
    uint32_t sbn;
    if (!core || !ArgSbn(info, 0, &sbn)) return Napi::Value();
    if (!BlockAvailable(env, core, sbn)) return Napi::Value();
    const uint64_t length = core->Layout().block_length(sbn);
    Napi::Buffer<uint8_t> out;
    if (length == 0) {
      // Nothing to lend (SymbolBuffer(0) holds no memory).
      out = Napi::Buffer<uint8_t>::New(env, 0);
      if (env.IsExceptionPending()) return Napi::Value();
      core->ReleaseBlock(sbn);
      released_[sbn] = true;
      return out;
    }
    const bool whole = core->Layout().oti.N == 1;
    std::unique_ptr<LentBlock> held(new (std::nothrow) LentBlock());
    if (held && !whole) held->bytes = fec::SymbolBuffer(static_cast<size_t>(length));
    if (!held || (!whole && !held->bytes)) {
      ThrowCode(env, kErrObjectTooLarge,
                "out of memory for a block of " + std::to_string(length) +
                    " bytes");
      return Napi::Value();
    }
    // The decoder lets go of the block here (taken, or copied below and
    // then released); on a failure below the block is lost either way.
    Status s = whole ? core->TakeSource(sbn, &held->bytes)
                     : core->CopyBlock(sbn, held->bytes.data());
    if (s != Status::kOk) {
      ThrowStatus(env, s);
      return Napi::Value();
    }
    if (!whole) core->ReleaseBlock(sbn);
    released_[sbn] = true;
    uint8_t* data = held->bytes.data();
    held->table = lent_;
    held->length = static_cast<size_t>(length);
    out = Napi::Buffer<uint8_t>::New(
        env, data, static_cast<size_t>(length),
        [](Napi::Env, uint8_t* d, LentBlock* h) {
          // Not returned: its memory goes back to the cache now. Returned:
          // empty already, and the address may be another block's by now.
          auto it = h->table->blocks.find(d);
          if (it != h->table->blocks.end() && it->second == h) h->table->blocks.erase(it);
          delete h;
        },
        held.get());
    if (env.IsExceptionPending()) return Napi::Value();
    lent_->blocks[data] = held.release();  // owned by the Buffer's finalizer now
    return out;
  }

  // returnBlock(buffer): a Buffer from takeBlock, whole, given back once its
  // bytes are written and hashed: its ArrayBuffer is detached (every view
  // of it reads as empty from now on) and its memory goes back to
  // fec::SymbolBuffer's cache at once, for the next block, instead of when
  // the garbage collector finalizes the Buffer. The caller must hold no
  // native use of the bytes (a write in flight) when it calls this.
  Napi::Value ReturnBlock(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsTypedArray()) {
      ThrowInvalid(env, "returnBlock(buffer): a Buffer from takeBlock");
      return Napi::Value();
    }
    Napi::TypedArray view = info[0].As<Napi::TypedArray>();
    Napi::ArrayBuffer ab = view.ArrayBuffer();
    const uint8_t* data = static_cast<const uint8_t*>(ab.Data());
    auto it = data == nullptr ? lent_->blocks.end() : lent_->blocks.find(data);
    // The whole block, as lent: not a view of part of it, not another buffer.
    if (it == lent_->blocks.end() || view.ByteOffset() != 0 ||
        view.ByteLength() != ab.ByteLength() ||
        ab.ByteLength() != it->second->length) {
      ThrowCode(env, kErrBlockReleased,
                "returnBlock: not a whole block lent by this decoder's takeBlock");
      return Napi::Value();
    }
    // Detach first: if it fails nothing is freed. The Buffer's finalizer
    // runs later (Node schedules it), and finds its block empty.
    napi_status st = napi_detach_arraybuffer(env, ab);
    if (st != napi_ok) {
      ThrowCode(env, kErrBlockReleased, "returnBlock: the block's memory cannot be detached");
      return Napi::Value();
    }
    LentBlock* held = it->second;
    lent_->blocks.erase(it);
    held->bytes.reset();
    lent_->returned++;
    return env.Undefined();
  }

  // returnedBlocks() -> blocks given back by returnBlock (tests, counters).
  Napi::Value ReturnedBlocks(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(lent_->returned));
  }


  // releaseBlock(sbn): frees a decoded block without copying it, or drops
  // the symbols of an undecoded one (which then starts over).
  Napi::Value ReleaseBlock(const Napi::CallbackInfo& info) {
    fec::ObjectDecoder* core = Usable(info.Env());
    uint32_t sbn;
    if (!core || !ArgSbn(info, 0, &sbn)) return Napi::Value();
    if (core->BlockDecoded(sbn)) released_[sbn] = true;
    core->ReleaseBlock(sbn);
    return info.Env().Undefined();
  }

  // discardBlock(sbn) -> whether a partial block lost its symbols. Unlike
  // releaseBlock it never finishes a decoded block: a receiver that evicts
  // a partial block to stay within its memory budget can receive the block
  // again later.
  Napi::Value DiscardBlock(const Napi::CallbackInfo& info) {
    fec::ObjectDecoder* core = Usable(info.Env());
    uint32_t sbn;
    if (!core || !ArgSbn(info, 0, &sbn)) return Napi::Value();
    return Napi::Boolean::New(info.Env(), core->DiscardBlock(sbn));
  }

  // heldBytes(sbn) -> heap bytes block sbn holds now (fec::ObjectDecoder::
  // HeldBytes).
  Napi::Value HeldBytes(const Napi::CallbackInfo& info) {
    fec::ObjectDecoder* core = Usable(info.Env());
    uint32_t sbn;
    if (!core || !ArgSbn(info, 0, &sbn)) return Napi::Value();
    return Napi::Number::New(info.Env(),
                             static_cast<double>(core->HeldBytes(sbn)));
  }

  // result() -> Buffer(F), the whole object.
  Napi::Value Result(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    fec::ObjectDecoder* core = Usable(env);
    if (!core) return Napi::Value();
    const fec::ObjectLayout& l = core->Layout();
    for (uint32_t sbn = 0; sbn < l.oti.Z; ++sbn) {
      if (released_[sbn]) {
        ThrowCode(env, kErrBlockReleased,
                  "block " + std::to_string(sbn) + " was already taken");
        return Napi::Value();
      }
    }
    if (!core->Complete()) {
      ThrowStatus(env, Status::kNeedMoreSymbols);
      return Napi::Value();
    }
    if (l.oti.F < kRecycledResultBytes) {
      Napi::Buffer<uint8_t> out = NewBuffer(env, l.oti.F);
      if (out.IsEmpty()) return Napi::Value();
      if (!CopyObject(env, *core, out.Data())) return Napi::Value();
      return out;
    }
    // A large object is copied into block memory (fec::SymbolBuffer: huge
    // pages where the kernel has them) lent to JS as an external Buffer,
    // which joins the codec's buffer cache when the Buffer is collected. A
    // Buffer of F bytes cost a page fault (and the kernel zeroing the
    // page) per 4 KiB: at K = 50 000, T = 1 280 that was 16 000 faults, 360
    // of the decode's 780 ms. Fresh, not from the cache: the Buffer comes
    // back late (a collection and a turn of the event loop), and taking
    // the cache's buffer made the next decode fault its work buffer in
    // instead. Still a copy: each call returns bytes of its own, the
    // decoder keeps its blocks.
    if (l.oti.F > kMaxBufferBytes) {
      ThrowCode(env, kErrObjectTooLarge,
                "result of " + std::to_string(l.oti.F) +
                    " bytes exceeds the largest buffer");
      return Napi::Value();
    }
    std::unique_ptr<fec::SymbolBuffer> held(new (std::nothrow)
        fec::SymbolBuffer(fec::SymbolBuffer::Fresh(static_cast<size_t>(l.oti.F))));
    if (!held || !*held) {
      ThrowCode(env, kErrObjectTooLarge,
                "out of memory for an object of " + std::to_string(l.oti.F) +
                    " bytes");
      return Napi::Value();
    }
    if (!CopyObject(env, *core, held->data())) return Napi::Value();
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(
        env, held->data(), static_cast<size_t>(l.oti.F),
        [](Napi::Env, uint8_t*, fec::SymbolBuffer* h) { delete h; },
        held.get());
    if (env.IsExceptionPending()) return Napi::Value();
    held.release();  // owned by the Buffer's finalizer now
    return out;
  }

  // Objects from this size up are returned in block memory (Result).
  // The C library maps an allocation this large fresh from the kernel
  // every time (glibc's largest mmap threshold), so a Buffer always
  // faults in 4 KiB pages; below it a Buffer usually reuses freed heap
  // memory. (Lending the codec's cached buffers below it was tried: they
  // return late, and back-to-back decodes of 1 MB objects then took fresh
  // memory for their work buffers, 15 -> 320 faults per K = 1 000 decode.)
  static constexpr uint64_t kRecycledResultBytes = uint64_t(32) << 20;

  // Copies every block to its place in `out` (F bytes); false on a throw.
  static bool CopyObject(Napi::Env env, const fec::ObjectDecoder& core,
                         uint8_t* out) {
    const fec::ObjectLayout& l = core.Layout();
    for (uint32_t sbn = 0; sbn < l.oti.Z; ++sbn) {
      Status s = core.CopyBlock(sbn, out + l.block_offset(sbn));
      if (s != Status::kOk) {
        ThrowStatus(env, s);
        return false;
      }
    }
    return true;
  }

  // Frees everything now; a running job keeps its own reference.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    core_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<fec::ObjectDecoder> core_;
  std::shared_ptr<InFlight> in_flight_;
  std::shared_ptr<LentTable> lent_ = std::make_shared<LentTable>();
  std::vector<bool> released_;
  bool busy_ = false;
};

}  // namespace

void InitDecoder(Napi::Env env, Napi::Object exports) {
  exports.Set("Decoder", Decoder::Define(env));
}

}  // namespace napi
}  // namespace rqcast

// pwriteRanges: several ranges of one buffer written to a file at their
// own offsets in one thread-pool job.
//
// A decoded block is written to the client's part file except the source
// symbols the write-through put there already (lib/client/write-through.ts):
// at 5 % loss that leaves one range per lost symbol, and one fs write per
// range cost a thread-pool hand-off, a promise and a pwrite each (about
// 10 000 per 256 MiB). Here the block's ranges are one job: one hand-off,
// one promise, the pwrites back to back on the worker thread. POSIX has no
// call that writes one buffer to several file offsets (pwritev writes one
// contiguous file range), so each range is still its own pwrite.
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "napi/register.h"
#include "napi/util.h"

namespace rqcast {
namespace napi {
namespace {

// A range of the buffer: [from, to) of data, written at position + from.
struct WriteRange {
  uint64_t from;
  uint64_t to;
};

class PwriteRangesWorker : public Napi::AsyncWorker {
 public:
  PwriteRangesWorker(Napi::Env env, int fd, Napi::Object holder,
                     const uint8_t* data, uint64_t position,
                     std::vector<WriteRange> ranges)
      : Napi::AsyncWorker(env, "rqcast.pwriteRanges"),
        deferred_(Napi::Promise::Deferred::New(env)),
        fd_(fd),
        data_(data),
        position_(position),
        ranges_(std::move(ranges)),
        token_(GetInFlight(env)) {
    // The bytes stay alive (and are not collected) until the job is done.
    holder_ = Napi::Persistent(holder);
  }
  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override {
    for (const WriteRange& r : ranges_) {
      uint64_t done = r.from;
      while (done < r.to) {
        ssize_t n = pwrite(fd_, data_ + done, static_cast<size_t>(r.to - done),
                           static_cast<off_t>(position_ + done));
        ++calls_;
        if (n < 0) {
          if (errno == EINTR) continue;
          err_ = errno;
          token_.Done();
          return;
        }
        if (n == 0) {
          // A regular file takes at least one byte or fails; never loop.
          err_ = EIO;
          token_.Done();
          return;
        }
        done += static_cast<uint64_t>(n);
        bytes_ += static_cast<uint64_t>(n);
      }
    }
    token_.Done();
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0) {
      // Shaped like a Node fs error: code (the errno's name), errno, syscall.
      const char* name = strerrorname_np(err_);
      std::string code = name != nullptr ? name : "EIO";
      Napi::Error e = Napi::Error::New(env, code + ": " + ErrnoText(err_) + ", write");
      e.Set("code", Napi::String::New(env, code));
      e.Set("errno", Napi::Number::New(env, -err_));
      e.Set("syscall", Napi::String::New(env, "write"));
      e.Set("bytesWritten", Napi::Number::New(env, static_cast<double>(bytes_)));
      deferred_.Reject(e.Value());
      return;
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes_)));
    r.Set("calls", Napi::Number::New(env, static_cast<double>(calls_)));
    deferred_.Resolve(r);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  const uint8_t* data_;
  uint64_t position_;
  std::vector<WriteRange> ranges_;
  InFlightToken token_;
  Napi::ObjectReference holder_;
  int err_ = 0;
  uint64_t bytes_ = 0;
  uint64_t calls_ = 0;
};

// pwriteRanges(fd, data, position, ranges) → Promise<{ bytes, calls }>.
// `ranges` is [from0, to0, from1, to1, …]: ascending, disjoint offsets
// within data; range i goes to the file at position + from_i. `calls` is
// the number of pwrite system calls made (more than the ranges only after
// short writes).
Napi::Value PwriteRanges(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsTypedArray() ||
      !info[2].IsNumber() || !info[3].IsArray()) {
    ThrowInvalid(env, "pwriteRanges(fd, data, position, ranges)");
    return Napi::Value();
  }
  double fd_d = info[0].As<Napi::Number>().DoubleValue();
  if (!(fd_d >= 0 && fd_d <= 0x7fffffff) || fd_d != static_cast<int>(fd_d)) {
    ThrowInvalid(env, "fd must be a non-negative integer");
    return Napi::Value();
  }
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_uint8_array) {
    ThrowInvalid(env, "data must be a Uint8Array");
    return Napi::Value();
  }
  Napi::Uint8Array data = ta.As<Napi::Uint8Array>();
  const uint64_t length = data.ByteLength();
  double pos_d = info[2].As<Napi::Number>().DoubleValue();
  // Below 2^53 and off_t's range once the data's length is added.
  if (!(pos_d >= 0 && pos_d <= 9007199254740991.0) ||
      pos_d != static_cast<double>(static_cast<uint64_t>(pos_d)) ||
      static_cast<uint64_t>(pos_d) + length > 9007199254740991ull) {
    ThrowInvalid(env, "position must be a non-negative safe integer");
    return Napi::Value();
  }
  Napi::Array list = info[3].As<Napi::Array>();
  const uint32_t n = list.Length();
  if (n % 2 != 0) {
    ThrowInvalid(env, "ranges must hold [from, to] pairs");
    return Napi::Value();
  }
  std::vector<WriteRange> ranges;
  ranges.reserve(n / 2);
  uint64_t previous_end = 0;
  for (uint32_t i = 0; i < n; i += 2) {
    Napi::Value a = list.Get(i);
    Napi::Value b = list.Get(i + 1);
    if (!a.IsNumber() || !b.IsNumber()) {
      ThrowInvalid(env, "ranges must be numbers");
      return Napi::Value();
    }
    double from = a.As<Napi::Number>().DoubleValue();
    double to = b.As<Napi::Number>().DoubleValue();
    // Ascending, disjoint, non-empty, inside the buffer.
    if (!(from >= static_cast<double>(previous_end) && to > from &&
          to <= static_cast<double>(length)) ||
        from != static_cast<double>(static_cast<uint64_t>(from)) ||
        to != static_cast<double>(static_cast<uint64_t>(to))) {
      ThrowInvalid(env, "ranges must be ascending, disjoint, non-empty and within data");
      return Napi::Value();
    }
    ranges.push_back({static_cast<uint64_t>(from), static_cast<uint64_t>(to)});
    previous_end = static_cast<uint64_t>(to);
  }
  auto* worker = new PwriteRangesWorker(
      env, static_cast<int>(fd_d), data.As<Napi::Object>(),
      static_cast<const uint8_t*>(data.ArrayBuffer().Data()) + data.ByteOffset(),
      static_cast<uint64_t>(pos_d), std::move(ranges));
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

}  // namespace

void RegisterFileWrites(Napi::Env env, Napi::Object exports) {
  exports.Set("pwriteRanges", Napi::Function::New<PwriteRanges>(env, "pwriteRanges"));
}

}  // namespace napi
}  // namespace rqcast

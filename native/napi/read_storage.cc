// readStorage(bytes) -> Buffer: memory a socket reads into (the TCP
// client's frame storage, lib/transport/tcp/frame-batch.ts), recycled.
//
// The frame storage is never read into twice, so a connection takes new
// storage every megabyte or two. From Node's allocator that is fresh
// memory each time: glibc maps it, and the kernel faults in and zeroes it
// one 4 KiB page at a time as the socket's reads land in it, about 22 000
// faults per 256 MiB, each a trap to the host on this VM (a fetch's socket
// reads cost more in faults than in copying). Here storage comes from
// fec::SymbolBuffer::Fresh (2 MiB aligned, huge pages, faulted in by one
// madvise) and, once V8 has collected every view of it, goes back to a
// small pool that the next storage of the same size is taken from: no
// page is faulted or zeroed again.
//
// The pool is process-wide (a fetch has one or a few connections) and
// bounded; storage returned to a full pool is released (to the codec's
// buffer cache, which bounds itself).
#include <mutex>
#include <new>
#include <vector>

#include "fec/symbol_buffer.h"
#include "napi/register.h"
#include "napi/util.h"

namespace rqcast {
namespace napi {
namespace {

// Buffers of each size the pool keeps while no view holds them.
constexpr size_t kPoolEntries = 32;
// Largest storage handed out: a frame batch is a few MiB at most.
constexpr uint64_t kMaxStorageBytes = uint64_t(64) << 20;

struct Pool {
  std::mutex mu;
  std::vector<fec::SymbolBuffer> free;
  uint64_t fresh = 0, reused = 0, returned = 0, released = 0;
};

Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: finalizers may run late
  return *p;
}

fec::SymbolBuffer Take(size_t bytes) {
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lk(p.mu);
    for (size_t i = p.free.size(); i-- > 0;) {
      if (p.free[i].size() == bytes) {
        fec::SymbolBuffer b = std::move(p.free[i]);
        p.free.erase(p.free.begin() + static_cast<std::ptrdiff_t>(i));
        ++p.reused;
        return b;
      }
    }
    ++p.fresh;
  }
  return fec::SymbolBuffer::Fresh(bytes);
}

void Give(fec::SymbolBuffer* b) {
  Pool& p = pool();
  fec::SymbolBuffer drop;
  {
    std::lock_guard<std::mutex> lk(p.mu);
    if (p.free.size() < kPoolEntries) {
      p.free.push_back(std::move(*b));
      ++p.returned;
    } else {
      drop = std::move(*b);
      ++p.released;
    }
  }
  delete b;
}

Napi::Value ReadStorage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t bytes = 0;
  if (!ArgUint(info, 0, "bytes", 1, kMaxStorageBytes, &bytes)) return Napi::Value();
  auto* held = new (std::nothrow) fec::SymbolBuffer(Take(static_cast<size_t>(bytes)));
  if (held == nullptr || !*held) {
    delete held;
    ThrowCode(env, fec::status_code(fec::Status::kOutOfMemory), "out of memory for read storage");
    return Napi::Value();
  }
  // The finalizer runs once V8 has collected the Buffer and every view of
  // its memory: only then can the next storage be read into it.
  return Napi::Buffer<uint8_t>::New(env, held->data(), held->size(),
                                    [](Napi::Env, uint8_t*, fec::SymbolBuffer* b) { Give(b); }, held);
}

// readStorageCounters() -> {fresh, reused, returned, released, pooled}
Napi::Value ReadStorageCounters(const Napi::CallbackInfo& info) {
  Pool& p = pool();
  Napi::Object o = Napi::Object::New(info.Env());
  std::lock_guard<std::mutex> lk(p.mu);
  SetCount(o, "fresh", p.fresh);
  SetCount(o, "reused", p.reused);
  SetCount(o, "returned", p.returned);
  SetCount(o, "released", p.released);
  SetCount(o, "pooled", p.free.size());
  return o;
}

}  // namespace

void RegisterReadStorage(Napi::Env env, Napi::Object exports) {
  exports.Set("readStorage", Napi::Function::New<ReadStorage>(env, "readStorage"));
  exports.Set("readStorageCounters", Napi::Function::New<ReadStorageCounters>(env, "readStorageCounters"));
}

}  // namespace napi
}  // namespace rqcast

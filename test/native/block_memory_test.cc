// Tests of the encoder's block memory, counted by SymbolBuffer's counters:
// which buffers came fresh from the system (memory the kernel zeroes on
// first touch) and which were reused from the cache. A prepared block
// holds its work buffer (L + 1 symbols); preparing it also takes a copy of
// the source block, which the encoding plan reads until the end of its
// replay (it loads each source row twice: once in the elimination and
// again in the back-substitution) and which the cache hands to the next
// preparation. Blocks released and prepared again take nothing fresh.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "fec/codec.h"
#include "fec/encoding_plan.h"
#include "fec/symbol_buffer.h"

#include "check.h"
#include "codec_fixtures.h"

using namespace rqcast::fec;

namespace {

std::vector<uint8_t> random_bytes(std::mt19937& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// With a trimmed cache a block of 1000 symbols of 1 KiB (1 MiB: sizes
// the cache keeps) takes its work buffer and its copy fresh; the copy is
// back in the cache once prepared. A second block alive beside the first
// takes a fresh work buffer and the first one's copy. Released, both go
// round: nothing fresh after that.
void test_buffers_counted() {
  const uint32_t K = 1000, T = 1024;
  std::mt19937 rng(11);
  std::vector<uint8_t> src = random_bytes(rng, size_t(K) * T);
  SystematicParams p;
  CHECK(systematic_params(K, &p));
  encoding_plan_for(p);  // a plan is no block buffer; solved once here

  SymbolBuffer::TrimCache();
  SymbolBuffer::ResetCounters();
  std::unique_ptr<BlockEncoder> a, b;
  CHECK_STATUS(BlockEncoder::Create(src.data(), K, T, &a), Status::kOk);
  SymbolBuffer::Counters c = SymbolBuffer::Stats();
  CHECK_EQ(c.fresh, 2u);
  CHECK_EQ(c.fresh_bytes, BlockEncoder::MemoryBytesFor(K, T) + size_t(K) * T);
  CHECK_EQ(c.reused, 0u);
  CHECK_EQ(SymbolBuffer::CachedBytes(), size_t(K) * T);  // the copy
  CHECK_STATUS(BlockEncoder::Create(src.data(), K, T, &b), Status::kOk);
  c = SymbolBuffer::Stats();
  CHECK_EQ(c.fresh, 3u);
  CHECK_EQ(c.reused, 1u);
  a.reset();
  b.reset();
  SymbolBuffer::ResetCounters();
  for (int i = 0; i < 4; ++i) {
    CHECK_STATUS(BlockEncoder::Create(src.data(), K, T, &a), Status::kOk);
    a.reset();
  }
  c = SymbolBuffer::Stats();
  CHECK_EQ(c.fresh, 0u);
  CHECK_EQ(c.reused, 8u);
  CHECK_EQ(c.freed, 0u);
  SymbolBuffer::TrimCache();
  c = SymbolBuffer::Stats();
  CHECK_EQ(c.freed, 3u);  // two work buffers and a copy
  CHECK_EQ(SymbolBuffer::CachedBytes(), 0u);
}

// A file served block by block, as the server does: every block kept
// prepared takes one fresh buffer (its work buffer) and the first one a
// copy, which the next blocks reuse; blocks released and prepared again
// take nothing fresh. Packets match the same bytes in memory.
void test_file_blocks_counted() {
  // The last block padded.
  const Oti oti = make_oti(uint64_t(4) * 900 * 1024 - 333, 1024, 4, 1, 4);
  std::mt19937 rng(13);
  std::vector<uint8_t> data = random_bytes(rng, oti.F);
  TempFile file(data);
  std::unique_ptr<ObjectEncoder> disk, mem;
  CHECK_STATUS(ObjectEncoder::CreateFromFile(file.fd, oti, &disk), Status::kOk);
  CHECK_STATUS(ObjectEncoder::Create(data.data(), data.size(), oti, &mem),
               Status::kOk);
  if (!disk || !mem) return;
  const ObjectLayout& l = disk->Layout();
  for (uint32_t sbn = 0; sbn < l.oti.Z; ++sbn) {
    SystematicParams p;
    CHECK(systematic_params(l.source_symbols(sbn), &p));
    encoding_plan_for(p);
  }
  SymbolBuffer::TrimCache();
  SymbolBuffer::ResetCounters();
  uint64_t held = 0;
  for (uint32_t sbn = 0; sbn < l.oti.Z; ++sbn) {
    CHECK_STATUS(disk->PrepareBlock(sbn), Status::kOk);
    held += disk->BlockMemory(sbn);
  }
  SymbolBuffer::Counters c = SymbolBuffer::Stats();
  const uint64_t copy = uint64_t(l.source_symbols(0)) * l.oti.T;
  CHECK_EQ(c.fresh, uint64_t(l.oti.Z) + 1);
  CHECK_EQ(c.fresh_bytes, held + copy);  // sizes are multiples of 64 here
  CHECK_EQ(c.reused, uint64_t(l.oti.Z) - 1);
  CHECK_EQ(SymbolBuffer::CachedBytes(), copy);  // the copy, for the next

  std::vector<uint8_t> a(kPayloadIdSize + oti.T), b(a.size());
  int mismatches = 0;
  for (uint32_t sbn = 0; sbn < l.oti.Z; ++sbn) {
    const uint32_t K = l.source_symbols(sbn);
    for (uint32_t esi = 0; esi < K + 30; esi += (esi < K ? 7 : 1)) {
      mem->Packet(sbn, esi, a.data());
      disk->Packet(sbn, esi, b.data());
      if (a != b) ++mismatches;
    }
  }
  CHECK_EQ(mismatches, 0);

  // A sliding window: release each block and prepare it again; the
  // buffers go round, nothing fresh.
  SymbolBuffer::ResetCounters();
  for (int pass = 0; pass < 3; ++pass) {
    for (uint32_t sbn = 0; sbn < l.oti.Z; ++sbn) {
      disk->ReleaseBlock(sbn);
      CHECK_STATUS(disk->PrepareBlock(sbn), Status::kOk);
    }
  }
  c = SymbolBuffer::Stats();
  CHECK_EQ(c.fresh, 0u);
  CHECK_EQ(c.reused, uint64_t(6) * l.oti.Z);  // a work buffer and a copy each
  mismatches = 0;
  for (uint32_t sbn = 0; sbn < l.oti.Z; ++sbn) {
    for (uint32_t esi = 0; esi < 50; ++esi) {
      const uint32_t e = esi * 97;
      mem->Packet(sbn, e, a.data());
      disk->Packet(sbn, e, b.data());
      if (a != b) ++mismatches;
    }
  }
  CHECK_EQ(mismatches, 0);
}

// A file cut short after the encoder was made: the read fails, the
// preparation reports it and holds nothing; its buffer goes back.
void test_file_truncated() {
  const Oti oti = make_oti(uint64_t(2) * 200 * 1024, 1024, 2, 1, 4);
  std::mt19937 rng(17);
  std::vector<uint8_t> data = random_bytes(rng, oti.F);
  TempFile file(data);
  std::unique_ptr<ObjectEncoder> disk;
  CHECK_STATUS(ObjectEncoder::CreateFromFile(file.fd, oti, &disk), Status::kOk);
  if (!disk) return;
  CHECK(ftruncate(file.fd, 1000) == 0);
  SymbolBuffer::TrimCache();
  SymbolBuffer::ResetCounters();
  CHECK_STATUS(disk->PrepareBlock(1), Status::kSourceTruncated);
  CHECK(!disk->Prepared(1));
  CHECK_EQ(SymbolBuffer::Stats().fresh, 1u);
  CHECK_EQ(SymbolBuffer::CachedBytes(), size_t(200) * 1024);
}

// Whether this kernel faults pages in on madvise(MADV_POPULATE_WRITE)
// (Linux 5.14): an anonymous mapping of 4 pages, resident after the call.
bool kernel_populates() {
#ifdef MADV_POPULATE_WRITE
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  void* m = mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return false;
  const bool ok = madvise(m, 4 * page, MADV_POPULATE_WRITE) == 0;
  munmap(m, 4 * page);
  return ok;
#else
  return false;
#endif
}

// Whole pages of [p, p + bytes) not resident now (mincore).
size_t pages_absent(const uint8_t* p, size_t bytes) {
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(page - 1);
  std::vector<unsigned char> vec((end - begin) / page);
  CHECK(mincore(reinterpret_cast<void*>(begin), end - begin, vec.data()) == 0);
  size_t absent = 0;
  for (unsigned char v : vec) absent += (v & 1) ? 0 : 1;
  return absent;
}

// A buffer taken fresh from the system is resident before anything writes
// it (SymbolBuffer faults its pages in with one madvise call instead of a
// trap per page at the first writes), whether it is a huge-page one or a
// small one that is not page-aligned; a kernel without
// MADV_POPULATE_WRITE leaves them to fault in as before (not checked).
void test_fresh_buffers_populated() {
  if (!kernel_populates()) {
    std::printf("block_memory_test: no MADV_POPULATE_WRITE here, residency not checked\n");
    return;
  }
  for (size_t bytes : {size_t(6) << 20, size_t(300) << 10}) {
    SymbolBuffer b = SymbolBuffer::Fresh(bytes);
    CHECK(b);
    if (!b) continue;
    CHECK_EQ(pages_absent(b.data(), b.size()), 0u);
  }
}

}  // namespace

int main() {
  test_buffers_counted();
  test_file_blocks_counted();
  test_file_truncated();
  test_fresh_buffers_populated();
  if (g_failures) {
    std::fprintf(stderr, "block_memory_test: %d of %d checks failed\n",
                 g_failures.load(), g_checks.load());
    return 1;
  }
  std::printf("block_memory_test: %d checks passed\n", g_checks.load());
  return 0;
}

// Self-tests of the RFC 6330 mathematical core: tables, Rand/Deg/Tuple,
// the constraint relations of the intermediate symbols, and block
// encode/decode round trips. Plain checks, a printed summary, non-zero exit
// on failure. Built and run by `make -C native test`.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "fec/codec.h"
#include "fec/constraint_matrix.h"
#include "fec/encoding_plan.h"
#include "fec/gf256.h"
#include "fec/pi_solver.h"
#include "fec/tables.h"

#include "check.h"

using namespace rqcast::fec;

static std::mt19937_64 g_rng(20261125);

static std::vector<uint8_t> random_bytes(size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(g_rng());
  return v;
}

// ------------------------------------------------------------- tables --

static void test_rand() {
  // Rand[y, i, m] per §5.3.5.1, evaluated by hand from the V tables:
  // y = 0, i = 0: V0[0] ^ V1[0] ^ V2[0] ^ V3[0]
  //   = 251291136 ^ 807385413 ^ 1629829892 ^ 1191369816 = 415381529.
  CHECK(rfc_rand(0, 0, 0xFFFFFFFFu) == 415381529u % 0xFFFFFFFFu);
  CHECK(rfc_rand(0, 0, 1000) == 415381529u % 1000);
  // y = 0x01020304, i = 5: V0[4+5] ^ V1[3+5] ^ V2[2+5] ^ V3[1+5]
  //   = 955053776.
  CHECK(rfc_rand(0x01020304u, 5, 1u << 20) == 955053776u % (1u << 20));
  // Indices wrap modulo 2^8: y = 255, i = 1 reads V0[0], V1[1], V2[1], V3[1].
  const uint32_t w = tables::kV0[0] ^ tables::kV1[1] ^ tables::kV2[1] ^
                     tables::kV3[1];
  CHECK(rfc_rand(255, 1, 65521) == w % 65521);
  // y = 0xFFFFFFFF, i = 1: every byte index wraps to 0.
  CHECK(rfc_rand(0xFFFFFFFFu, 1, 7) == 415381529u % 7);
  // m = 1 always gives 0; results stay below m.
  for (uint32_t y = 0; y < 1000; ++y) {
    CHECK(rfc_rand(y * 2654435761u, y % 8, 1) == 0);
    CHECK(rfc_rand(y * 2654435761u, y % 8, 17) < 17);
  }
}

static void test_deg() {
  // §5.3.5.2 Table 1: f[0] = 0, f[1] = 5243, f[2] = 529531, f[30] = 2^20.
  const uint32_t W = 56951;
  CHECK(rfc_deg(0, W) == 1);
  CHECK(rfc_deg(5242, W) == 1);
  CHECK(rfc_deg(5243, W) == 2);
  CHECK(rfc_deg(529530, W) == 2);
  CHECK(rfc_deg(529531, W) == 3);
  CHECK(rfc_deg(1017661, W) == 29);
  CHECK(rfc_deg(1017662, W) == 30);
  CHECK(rfc_deg((1u << 20) - 1, W) == 30);
  // min(d, W - 2)
  CHECK(rfc_deg((1u << 20) - 1, 17) == 15);
  CHECK(rfc_deg(1017662, 31) == 29);
  for (uint32_t d = 1; d <= 30; ++d) {
    CHECK(rfc_deg(tables::kDegF[d - 1], W) == d);
    CHECK(rfc_deg(tables::kDegF[d] - 1, W) == d);
  }
}

static bool is_prime(uint32_t n) {
  if (n < 2) return false;
  for (uint32_t d = 2; d * d <= n; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

static void test_table2() {
  SystematicParams p;
  CHECK(systematic_params(1, &p));
  CHECK(p.K_prime == 10 && p.J == 254 && p.S == 7 && p.H == 10 && p.W == 17);
  CHECK(p.L == 27 && p.P == 10 && p.P1 == 11 && p.U == 0 && p.B == 10);
  CHECK(systematic_params(10, &p) && p.K_prime == 10);
  CHECK(systematic_params(11, &p) && p.K_prime == 12);
  CHECK(systematic_params(56403, &p));
  CHECK(p.K_prime == 56403 && p.J == 471 && p.S == 907 && p.H == 16 &&
        p.W == 56951);
  CHECK(!systematic_params(56404, &p));
  CHECK(!systematic_params(0, &p));
  // Every row: K' maps to itself, K'-1 to it too, P1 prime and >= P,
  // and P >= H (needed for HDPC rows never to be chosen in phase 1).
  uint32_t prev = 0;
  for (uint32_t r = 0; r < tables::kTable2Rows; ++r) {
    const uint32_t kp = tables::kTable2[r].K_prime;
    CHECK(systematic_params(kp, &p) && p.K_prime == kp);
    CHECK(systematic_params(prev + 1, &p) && p.K_prime == kp);
    CHECK(is_prime(p.P1) && p.P1 >= p.P && p.P >= p.H);
    CHECK(is_prime(p.W) && is_prime(p.S));
    prev = kp;
  }
}

static void test_tuple() {
  // §5.3.5.4 ranges.
  SystematicParams p;
  for (uint32_t K : {10u, 101u, 1000u, 56403u}) {
    CHECK(systematic_params(K, &p));
    for (uint32_t X = 0; X < 2000; ++X) {
      const Tuple t = rfc_tuple(p, X * 7919u);
      CHECK(t.d >= 1 && t.d <= 30 && t.d <= p.W - 2);
      CHECK(t.a >= 1 && t.a < p.W && t.b < p.W);
      CHECK(t.d1 == 2 || (t.d1 == 3 && t.d < 4));
      CHECK(t.a1 >= 1 && t.a1 < p.P1 && t.b1 < p.P1);
      uint32_t cols[kMaxLtColumns];
      const uint32_t n = lt_columns(p, X * 7919u, cols);
      CHECK(n == t.d + t.d1);
      std::sort(cols, cols + n);
      CHECK(std::adjacent_find(cols, cols + n) == cols + n);
      CHECK(cols[n - 1] < p.L);
    }
  }
}

// ------------------------------------------- intermediate symbols ------

// Checks the constraint relations of §5.3.3.3 directly on the intermediate
// symbols of an encoder, with the HDPC rows built densely from MT and GAMMA
// (no recurrence), and the systematic property LTEnc(isi) = source (isi < K).
static void check_intermediate(uint32_t K, uint32_t T) {
  SystematicParams p;
  CHECK(systematic_params(K, &p));
  const std::vector<uint8_t> src = random_bytes(size_t(K) * T);
  std::vector<const uint8_t*> inputs(p.K_prime, nullptr);
  for (uint32_t x = 0; x < K; ++x) inputs[x] = src.data() + size_t(x) * T;
  EncodingPlan plan;
  SolverStats stats;
  CHECK_MSG(build_encoding_plan(p, &plan, &stats), "K'=%u", p.K_prime);
  if (plan.column_slot.size() != p.L) return;
  std::vector<uint8_t> work(size_t(plan.num_slots) * T);
  plan.Replay(work.data(), T, inputs.data());
  auto C = [&](uint32_t c) {
    return intermediate_symbol(plan, work.data(), T, c);
  };
  std::vector<uint8_t> acc(T);
  // LDPC rows: sum is zero.
  SparseRows ldpc;
  append_ldpc_rows(p, &ldpc);
  for (uint32_t r = 0; r < p.S; ++r) {
    std::fill(acc.begin(), acc.end(), 0);
    for (const uint32_t* c = ldpc.begin(r); c != ldpc.end(r); ++c) {
      gf256::add(acc.data(), C(*c), T);
    }
    CHECK_MSG(std::all_of(acc.begin(), acc.end(), [](uint8_t b) { return !b; }),
              "LDPC row %u K'=%u", r, p.K_prime);
  }
  // HDPC rows: MT * GAMMA, computed as dense products.
  const uint32_t KS = p.K_prime + p.S;
  std::vector<uint8_t> mt(size_t(p.H) * KS, 0);
  for (uint32_t j = 0; j + 1 < KS; ++j) {
    uint32_t h1, h2;
    hdpc_mt_column(p, j, &h1, &h2);
    CHECK(h1 != h2 && h1 < p.H && h2 < p.H);
    mt[size_t(h1) * KS + j] = 1;
    mt[size_t(h2) * KS + j] = 1;
  }
  for (uint32_t h = 0; h < p.H; ++h) mt[size_t(h) * KS + KS - 1] = gf256::exp(h);
  for (uint32_t h = 0; h < p.H; ++h) {
    std::fill(acc.begin(), acc.end(), 0);
    for (uint32_t j = 0; j < KS; ++j) {
      // (MT * GAMMA)[h][j] = sum_{i >= j} MT[h][i] * alpha^(i-j)
      uint8_t coef = 0;
      for (uint32_t i = j; i < KS; ++i) {
        coef ^= gf256::mul(mt[size_t(h) * KS + i], gf256::exp(i - j));
      }
      gf256::addmul(acc.data(), C(j), coef, T);
    }
    gf256::add(acc.data(), C(KS + h), T);
    CHECK_MSG(std::all_of(acc.begin(), acc.end(), [](uint8_t b) { return !b; }),
              "HDPC row %u K'=%u", h, p.K_prime);
  }
  // Systematic: LTEnc of ISI x < K is source symbol x, zero for padding.
  std::vector<uint8_t> out(T);
  for (uint32_t x = 0; x < p.K_prime; ++x) {
    lt_encode(p, plan, work.data(), T, x, out.data());
    if (x < K) {
      CHECK_MSG(std::memcmp(out.data(), inputs[x], T) == 0, "ISI %u K=%u", x,
                K);
    } else {
      CHECK(std::all_of(out.begin(), out.end(), [](uint8_t b) { return !b; }));
    }
  }
}

// The fused replay (EncodingPlan::Fuse) against the recorded ops replayed
// one by one: identical intermediate symbols, for encoding plans (with
// padding ISIs as null inputs) and T not a multiple of any vector width.
static void check_fused(uint32_t K, uint32_t T) {
  SystematicParams p;
  CHECK(systematic_params(K, &p));
  const std::vector<uint8_t> src = random_bytes(size_t(K) * T);
  std::vector<const uint8_t*> inputs(p.K_prime, nullptr);
  for (uint32_t x = 0; x < K; ++x) inputs[x] = src.data() + size_t(x) * T;
  EncodingPlan ref, fused;
  CHECK(build_encoding_plan(p, &ref, nullptr));
  CHECK(build_encoding_plan(p, &fused, nullptr));
  const size_t num_ops = fused.ops.size();
  fused.Fuse();
  CHECK(fused.ops.empty() && !fused.fused.empty());
  CHECK(fused.fused.size() < num_ops);
  std::vector<uint8_t> w1(size_t(ref.num_slots) * T, 0xA5);
  std::vector<uint8_t> w2(size_t(fused.num_slots) * T, 0x5A);
  ref.Replay(w1.data(), T, inputs.data());
  fused.Replay(w2.data(), T, inputs.data());
  for (uint32_t c = 0; c < p.L; ++c) {
    CHECK_MSG(std::memcmp(intermediate_symbol(ref, w1.data(), T, c),
                          intermediate_symbol(fused, w2.data(), T, c),
                          T) == 0,
              "fused replay differs: K=%u T=%u column %u", K, T, c);
  }
}

// A plan the solver fused as it went (PlanForm::kFused: the K' cache,
// decoders) is the plan Fuse() makes of the recorded ops, op for op, for
// encoding plans and for decoding systems of received ISIs (source lost,
// repair added, in any order; repair only), with the same solver figures.
static bool same_fused(const EncodingPlan& a, const EncodingPlan& b) {
  if (a.fused.size() != b.fused.size()) return false;
  for (size_t i = 0; i < a.fused.size(); ++i) {
    const FusedOp& x = a.fused[i];
    const FusedOp& y = b.fused[i];
    if (x.dst != y.dst || x.input != y.input || x.first != y.first ||
        x.count != y.count || x.kind != y.kind || x.beta != y.beta) {
      return false;
    }
  }
  return a.fused_srcs == b.fused_srcs && a.fused_coeffs == b.fused_coeffs &&
         a.column_slot == b.column_slot && a.num_slots == b.num_slots &&
         a.num_inputs == b.num_inputs && a.max_sources == b.max_sources &&
         a.hdpc_blocks.size() == b.hdpc_blocks.size() && b.ops.empty();
}

static void check_fused_form(uint32_t K) {
  SystematicParams p;
  CHECK(systematic_params(K, &p));
  EncodingPlan ref, direct;
  SolverStats s1, s2;
  CHECK(build_encoding_plan(p, &ref, &s1));
  CHECK(build_encoding_plan(p, &direct, &s2, PlanForm::kFused));
  ref.Fuse();
  CHECK_MSG(same_fused(ref, direct), "encoding plan K'=%u", p.K_prime);
  CHECK(s1.xor_ops == s2.xor_ops && s1.mul_ops == s2.mul_ops &&
        s1.inactivated == s2.inactivated && s1.xor_ops > 0);
  // Decoding systems: each trial a random set of received ISIs.
  for (int trial = 0; trial < 4; ++trial) {
    SparseRows rows;
    append_ldpc_rows(p, &rows);
    std::vector<uint32_t> row_input(p.S, kNoInput);
    for (uint32_t x = K; x < p.K_prime; ++x) {
      append_lt_row(p, x, &rows);
      row_input.push_back(kNoInput);
    }
    std::vector<uint32_t> isis;
    if (trial == 3) {  // repair only
      for (uint32_t j = 0; j < K + 2; ++j) isis.push_back(p.K_prime + 5 * j);
    } else {
      uint32_t lost = 0;
      for (uint32_t x = 0; x < K; ++x) {
        if (g_rng() % 4 == 0) {
          ++lost;
        } else {
          isis.push_back(x);
        }
      }
      for (uint32_t j = 0; j < lost + 2; ++j) isis.push_back(p.K_prime + 3 * j);
      std::shuffle(isis.begin(), isis.end(), g_rng);
    }
    for (uint32_t isi : isis) {
      append_lt_row(p, isi, &rows);
      row_input.push_back(static_cast<uint32_t>(row_input.size()));
    }
    const uint32_t inputs = static_cast<uint32_t>(row_input.size());
    EncodingPlan a, b;
    const bool ok_a = pi_solve(p, rows, row_input, inputs, &a, nullptr);
    const bool ok_b =
        pi_solve(p, rows, row_input, inputs, &b, nullptr, PlanForm::kFused);
    CHECK_MSG(ok_a == ok_b, "K=%u trial %d", K, trial);
    if (!ok_a || !ok_b) continue;
    a.Fuse();
    CHECK_MSG(same_fused(a, b), "decoding plan K=%u trial %d", K, trial);
  }
}

static void test_intermediate() {
  for (uint32_t K : {1u, 2u, 10u, 55u, 300u, 1000u, 2500u}) {
    check_fused_form(K);
  }
  for (uint32_t K : {1u, 2u, 10u, 11u, 18u, 55u, 101u, 300u, 1000u}) {
    check_intermediate(K, 8);
  }
  for (uint32_t K : {1u, 10u, 300u, 1000u}) {
    check_fused(K, 1);
    check_fused(K, 200);
  }
  check_fused(4000, 1283);
}

// Every K' of Table 2 up to `limit` yields a nonsingular encoding matrix
// (RFC 6330 guarantees it for all K'); exercises the solver on each shape.
static void test_all_kprime(uint32_t limit) {
  uint32_t n = 0, sum_u = 0;
  for (uint32_t r = 0; r < tables::kTable2Rows; ++r) {
    SystematicParams p;
    systematic_params(tables::kTable2[r].K_prime, &p);
    if (p.K_prime > limit) break;
    EncodingPlan plan;
    SolverStats st;
    CHECK_MSG(build_encoding_plan(p, &plan, &st), "K'=%u", p.K_prime);
    CHECK(st.pivots_phase1 + st.inactivated == p.L);
    sum_u += st.inactivated - p.P;
    ++n;
  }
  std::printf("  all %u K' <= %u solve; mean extra inactivations %.1f\n", n,
              limit, n ? double(sum_u) / n : 0.0);
}

// The cached rows of a K' (what decoders copy their rows from) are the
// rows built from the RFC's definitions, row for row: the S LDPC rows,
// then ISI x at row S + x; one copy per K'; none above the bound, where
// decoders build their rows as before (the round trips below decode on
// both sides of it).
static void test_source_rows() {
  for (uint32_t K : {1u, 10u, 101u, 1000u, 4000u, 8100u}) {
    SystematicParams p;
    CHECK(systematic_params(K, &p));
    const std::shared_ptr<const SparseRows> rows = source_rows_for(p);
    CHECK_MSG(rows != nullptr, "K'=%u", p.K_prime);
    if (!rows) continue;
    CHECK(source_rows_for(p) == rows);
    CHECK(rows->rows() == p.S + p.K_prime);
    SparseRows fresh;
    append_ldpc_rows(p, &fresh);
    for (uint32_t x = 0; x < p.K_prime; ++x) append_lt_row(p, x, &fresh);
    CHECK_MSG(fresh.start == rows->start && fresh.cols == rows->cols,
              "cached rows differ, K'=%u", p.K_prime);
  }
  SystematicParams big;
  CHECK(systematic_params(kCachedRowsMaxKPrime + 1, &big));
  CHECK(big.K_prime > kCachedRowsMaxKPrime && source_rows_for(big) == nullptr);
}

// --------------------------------------------------------- round trips --

struct Block {
  uint32_t K, T;
  std::vector<uint8_t> src;
  std::unique_ptr<BlockEncoder> enc;
};

static Block make_block(uint32_t K, uint32_t T) {
  Block b{K, T, random_bytes(size_t(K) * T), nullptr};
  CHECK(BlockEncoder::Create(b.src.data(), K, T, &b.enc) == Status::kOk);
  return b;
}

// Feeds `esis` (in order) to a fresh decoder; returns whether it decoded and
// matched the source. Tries a decode once all are in.
static bool decode_with(const Block& b, const std::vector<uint32_t>& esis,
                        bool expect_success = true) {
  BlockDecoder dec(b.K, b.T);
  std::vector<uint8_t> sym(b.T);
  for (uint32_t esi : esis) {
    CHECK(b.enc->Symbol(esi, sym.data()) == Status::kOk);
    BlockDecoder::AddResult res;
    CHECK(dec.Add(esi, sym.data(), &res) == Status::kOk);
  }
  const Status s = dec.TryDecode();
  if (s != Status::kOk) {
    if (expect_success) {
      std::fprintf(stderr, "  decode failed: K=%u with %zu symbols\n", b.K,
                   esis.size());
    }
    return false;
  }
  const bool same = dec.Decoded() && dec.Source() &&
                    std::memcmp(dec.Source(), b.src.data(), b.src.size()) == 0;
  CHECK_MSG(same, "decoded bytes differ, K=%u", b.K);
  return same;
}

static void round_trips(uint32_t K, uint32_t T) {
  const auto t0 = std::chrono::steady_clock::now();
  Block b = make_block(K, T);
  if (!b.enc) return;
  // Source ESIs return the source symbols.
  std::vector<uint8_t> sym(T);
  for (uint32_t x = 0; x < K; x += std::max(1u, K / 17)) {
    CHECK(b.enc->Symbol(x, sym.data()) == Status::kOk);
    CHECK(std::memcmp(sym.data(), &b.src[size_t(x) * T], T) == 0);
  }
  std::vector<uint32_t> esis;
  // 1. all source
  for (uint32_t x = 0; x < K; ++x) esis.push_back(x);
  CHECK(decode_with(b, esis));
  // 2. ~20% (at least one) source lost, replaced by as many repair + 2.
  {
    std::vector<uint32_t> e;
    uint32_t lost = 0;
    for (uint32_t x = 0; x < K; ++x) {
      if (g_rng() % 5 == 0 || (x == K - 1 && lost == 0)) {
        ++lost;
      } else {
        e.push_back(x);
      }
    }
    for (uint32_t j = 0; j < lost + 2; ++j) e.push_back(K + j);
    CHECK_MSG(decode_with(b, e), "losses K=%u", K);
  }
  // 3. repair only, far ESIs included (K + 2 of them)
  {
    std::vector<uint32_t> e;
    for (uint32_t j = 0; j < K + 2; ++j) e.push_back(K + 1000 + j * 3);
    e.back() = kMaxEsi;
    CHECK_MSG(decode_with(b, e), "repair only K=%u", K);
  }
  // 4. shuffled mix with duplicates: half the source, repair, repeats.
  {
    std::vector<uint32_t> e;
    for (uint32_t x = 0; x < K; x += 2) e.push_back(x);
    for (uint32_t j = 0; j < K / 2 + 3; ++j) e.push_back(K + 50 + j);
    const size_t n = e.size();
    for (size_t j = 0; j < n; j += 3) e.push_back(e[j]);  // duplicates
    std::shuffle(e.begin(), e.end(), g_rng);
    CHECK_MSG(decode_with(b, e), "shuffled K=%u", K);
  }
  // 5. repair first, then the source symbols whose slots the decoder
  // parked them in (every parked symbol moves), one source lost.
  {
    std::vector<uint32_t> e;
    for (uint32_t j = 0; j < K / 2 + 3; ++j) e.push_back(K + 7 + j);
    for (uint32_t x = 0; x < K; ++x) {
      if (x != K / 3) e.push_back(x);
    }
    CHECK_MSG(decode_with(b, e), "repair before source K=%u", K);
  }
  const double ms = std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - t0)
                        .count();
  std::printf("  round trips K=%u T=%u ok (%.0f ms)\n", K, T, ms);
}

static void test_round_trips() {
  for (uint32_t K : {1u, 2u, 3u, 10u, 11u, 12u, 101u, 1000u}) round_trips(K, 16);
  round_trips(257, 1280);
  std::uniform_int_distribution<uint32_t> mid(1001, 8000);
  for (int j = 0; j < 3; ++j) round_trips(mid(g_rng), 8);
  std::uniform_int_distribution<uint32_t> big(20000, 56403);
  round_trips(big(g_rng), 4);
  round_trips(56403, 4);
}

// Decoder bookkeeping: duplicates, already decoded, retry after failure.
static void test_decoder_api() {
  Block b = make_block(30, 32);
  BlockDecoder dec(30, 32);
  std::vector<uint8_t> sym(32);
  BlockDecoder::AddResult res;
  CHECK(dec.TryDecode() == Status::kNeedMoreSymbols);
  b.enc->Symbol(40, sym.data());
  CHECK(dec.Add(40, sym.data(), &res) == Status::kOk &&
        res == BlockDecoder::AddResult::kAdded);
  CHECK(dec.Add(40, sym.data(), &res) == Status::kOk &&
        res == BlockDecoder::AddResult::kDuplicate);
  CHECK(dec.Received() == 1);
  CHECK(dec.Add(kMaxEsi + 1, sym.data(), &res) == Status::kEsiOutOfRange);
  CHECK(dec.Add(3, nullptr, &res) == Status::kInvalidArgument);
  for (uint32_t x = 0; x < 28; ++x) {
    b.enc->Symbol(x, sym.data());
    CHECK(dec.Add(x, sym.data(), &res) == Status::kOk);
  }
  CHECK(dec.Received() == 29);
  CHECK(dec.TryDecode() == Status::kNeedMoreSymbols);
  CHECK(!dec.Decoded() && dec.Source() == nullptr);
  b.enc->Symbol(41, sym.data());
  dec.Add(41, sym.data(), &res);
  CHECK(dec.TryDecode() == Status::kOk);
  CHECK(dec.Decoded() && std::memcmp(dec.Source(), b.src.data(), 30 * 32) == 0);
  CHECK(dec.Add(42, sym.data(), &res) == Status::kOk &&
        res == BlockDecoder::AddResult::kAlreadyDecoded);
  CHECK(dec.TryDecode() == Status::kOk);
  dec.Release();

  // Invalid arguments.
  std::unique_ptr<BlockEncoder> e;
  CHECK(BlockEncoder::Create(b.src.data(), 0, 32, &e) != Status::kOk);
  CHECK(BlockEncoder::Create(b.src.data(), 30, 0, &e) != Status::kOk);
  CHECK(BlockEncoder::Create(b.src.data(), 56404, 1, &e) ==
        Status::kTooManySourceSymbols);
  CHECK(BlockEncoder::Create(nullptr, 30, 32, &e) != Status::kOk);
  CHECK(b.enc->Symbol(kMaxEsi + 1, sym.data()) == Status::kEsiOutOfRange);
  CHECK(b.enc->Symbol(kMaxEsi, sym.data()) == Status::kOk);
  CHECK(b.enc->Symbols(kMaxEsi, 2, sym.data(), 32) == Status::kEsiOutOfRange);
  BlockDecoder bad(56404, 8), bad2(10, 0);
  CHECK(bad.Add(0, sym.data(), &res) == Status::kInvalidArgument);
  CHECK(bad2.TryDecode() == Status::kInvalidArgument);

  // Symbols() writes with a stride and matches Symbol().
  std::vector<uint8_t> many(5 * 40), one(32);
  CHECK(b.enc->Symbols(28, 5, many.data(), 40) == Status::kOk);
  for (uint32_t j = 0; j < 5; ++j) {
    b.enc->Symbol(28 + j, one.data());
    CHECK(std::memcmp(one.data(), &many[j * 40], 32) == 0);
  }
  // Runs of every length from 1 to past Symbols' prefetch distance, from
  // each first ESI around K (source, then repair ESIs, ISI X + K' - K):
  // each symbol equal to Symbol()'s, nothing written between the strides.
  for (uint32_t first : {0u, 25u, 29u, 30u, 31u, 1000u, kMaxEsi - 9}) {
    for (uint32_t count = 1; count <= 9 && count - 1 <= kMaxEsi - first; ++count) {
      std::vector<uint8_t> run(size_t(count) * 36, 0xA5);
      CHECK(b.enc->Symbols(first, count, run.data(), 36) == Status::kOk);
      for (uint32_t j = 0; j < count; ++j) {
        CHECK(b.enc->Symbol(first + j, one.data()) == Status::kOk);
        CHECK(std::memcmp(one.data(), &run[j * 36], 32) == 0);
        for (uint32_t g = 32; g < 36; ++g) CHECK(run[j * 36 + g] == 0xA5);
      }
    }
  }
}

// With exactly K random symbols RaptorQ fails to decode about 1% of the
// time (RFC 6330 §5.1 figures); with K + 2 about 1e-6 (so ~never here).
// A failed block must decode once more symbols arrive.
static void test_failure_rate() {
  const int kTrials = 300;
  int fail0 = 0, fail2 = 0, total = 0;
  for (uint32_t K : {10u, 26u, 60u, 120u}) {
    Block b = make_block(K, 4);
    for (int t = 0; t < kTrials; ++t) {
      // K distinct random ESIs from [0, 4K).
      std::vector<uint32_t> pool(4 * K);
      for (uint32_t j = 0; j < pool.size(); ++j) pool[j] = j;
      std::shuffle(pool.begin(), pool.end(), g_rng);
      std::vector<uint32_t> e(pool.begin(), pool.begin() + K);
      BlockDecoder dec(K, 4);
      std::vector<uint8_t> sym(4);
      BlockDecoder::AddResult res;
      for (uint32_t esi : e) {
        b.enc->Symbol(esi, sym.data());
        dec.Add(esi, sym.data(), &res);
      }
      ++total;
      if (dec.TryDecode() != Status::kOk) {
        ++fail0;
        // More symbols: must eventually succeed, and give the source.
        uint32_t extra = 0;
        Status s = Status::kNeedMoreSymbols;
        while (s != Status::kOk && extra < 20) {
          const uint32_t esi = pool[K + extra++];
          b.enc->Symbol(esi, sym.data());
          dec.Add(esi, sym.data(), &res);
          s = dec.TryDecode();
        }
        CHECK_MSG(s == Status::kOk, "K=%u no decode after 20 extra", K);
        if (s == Status::kOk) {
          CHECK(std::memcmp(dec.Source(), b.src.data(), b.src.size()) == 0);
        }
      } else {
        CHECK(std::memcmp(dec.Source(), b.src.data(), b.src.size()) == 0);
      }
      std::vector<uint32_t> e2(pool.begin(), pool.begin() + K + 2);
      if (!decode_with(b, e2, false)) ++fail2;
    }
  }
  std::printf("  decode failure with K symbols: %d/%d (%.2f%%), with K+2: %d/%d\n",
              fail0, total, 100.0 * fail0 / total, fail2, total);
  CHECK(fail0 < total * 5 / 100);
  CHECK(fail2 <= 2);
}

int main(int argc, char** argv) {
  const auto t0 = std::chrono::steady_clock::now();
  std::printf("fec_math_test (gf256 kernel: %s)\n", gf256::kernel_name());
  struct {
    const char* name;
    void (*fn)();
  } tests[] = {
      {"rand", test_rand},
      {"deg", test_deg},
      {"table2", test_table2},
      {"tuple", test_tuple},
      {"intermediate", test_intermediate},
      {"all_kprime", [] { test_all_kprime(3000); }},
      {"source_rows", test_source_rows},
      {"decoder_api", test_decoder_api},
      {"round_trips", test_round_trips},
      {"failure_rate", test_failure_rate},
  };
  for (auto& t : tests) {
    const int before = g_failures.load();
    t.fn();
    std::printf("%s %s\n", g_failures == before ? "ok  " : "FAIL", t.name);
  }
  const double s = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - t0)
                       .count();
  std::printf("fec_math_test: %d checks, %d failures (%.1f s)\n",
              g_checks.load(), g_failures.load(), s);
  (void)argc;
  (void)argv;
  return g_failures == 0 ? 0 : 1;
}

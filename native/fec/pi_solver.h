// RFC 6330 §5.4.2: inactivation decoding of A * C = D, done on the
// coefficient matrix only; every row operation that must also happen to
// the symbols is recorded into an EncodingPlan (encoding_plan.h).
#pragma once

#include <cstdint>
#include <vector>

#include "fec/codec.h"
#include "fec/constraint_matrix.h"
#include "fec/encoding_plan.h"

namespace rqcast {
namespace fec {

constexpr uint32_t kNoInput = 0xFFFFFFFFu;

// `rows` are the binary rows of A (the S LDPC rows and one LT row per
// received or padding ISI, in any order); the H HDPC rows are implied by
// p. row_input[r] is the input index holding row r's symbol, or kNoInput
// when it is zero (LDPC rows, padding ISIs). Inputs are numbered
// 0..num_inputs-1.
//
// Slot layout of the resulting plan: slot r for binary row r, then the H
// HDPC rows, then one scratch slot.
//
// The plan holds the recorded ops (PlanForm::kOps; Fuse() regroups them)
// or only their fused form (kFused: the same fused plan, without
// recording and regrouping 20-odd thousand ops at K = 1 000).
//
// Returns false, leaving *plan unspecified, when A has rank < L (more
// symbols are needed).
bool pi_solve(const SystematicParams& p, const SparseRows& rows,
              const std::vector<uint32_t>& row_input, uint32_t num_inputs,
              EncodingPlan* plan, SolverStats* stats,
              PlanForm form = PlanForm::kOps);

}  // namespace fec
}  // namespace rqcast

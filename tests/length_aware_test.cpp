// Length-aware steps: when the lengths are on the host (kCpu's sequence_length, or kCuda's
// host_sequence_length), the batch runs sorted by decreasing length, and each step's recurrent
// GEMMs, forward and backward, cover only the rows still running, since every ended row's GEMM rows
// are never read. Recorded here at the executor's gemm verb on the CPU path; that the results stay
// right is every reference and fixture test's job (they run with ragged lengths, and the GPU tests
// with workspaces full of NaN), and that the order changes no row's result, bit for bit, this file's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "call_buffers.h"
#include "faulty_executor.h"

namespace {

using dynrnn::CellSpec;
using dynrnn::Rnn;
using dynrnn::RnnSpec;
using testing_support::CallBuffers;
using testing_support::GemmCall;
using testing_support::Injection;

/// The rows whose length exceeds `step`, from the definition.
int64_t rows_running_at(const std::vector<int32_t>& len, int64_t B, int64_t step) {
  int64_t rows = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t l = len.empty() ? INT64_MAX : len[static_cast<size_t>(b)];
    if (l > step) ++rows;
  }
  return rows;
}

/// The recurrent matrices of a one-layer handle: the rows of each kernel that multiply the state
/// (GRU: gates and candidate), and the projection.
std::vector<const double*> recurrent_matrices(const Rnn& rnn, const double* w) {
  std::vector<const double*> r;
  const int64_t D = rnn.spec().input_size;
  for (const dynrnn::ParamInfo& p : rnn.params()) {
    if (p.local_name == "projection/kernel") r.push_back(w + p.offset);
    if (p.local_name == "kernel" || p.local_name == "gates/kernel" || p.local_name == "candidate/kernel") {
      r.push_back(w + p.offset + D * p.shape[1]);
    }
  }
  return r;
}

TEST(LengthAware, RecurrentGemmsCoverTheRunningRows) {
  CellSpec proj = CellSpec::lstm(4);
  proj.num_proj = 3;
  proj.use_peepholes = true;
  const int64_t T = 7, B = 5;
  const std::vector<std::vector<int32_t>> lengths = {
      {6, 4, 4, 1, 0},   // sorted: the running rows are a prefix
      {1, 6, 0, 4, 4},   // unsorted: run sorted
      {9, 2, -3, 0, 2},  // out of range: clamped to [0, T]
      {0, 0, 0, 0, 0},   // no row runs: one step (TF's loop bound), no GEMM row
      {},                // no sequence_length: every row runs every step
  };
  for (const CellSpec& cell :
       {CellSpec::basic_rnn(4), CellSpec::basic_lstm(4), proj, CellSpec::gru(4), CellSpec::gru_reset_after(4)}) {
    for (const std::vector<int32_t>& len : lengths) {
      RnnSpec spec;
      spec.cells_fw = {cell};
      spec.input_size = 3;
      spec.dtype = dynrnn::DataType::kFloat64;
      spec.parallel_iterations = 3;  // chunks of 3 steps: the per-step rows must follow the chunk offset
      std::unique_ptr<Rnn> rnn;
      ASSERT_TRUE(Rnn::create(spec, dynrnn::Backend::kCpu, &rnn).is_ok());
      CallBuffers<double> h(*rnn, T, B, /*time_major=*/false);
      h.set_sine_problem(*rnn);
      h.len = len;
      int64_t max_len = len.empty() ? T : 0;
      for (int32_t l : len) max_len = std::max<int64_t>(max_len, std::min<int64_t>(l, T));
      const int64_t steps = std::max<int64_t>(max_len, 1);
      std::vector<int64_t> want;
      for (int64_t s = 0; s < steps; ++s) want.push_back(rows_running_at(len, B, s));
      for (int64_t s = steps - 1; s >= 0; --s) want.push_back(rows_running_at(len, B, s));

      Injection<double> spy(*rnn, 0);
      ASSERT_TRUE(rnn->forward(h.forward_args()).is_ok());
      ASSERT_TRUE(rnn->backward(h.backward_args()).is_ok());
      for (const double* r : recurrent_matrices(*rnn, h.w.data())) {
        std::vector<int64_t> got;
        for (const GemmCall& g : spy.faulty().gemms()) {
          if (g.b == r) got.push_back(g.m);
        }
        EXPECT_EQ(got, want) << "cell kind " << static_cast<int>(cell.kind) << ", matrix at offset " << (r - h.w.data())
                             << ", " << len.size() << " lengths";
      }
    }
  }
}

}  // namespace

namespace {

/// v viewed as [outer, B, inner]: row k of the result is row perm[k] of v (to_order) or the other way.
template <typename T>
std::vector<T> permute(const std::vector<T>& v, int64_t outer, int64_t B, int64_t inner,
                       const std::vector<int32_t>& perm, bool to_order) {
  std::vector<T> r(v.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k = 0; k < B; ++k) {
      const int64_t a = (o * B + k) * inner, b = (o * B + perm[static_cast<size_t>(k)]) * inner;
      std::copy_n(v.begin() + (to_order ? b : a), inner, r.begin() + (to_order ? a : b));
    }
  }
  return r;
}

/// A flat state (leaves [B, width] one after another) with its rows permuted as permute() does.
template <typename T>
std::vector<T> permute_state(const Rnn& rnn, const std::vector<T>& v, int64_t B, const std::vector<int32_t>& perm,
                             bool to_order) {
  std::vector<T> r(v.size());
  for (const dynrnn::StateLeaf& leaf : rnn.state_layout()) {
    const std::vector<T> part(v.begin() + B * leaf.column_offset, v.begin() + B * (leaf.column_offset + leaf.width));
    const std::vector<T> moved = permute(part, 1, B, leaf.width, perm, to_order);
    std::copy(moved.begin(), moved.end(), r.begin() + B * leaf.column_offset);
  }
  return r;
}

}  // namespace

// A batch that runs sorted by length gives every row the result, bit for bit, that the same rows give
// when the caller sorts them (which runs them in the caller's order): outputs, final states, input
// and initial-state gradients. Weight gradients sum the rows in another order: equal to rounding.
TEST(LengthAware, SortingTheBatchChangesNoRowsResult) {
  CellSpec proj = CellSpec::lstm(4);
  proj.num_proj = 3;
  proj.use_peepholes = true;
  for (bool time_major : {false, true}) {
    SCOPED_TRACE(time_major ? "time-major" : "batch-major");
    RnnSpec spec;
    spec.cells_fw = {proj, CellSpec::gru(3), CellSpec::gru_reset_after(4)};
    spec.cells_bw = {CellSpec::gru_reset_after(3), CellSpec::basic_rnn(2)};
    spec.input_size = 3;
    spec.time_major = time_major;
    spec.dtype = dynrnn::DataType::kFloat64;
    spec.parallel_iterations = 3;
    std::unique_ptr<Rnn> rnn;
    ASSERT_TRUE(Rnn::create(spec, dynrnn::Backend::kCpu, &rnn).is_ok());
    const int64_t T = 7, B = 6;
    CallBuffers<double> a(*rnn, T, B, time_major);
    a.set_sine_problem(*rnn);
    a.len = {3, 7, 0, 5, 7, 1};
    const std::vector<int32_t> order = {1, 4, 3, 0, 5, 2};  // decreasing length, ties in batch order

    CallBuffers<double> b(*rnn, T, B, time_major);
    const int64_t outer = time_major ? T : 1, seq = time_major ? 1 : T;
    b.x = permute(a.x, outer, B, seq * spec.input_size, order, true);
    b.w = a.w;
    b.init = permute_state(*rnn, a.init, B, order, true);
    b.len = permute(a.len, 1, B, 1, order, true);
    b.dout = permute(a.dout, outer, B, seq * rnn->output_width(0), order, true);
    b.dout_bw = permute(a.dout_bw, outer, B, seq * rnn->output_width(1), order, true);
    b.dfin = permute_state(*rnn, a.dfin, B, order, true);
    for (CallBuffers<double>* c : {&a, &b}) {
      ASSERT_TRUE(rnn->forward(c->forward_args()).is_ok());
      ASSERT_TRUE(rnn->backward(c->backward_args()).is_ok());
    }
    EXPECT_EQ(a.out, permute(b.out, outer, B, seq * rnn->output_width(0), order, false));
    EXPECT_EQ(a.out_bw, permute(b.out_bw, outer, B, seq * rnn->output_width(1), order, false));
    EXPECT_EQ(a.fin, permute_state(*rnn, b.fin, B, order, false));
    EXPECT_EQ(a.dx, permute(b.dx, outer, B, seq * spec.input_size, order, false));
    EXPECT_EQ(a.dinit, permute_state(*rnn, b.dinit, B, order, false));
    ASSERT_EQ(a.dw.size(), b.dw.size());
    for (size_t i = 0; i < a.dw.size(); ++i) EXPECT_NEAR(a.dw[i], b.dw[i], 1e-12 * (1 + std::fabs(b.dw[i]))) << i;
  }
}

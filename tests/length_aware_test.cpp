// Length-aware steps: when the lengths are on the host (kCpu's sequence_length, or kCuda's
// host_sequence_length), each step's recurrent GEMMs, forward and backward, cover only the rows up
// to the last row still running, since every later row has ended and its GEMM rows are never read.
// A batch sorted by decreasing length thus shrinks them to the running rows exactly. Recorded here
// at the executor's gemm verb on the CPU path; that the results stay right is every reference and
// fixture test's job (they run with ragged lengths, and the GPU tests with workspaces full of NaN).
#include <gtest/gtest.h>

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

/// One past the last row whose length exceeds `step`, from the definition (0 when none does).
int64_t rows_running_at(const std::vector<int32_t>& len, int64_t B, int64_t step) {
  int64_t rows = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t l = len.empty() ? INT64_MAX : len[static_cast<size_t>(b)];
    if (l > step) rows = b + 1;
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

TEST(LengthAware, RecurrentGemmsStopAfterTheLastRunningRow) {
  CellSpec proj = CellSpec::lstm(4);
  proj.num_proj = 3;
  proj.use_peepholes = true;
  const int64_t T = 7, B = 5;
  const std::vector<std::vector<int32_t>> lengths = {
      {6, 4, 4, 1, 0},   // sorted: the running rows are a prefix
      {1, 6, 0, 4, 4},   // unsorted: a bound, reached when the last rows end
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

// Inputs that the fuzzer (tests/fuzz/) found to crash or to break an oracle, replayed through the
// public API. The raw fuzzer inputs are in tests/fuzz/crashes/ (run_fuzz.sh replays them first);
// tests/fuzz/RESULTS.md describes each finding.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>

#include "dynrnn/rnn.h"

namespace {

using dynrnn::Backend;
using dynrnn::CellSpec;
using dynrnn::RnnSpec;
using dynrnn::StatusCode;

// Finding 1 (tests/fuzz/crashes/param-count-overflow): build_model multiplied the kernel's rows by
// its columns and summed the parameter counts in unchecked int64. BasicLSTMCell(2^31 - 1) on
// input_size 1 has a kernel of 2^31 x (2^33 - 4) elements: signed-overflow UB (UBSan), and the
// wrapped param_count then sized every weight buffer. Each width is within the per-width bound, so
// only the product overflows. create must reject the spec, naming the layer.
TEST(Regression, ParamCountOverflowIsRejectedAtCreate) {
  struct Case {
    const char* what;
    RnnSpec spec;
  };
  Case cases[3];
  cases[0].what = "BasicLSTMCell(2^31 - 1), input_size 1 (the fuzzer's input)";
  cases[0].spec.cells_fw = {CellSpec::basic_lstm(INT32_MAX)};
  cases[0].spec.input_size = 1;
  cases[1].what = "GRUCell(2^33), input_size 2^33";
  cases[1].spec.cells_fw = {CellSpec::gru(int64_t(1) << 33)};
  cases[1].spec.input_size = int64_t(1) << 33;
  // Layer 0: 2^31 x (2^31 - 1) elements, layer 1: (2^32 - 2) x (2^31 - 1): each < 2^63, the sum is not.
  cases[2].what = "two BasicRNNCell(2^31 - 1) whose kernels fit separately but not together";
  cases[2].spec.cells_fw = {CellSpec::basic_rnn(INT32_MAX), CellSpec::basic_rnn(INT32_MAX)};
  cases[2].spec.input_size = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    std::unique_ptr<dynrnn::Rnn> rnn;
    const dynrnn::Status st = dynrnn::Rnn::create(c.spec, Backend::kCpu, &rnn);
    EXPECT_EQ(st.code(), StatusCode::kInvalidValue) << st.to_string();
    EXPECT_NE(st.message().find("spec.cells_fw["), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("64 bits"), std::string::npos) << st.message();
    if (rnn) {
      // What the handle reports must at least be consistent: a weight buffer of param_count()
      // elements must be addressable in bytes.
      EXPECT_GT(rnn->param_count(), 0);
      EXPECT_LE(rnn->param_count(), INT64_MAX / 8);
    }
  }
}

// Finding 2 (tests/fuzz/crashes/plan-width-overflow-*): make_plan formed T * B * width products
// (dz_x = T*B x gate width, chunk buffers K*B x width) with unchecked int64 multiplication before
// the checked carving; get_workspace_size(2^31, 2^31, true) on LSTMCell(7) and
// get_reserve_size(2^31 - 1, 2^31 - 1) on LSTMCell(1) are signed-overflow UB (UBSan: plan.cpp). The
// queries must fail cleanly with an overflow message. (Without UBSan these pass today: the overflow
// is UB whose result happens to be discarded; the fuzz build is what catches a regression.)
TEST(Regression, PlanSizeProductsAreChecked) {
  struct Case {
    int64_t units, T, B;
    bool reserve, training;
  };
  const Case cases[] = {{7, int64_t(1) << 31, int64_t(1) << 31, false, true},
                        {1, INT32_MAX, INT32_MAX, true, true},
                        {7, int64_t(1) << 31, int64_t(1) << 31, false, false},
                        {1, int64_t(1) << 61, 2, true, true}};
  for (const Case& c : cases) {
    SCOPED_TRACE("LSTMCell(" + std::to_string(c.units) + ") T=" + std::to_string(c.T) + " B=" + std::to_string(c.B) +
                 (c.reserve ? " get_reserve_size" : " get_workspace_size"));
    RnnSpec spec;
    spec.cells_fw = {CellSpec::lstm(c.units)};
    spec.input_size = c.units == 7 ? 1 : 2;
    std::unique_ptr<dynrnn::Rnn> rnn;
    ASSERT_TRUE(dynrnn::Rnn::create(spec, Backend::kCpu, &rnn).is_ok());
    size_t bytes = 0;
    const dynrnn::Status st =
        c.reserve ? rnn->get_reserve_size(c.T, c.B, &bytes) : rnn->get_workspace_size(c.T, c.B, c.training, &bytes);
    if (st.is_ok()) {
      // Inference with chunked steps may legitimately need little workspace; anything it reports
      // must then be a real, non-wrapped size.
      EXPECT_FALSE(c.training || c.reserve) << "a size that cannot be represented was reported: " << bytes;
      EXPECT_GT(bytes, 0u);
    } else {
      EXPECT_EQ(st.code(), StatusCode::kInvalidValue) << st.to_string();
      EXPECT_NE(st.message().find("overflow"), std::string::npos) << st.message();
    }
  }
}

}  // namespace

// Inputs that the fuzzer (tests/fuzz/) found to crash or to break an oracle, replayed through the
// public API. The raw fuzzer inputs are in tests/fuzz/crashes/ (run_fuzz.sh replays them first);
// tests/fuzz/RESULTS.md describes each finding.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "call_buffers.h"
#include "dynrnn/rnn.h"
#include "faulty_executor.h"

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

// Finding 3 (tests/fuzz/crashes/zero-batch-backward-walks-every-step): with batch 0 there is nothing
// to compute, and forward returns at once, but backward walked all ceil(T / parallel_iterations)
// chunks doing nothing: x_shape {0, 576460752323507718, 1} made backward run for ~10^16 iterations
// (the fuzzer's 10 s timeout; a denial of service from a zero-size input, as CVE-2020-26270 was).
// Backward must cost O(1) at B = 0 and still give the gradients of an empty batch: grad_weights
// exactly zero (when not accumulating).
TEST(Regression, ZeroBatchBackwardIsImmediate) {
  for (bool bidirectional : {false, true}) {
    SCOPED_TRACE(bidirectional ? "bidirectional" : "unidirectional");
    RnnSpec spec;
    spec.cells_fw = {CellSpec::lstm(2), CellSpec::gru(3)};
    if (bidirectional) spec.cells_bw = {CellSpec::basic_rnn(2)};
    spec.input_size = 1;
    std::unique_ptr<dynrnn::Rnn> rnn;
    ASSERT_TRUE(dynrnn::Rnn::create(spec, Backend::kCpu, &rnn).is_ok());
    // The executor verbs an empty batch issues, counted (not timed): the same for T = 8 and T = 2^23.
    int64_t verbs[2] = {0, 0};
    const int64_t lengths[2] = {8, int64_t(1) << 23};
    for (int i = 0; i < 2; ++i) {
      const int64_t T = lengths[i];
      size_t ws_bytes = 0, rs_bytes = 0;
      ASSERT_TRUE(rnn->get_workspace_size(T, 0, true, &ws_bytes).is_ok());
      ASSERT_TRUE(rnn->get_reserve_size(T, 0, &rs_bytes).is_ok());
      ASSERT_LE(ws_bytes + rs_bytes, size_t(1) << 20) << "a batch of 0 should need (almost) no memory";
      std::vector<char> ws(ws_bytes + 1), rs(rs_bytes + 1);
      std::vector<float> w(rnn->param_count(), 0.5f), dw(rnn->param_count(), NAN);
      float dummy[1] = {0.f};

      dynrnn::ForwardArgs f;
      f.x_shape[0] = 0;  // B
      f.x_shape[1] = T;
      f.x_shape[2] = 1;
      f.x = dummy;
      f.weights = w.data();
      f.workspace = ws.data();
      f.workspace_bytes = ws_bytes;
      f.training = true;
      f.reserve = rs.data();
      f.reserve_bytes = rs_bytes;
      dynrnn::BackwardArgs b;
      std::copy(f.x_shape, f.x_shape + 3, b.x_shape);
      b.x = dummy;
      b.weights = w.data();
      b.grad_weights = dw.data();
      b.workspace = ws.data();
      b.workspace_bytes = ws_bytes;
      b.reserve = rs.data();
      b.reserve_bytes = rs_bytes;
      testing_support::Injection<float> counter(*rnn, /*fail_at=*/0);
      ASSERT_TRUE(rnn->forward(f).is_ok());
      const dynrnn::Status st = rnn->backward(b);
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      verbs[i] = counter.faulty().calls();
      for (float g : dw) ASSERT_EQ(g, 0.f) << "grad_weights of an empty batch must be zero";
    }
    EXPECT_EQ(verbs[0], verbs[1]) << "an empty batch's forward and backward issue work that grows with T";
  }
}

// Finding 4 (tests/fuzz/crashes/swap-ring-of-zero-chunks): swap_memory with an
// activation_memory_budget smaller than one chunk and a sequence of a single chunk planned a device
// ring of 0 chunks: get_reserve_size said 0 bytes, and the training forward then wrote its chunk
// through a null ring base (UBSan: null pointer arithmetic in Orchestrator::slot; a segfault
// without it). The call must either be rejected (budget below one chunk) or run and give the
// results of swap_memory off. Run in a child process (a crash fails this test only).
TEST(Regression, SwapRingOfZeroChunksDoesNotCrash) {
  auto body = [] {
    for (int64_t T : {1, 3}) {
      for (size_t budget : {size_t(1), size_t(64)}) {
        RnnSpec spec;
        spec.cells_fw = {CellSpec::basic_lstm(1)};
        spec.input_size = 2;
        spec.time_major = true;
        spec.swap_memory = true;
        spec.activation_memory_budget = budget;
        spec.parallel_iterations = T == 1 ? 0 : 4;  // a single chunk either way
        RnnSpec plain = spec;
        plain.swap_memory = false;
        plain.activation_memory_budget = 0;
        std::vector<float> want, got;
        for (const RnnSpec* s : {&plain, &spec}) {
          std::unique_ptr<dynrnn::Rnn> rnn;
          if (!dynrnn::Rnn::create(*s, Backend::kCpu, &rnn).is_ok()) std::exit(3);
          const int64_t B = 2;
          size_t ws_bytes = 0, rs_bytes = 0;
          const dynrnn::Status q1 = rnn->get_workspace_size(T, B, true, &ws_bytes);
          const dynrnn::Status q2 = rnn->get_reserve_size(T, B, &rs_bytes);
          if (!q1.is_ok() || !q2.is_ok()) continue;  // rejected at the query: fine
          std::vector<char> ws(ws_bytes + 1), rs(rs_bytes + 1);
          std::vector<float> x(T * B * 2, 0.25f), w(rnn->param_count(), 0.5f), out(T * B, NAN), fin(B * 2, NAN);
          dynrnn::ForwardArgs f;
          f.x_shape[0] = T;
          f.x_shape[1] = B;
          f.x_shape[2] = 2;
          f.x = x.data();
          f.weights = w.data();
          f.outputs = out.data();
          f.final_state = fin.data();
          f.workspace = ws.data();
          f.workspace_bytes = ws_bytes;
          f.training = true;
          f.reserve = rs.data();
          f.reserve_bytes = rs_bytes;
          const dynrnn::Status st = rnn->forward(f);
          if (!st.is_ok()) {
            if (s == &plain) std::exit(4);
            continue;  // rejected: fine
          }
          (s == &plain ? want : got) = out;
        }
        if (!got.empty() && got != want) std::exit(5);
      }
    }
    std::exit(0);
  };
  EXPECT_EXIT(body(), ::testing::ExitedWithCode(0), "") << "exit 3: create failed, 4: plain forward failed, "
                                                           "5: swap_memory changed the outputs; a signal: a crash";
}

// Finding 5 (tests/fuzz/crashes/swap-event-id-overflow): make_plan numbers executor events in int and
// adds the device ring's chunk count to the running id. With swap_memory and a budget that admits
// more than 2^31 chunks (LSTMCell(1) + GRUCell(1), T = 3.3e16, B = 1, budget 5e17 bytes), the ids
// overflow int (UBSan: plan.cpp) and wrap negative; a GPU executor sizes its event pool from them.
// The query must fail cleanly or report a size whose plan has sane event ids; without UBSan this
// test can only check the status (the fuzz build catches the overflow itself).
TEST(Regression, SwapEventIdsDoNotOverflow) {
  RnnSpec spec;
  CellSpec lstm = CellSpec::lstm(1);
  lstm.use_peepholes = true;
  lstm.num_proj = 2;
  spec.cells_fw = {lstm, CellSpec::gru(1)};
  spec.input_size = 5;
  spec.time_major = true;
  spec.swap_memory = true;
  spec.activation_memory_budget = 504451536780012588ull;
  std::unique_ptr<dynrnn::Rnn> rnn;
  ASSERT_TRUE(dynrnn::Rnn::create(spec, Backend::kCpu, &rnn).is_ok());
  for (int64_t T : {int64_t(33049683151577087), int64_t(1) << 40, int64_t(1) << 45}) {
    size_t bytes = 0;
    const dynrnn::Status st = rnn->get_workspace_size(T, 1, true, &bytes);
    if (!st.is_ok()) {
      EXPECT_EQ(st.code(), StatusCode::kInvalidValue) << st.to_string();
      EXPECT_NE(st.message().find(std::to_string(T)), std::string::npos) << st.message();
    }
    size_t reserve = 0;
    const dynrnn::Status rs = rnn->get_reserve_size(T, 1, &reserve);
    if (rs.is_ok()) {
      EXPECT_LE(reserve, spec.activation_memory_budget) << "the device ring exceeds the budget";
    }
  }
}

// Finding 6 (tests/fuzz/crashes/chunk-count-overflow): make_plan counted chunks as (T + K - 1) / K,
// which overflows int64 when T is within parallel_iterations of INT64_MAX — a shape that passes the
// T * B check when B = 0 (UBSan: plan.cpp). An empty batch over any T must plan (or fail) cleanly.
TEST(Regression, ChunkCountOfHugeMaxTime) {
  RnnSpec spec;
  spec.cells_fw = {CellSpec::lstm(2), CellSpec::lstm(1)};
  spec.input_size = 1;
  spec.time_major = true;
  spec.swap_memory = true;
  std::unique_ptr<dynrnn::Rnn> rnn;
  ASSERT_TRUE(dynrnn::Rnn::create(spec, Backend::kCpu, &rnn).is_ok());
  for (int64_t T : {INT64_MAX, INT64_MAX - 1, INT64_MAX - 31}) {
    for (bool training : {false, true}) {
      size_t bytes = 0;
      const dynrnn::Status st = rnn->get_workspace_size(T, 0, training, &bytes);
      if (!st.is_ok()) {
        EXPECT_EQ(st.code(), StatusCode::kInvalidValue) << st.to_string();
      }
    }
  }
}

// Finding 8 (tests/fuzz/crashes/host-lengths-of-an-empty-batch-over-huge-max-time): the first
// version of length-aware steps tabulated the running rows of every step the call could run, T of
// them for an empty batch, and x_shape {T = 2^63 - 2, B = 0} with sequence_length set made a valid
// forward fail with "cannot create std::vector larger than max_size()" (it was never landed: the
// CI fuzz run of its commit found it). The running rows now take O(B) memory whatever T is.
TEST(Regression, HostLengthsOfAnEmptyBatchOverHugeMaxTime) {
  RnnSpec spec;
  spec.cells_fw = {CellSpec::lstm(2), CellSpec::lstm(2)};
  spec.input_size = 2;
  spec.time_major = true;
  spec.parallel_iterations = 65536;
  std::unique_ptr<dynrnn::Rnn> rnn;
  ASSERT_TRUE(dynrnn::Rnn::create(spec, Backend::kCpu, &rnn).is_ok());
  testing_support::CallBuffers<float> c(*rnn, /*T=*/INT64_MAX - 1, /*B=*/0, /*time_major=*/true);
  ASSERT_EQ(c.error, "");
  c.w.assign(static_cast<size_t>(rnn->param_count()), 0.5f);
  c.fill_results(NAN);
  int32_t no_lengths[1] = {0};  // sequence_length set, with B = 0 entries
  dynrnn::ForwardArgs f = c.forward_args();
  f.sequence_length = no_lengths;
  const dynrnn::Status st = rnn->forward(f);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  dynrnn::BackwardArgs b = c.backward_args();
  b.sequence_length = no_lengths;
  const dynrnn::Status bst = rnn->backward(b);
  ASSERT_TRUE(bst.is_ok()) << bst.to_string();
  for (float g : c.dw) ASSERT_EQ(g, 0.f);
}

}  // namespace

// Finding 7 (tests/fuzz/crashes/bf16-nan-state-through-length-0): with 16-bit storage an LSTM's
// cell state runs in float32, and the final state was narrowed from it; a row of length 0 whose
// initial c held a NaN with a sign or payload (0xffff) came back as the canonical NaN 0x7fff, not
// its initial state bit for bit. The initial-state gradient, narrowed from float32 dh and dc, had
// the same flaw. Both now copy such rows' bits through.
TEST(Regression, ZeroLengthRowsPassSixteenBitNaNsThroughBitForBit) {
  using dynrnn::bfloat16;
  RnnSpec spec;
  spec.cells_fw = {CellSpec::lstm(3), CellSpec::gru(2)};
  spec.cells_fw[0].use_peepholes = true;
  spec.input_size = 3;
  spec.dtype = dynrnn::DataType::kBFloat16;
  std::unique_ptr<dynrnn::Rnn> rnn;
  ASSERT_TRUE(dynrnn::Rnn::create(spec, Backend::kCpu, &rnn).is_ok());
  testing_support::CallBuffers<bfloat16> c(*rnn, /*T=*/3, /*B=*/3, false);
  c.set_sine_problem(*rnn);
  c.len = {2, 0, 3};
  const uint16_t patterns[] = {0xffff, 0xffc1, 0x7fc5, 0x7f81};  // NaNs, none canonical
  for (const dynrnn::StateLeaf& leaf : rnn->state_layout()) {
    for (int64_t j = 0; j < leaf.width; ++j) {
      const size_t at = static_cast<size_t>(3 * leaf.column_offset + 1 * leaf.width + j);  // row 1
      std::memcpy(&c.init[at], &patterns[j % 4], 2);
      std::memcpy(&c.dfin[at], &patterns[(j + 1) % 4], 2);
    }
  }
  ASSERT_TRUE(rnn->forward(c.forward_args()).is_ok());
  ASSERT_TRUE(rnn->backward(c.backward_args()).is_ok());
  for (const dynrnn::StateLeaf& leaf : rnn->state_layout()) {
    const size_t at = static_cast<size_t>(3 * leaf.column_offset + 1 * leaf.width);
    const size_t bytes = static_cast<size_t>(leaf.width) * 2;
    EXPECT_EQ(std::memcmp(&c.fin[at], &c.init[at], bytes), 0) << leaf.name << ": final state of the length-0 row";
    EXPECT_EQ(std::memcmp(&c.dinit[at], &c.dfin[at], bytes), 0)
        << leaf.name << ": initial-state gradient of the length-0 row";
  }
}

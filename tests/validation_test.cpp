// Bad input gets a status naming the argument and its value, and nothing runs (outputs untouched).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "call_buffers.h"
#include "dynrnn/rnn.h"

namespace {

using dynrnn::Backend;
using dynrnn::CellSpec;
using dynrnn::RnnSpec;
using dynrnn::StatusCode;

void expect_error(const dynrnn::Status& st, StatusCode code, const std::string& needle) {
  EXPECT_EQ(st.code(), code) << st.to_string();
  EXPECT_NE(st.message().find(needle), std::string::npos)
      << "message '" << st.message() << "' lacks '" << needle << "'";
}

dynrnn::Status create(const RnnSpec& spec) {
  std::unique_ptr<dynrnn::Rnn> rnn;
  return dynrnn::Rnn::create(spec, Backend::kCpu, &rnn);
}

RnnSpec lstm_spec() {
  RnnSpec s;
  s.cells_fw = {CellSpec::lstm(3)};
  s.input_size = 2;
  return s;
}

TEST(Validation, SpecRules) {
  RnnSpec s = lstm_spec();
  s.cells_fw.clear();
  expect_error(create(s), StatusCode::kInvalidValue, "at least one cell");
  s = lstm_spec();
  s.cells_fw[0].num_units = 0;
  expect_error(create(s), StatusCode::kInvalidValue, "spec.cells_fw[0].num_units is 0");
  s = lstm_spec();
  s.cells_fw[0].kind = static_cast<dynrnn::CellKind>(9);
  expect_error(create(s), StatusCode::kInvalidValue, "spec.cells_fw[0].kind is 9");
  s = lstm_spec();
  s.cells_fw[0].activation = static_cast<dynrnn::Activation>(5);
  expect_error(create(s), StatusCode::kInvalidValue, "activation is 5");
  s = lstm_spec();
  s.cells_fw[0].cell_clip = -0.5;
  expect_error(create(s), StatusCode::kInvalidValue, "cell_clip is -0.5");
  s = lstm_spec();
  s.cells_fw[0].num_proj = -2;
  expect_error(create(s), StatusCode::kInvalidValue, "num_proj is -2");
  s = lstm_spec();
  s.cells_fw[0].proj_clip = 1.0;
  expect_error(create(s), StatusCode::kInvalidValue, "proj_clip is 1 but num_proj is 0");
  s = lstm_spec();
  s.cells_fw[0].num_proj = 2;
  s.cells_fw[0].proj_clip = -1.0;
  expect_error(create(s), StatusCode::kInvalidValue, "proj_clip is -1");
  s = lstm_spec();
  s.cells_bw = {CellSpec::gru(4)};
  s.cells_bw[0].use_peepholes = true;
  expect_error(create(s), StatusCode::kInvalidValue, "spec.cells_bw[0].use_peepholes is true");
  s = lstm_spec();
  s.cells_fw[0] = CellSpec::basic_rnn(3);
  s.cells_fw[0].forget_bias = 0.0;
  expect_error(create(s), StatusCode::kInvalidValue, "spec.cells_fw[0].forget_bias is 0");
  s = lstm_spec();
  s.input_size = 0;
  expect_error(create(s), StatusCode::kInvalidValue, "spec.input_size is 0");
  s = lstm_spec();
  s.parallel_iterations = -1;
  expect_error(create(s), StatusCode::kInvalidValue, "parallel_iterations is -1");
  s = lstm_spec();
  s.dtype = static_cast<dynrnn::DataType>(7);
  expect_error(create(s), StatusCode::kNotSupported, "spec.dtype is 7");
  std::unique_ptr<dynrnn::Rnn> rnn;
  expect_error(dynrnn::Rnn::create(lstm_spec(), static_cast<Backend>(3), &rnn), StatusCode::kInvalidValue,
               "backend is 3");
  expect_error(dynrnn::Rnn::create(lstm_spec(), Backend::kCpu, nullptr), StatusCode::kInvalidValue, "out is null");
}

/// The handle of a Call, created before its buffers.
struct Handle {
  std::unique_ptr<dynrnn::Rnn> rnn;
  explicit Handle(bool bidirectional) {
    RnnSpec s = lstm_spec();
    if (bidirectional) s.cells_bw = {CellSpec::gru(2)};
    EXPECT_TRUE(dynrnn::Rnn::create(s, Backend::kCpu, &rnn).is_ok());
  }
};

/// A valid forward call on a small (bidirectional, if asked) RNN with NaN-poisoned outputs.
struct Call : Handle, testing_support::CallBuffers<float> {
  dynrnn::ForwardArgs a;

  explicit Call(bool bidirectional) : Handle(bidirectional), CallBuffers(*rnn, /*T=*/3, /*B=*/2, false) {
    EXPECT_TRUE(ok()) << error;
    x.assign(T_ * B * D, 0.5f);
    w.assign(rnn->param_count(), 0.1f);
    for (std::vector<float>* v : {&out, &out_bw, &fin}) v->assign(v->size(), NAN);
    len = {2, 3};
    a = forward_args();  // no initial state
  }
  bool untouched() const {
    for (float v : out) {
      if (!std::isnan(v)) return false;
    }
    for (float v : fin) {
      if (!std::isnan(v)) return false;
    }
    return true;
  }
};

TEST(Validation, ForwardArguments) {
  {
    Call c(false);
    ASSERT_TRUE(c.rnn->forward(c.a).is_ok());  // the baseline call is valid
    EXPECT_FALSE(c.untouched());
  }
  struct Case {
    const char* what;
    void (*mutate)(Call&);
    StatusCode code;
    const char* needle;
  };
  const Case cases[] = {
      {"null x", [](Call& c) { c.a.x = nullptr; }, StatusCode::kInvalidValue, "x is null"},
      {"negative shape", [](Call& c) { c.a.x_shape[1] = -4; }, StatusCode::kInvalidValue, "x_shape[1] is -4"},
      {"depth mismatch", [](Call& c) { c.a.x_shape[2] = 5; }, StatusCode::kInvalidValue,
       "x_shape[2] (the depth of inputs) is 5 but spec.input_size is 2"},
      {"lengths of wrong size", [](Call& c) { c.a.sequence_length_size = 3; }, StatusCode::kInvalidValue,
       "sequence_length_size is 3 but the batch size is 2"},
      {"size without lengths", [](Call& c) { c.a.sequence_length = nullptr; }, StatusCode::kInvalidValue,
       "sequence_length is null but sequence_length_size is 2"},
      {"null weights", [](Call& c) { c.a.weights = nullptr; }, StatusCode::kInvalidValue, "weights is null"},
      {"null outputs", [](Call& c) { c.a.outputs = nullptr; }, StatusCode::kInvalidValue, "outputs is null"},
      {"outputs_bw on unidirectional",
       [](Call& c) {
         c.dx.assign(4, 0.f);
         c.a.outputs_bw = c.dx.data();
       },
       StatusCode::kInvalidValue, "outputs_bw is set but the RNN is unidirectional"},
      {"workspace too small", [](Call& c) { c.a.workspace_bytes -= 1; }, StatusCode::kWorkspaceTooSmall,
       "workspace_bytes is"},
      {"null workspace", [](Call& c) { c.a.workspace = nullptr; }, StatusCode::kInvalidValue, "workspace is null"},
      {"reserve too small", [](Call& c) { c.a.reserve_bytes = 16; }, StatusCode::kWorkspaceTooSmall,
       "reserve_bytes is 16"},
      {"reserve without training", [](Call& c) { c.a.training = false; }, StatusCode::kInvalidValue,
       "reserve is set but training is false"},
      {"training without reserve", [](Call& c) { c.a.reserve = nullptr; }, StatusCode::kInvalidValue,
       "reserve is null but training is true"},
      {"outputs alias x", [](Call& c) { c.a.x = c.out.data(); }, StatusCode::kInvalidValue, "outputs overlaps x"},
      {"final state aliases outputs", [](Call& c) { c.a.final_state = c.out.data() + 1; }, StatusCode::kInvalidValue,
       "outputs overlaps final_state"},
      {"workspace aliases weights", [](Call& c) { c.a.weights = c.ws.data(); }, StatusCode::kInvalidValue,
       "workspace overlaps weights"},
      {"size overflow",
       [](Call& c) {
         c.a.x_shape[0] = int64_t(1) << 40;
         c.a.x_shape[1] = int64_t(1) << 40;
       },
       StatusCode::kInvalidValue, "overflows 64 bits"},
  };
  for (const Case& k : cases) {
    Call c(false);
    k.mutate(c);
    SCOPED_TRACE(k.what);
    expect_error(c.rnn->forward(c.a), k.code, k.needle);
    EXPECT_TRUE(c.untouched()) << "a rejected call wrote its outputs";
  }
}

TEST(Validation, BidirectionalLengthsFollowReverseSequence) {
  for (int32_t bad : {-1, 4}) {
    Call c(true);
    c.len[1] = bad;
    const std::string needle = "sequence_length[1] is " + std::to_string(bad);
    expect_error(c.rnn->forward(c.a), StatusCode::kInvalidValue, needle);
    EXPECT_TRUE(c.untouched());
  }
  Call c(true);
  c.a.outputs_bw = nullptr;
  expect_error(c.rnn->forward(c.a), StatusCode::kInvalidValue, "outputs_bw is null");
  // Unidirectional dynamic_rnn clamps the same values silently, as TF does.
  Call u(false);
  u.len = {-1, 4};
  EXPECT_TRUE(u.rnn->forward(u.a).is_ok());
}

TEST(Validation, BackwardArguments) {
  Call c(false);
  ASSERT_TRUE(c.rnn->forward(c.a).is_ok());
  c.dx.assign(c.x.size(), NAN);
  c.dw.assign(c.w.size(), NAN);
  // No initial state or its gradients; the forward's outputs serve as upstream gradients.
  dynrnn::BackwardArgs b = c.backward_args();
  b.grad_outputs = c.out.data();
  b.grad_initial_state = nullptr;
  dynrnn::BackwardArgs k = b;
  k.reserve = nullptr;
  expect_error(c.rnn->backward(k), StatusCode::kInvalidValue, "reserve is null");
  k = b;
  k.reserve_bytes = 8;
  expect_error(c.rnn->backward(k), StatusCode::kWorkspaceTooSmall, "reserve_bytes is 8");
  k = b;
  k.grad_inputs = const_cast<float*>(c.x.data());
  expect_error(c.rnn->backward(k), StatusCode::kInvalidValue, "grad_inputs overlaps x");
  k = b;
  k.grad_weights = reinterpret_cast<float*>(c.rs.data());
  expect_error(c.rnn->backward(k), StatusCode::kInvalidValue, "grad_weights overlaps reserve");
  k = b;
  k.grad_outputs_bw = c.out.data();
  expect_error(c.rnn->backward(k), StatusCode::kInvalidValue, "grad_outputs_bw is set");
  for (float v : c.dx) EXPECT_TRUE(std::isnan(v)) << "a rejected backward wrote grad_inputs";
  EXPECT_TRUE(c.rnn->backward(b).is_ok());
}

// The lengths visible on the host (sequence_length on the CPU backend, host_sequence_length on the
// GPU) decide how many steps run: min(T, max length), here 2 of 3. A backward that would run another
// number of steps than the training forward that filled its reserve would read activations never
// written, so it is rejected, both ways, before anything runs.
// BackwardArgs::of carries every input, the workspace and the reserves of the forward, and nothing else.
TEST(Validation, BackwardArgsOfAForward) {
  char mem[16];
  int32_t lengths[2];
  dynrnn::ForwardArgs f;
  f.x_shape[0] = 2, f.x_shape[1] = 7, f.x_shape[2] = 3;
  f.x = mem;
  f.sequence_length = lengths;
  f.sequence_length_size = 2;
  f.host_sequence_length = lengths + 1;
  f.initial_state = mem + 1;
  f.weights = mem + 2;
  f.outputs = mem + 3;
  f.outputs_bw = mem + 4;
  f.final_state = mem + 5;
  f.workspace = mem + 6, f.workspace_bytes = 11;
  f.training = true;
  f.reserve = mem + 7, f.reserve_bytes = 12;
  f.host_reserve = mem + 8, f.host_reserve_bytes = 13;
  const dynrnn::BackwardArgs b = dynrnn::BackwardArgs::of(f);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(b.x_shape[i], f.x_shape[i]);
  EXPECT_EQ(b.x, f.x);
  EXPECT_EQ(b.sequence_length, f.sequence_length);
  EXPECT_EQ(b.sequence_length_size, 2);
  EXPECT_EQ(b.host_sequence_length, f.host_sequence_length);
  EXPECT_EQ(b.initial_state, f.initial_state);
  EXPECT_EQ(b.weights, f.weights);
  EXPECT_EQ(b.workspace, f.workspace);
  EXPECT_EQ(b.workspace_bytes, 11u);
  EXPECT_EQ(b.reserve, f.reserve);
  EXPECT_EQ(b.reserve_bytes, 12u);
  EXPECT_EQ(b.host_reserve, f.host_reserve);
  EXPECT_EQ(b.host_reserve_bytes, 13u);
  for (const void* p : {b.grad_outputs, b.grad_outputs_bw, b.grad_final_state, static_cast<const void*>(b.grad_inputs),
                        static_cast<const void*>(b.grad_initial_state), static_cast<const void*>(b.grad_weights)}) {
    EXPECT_EQ(p, nullptr);
  }
  EXPECT_FALSE(b.accumulate_grad_weights);
}

TEST(Validation, BackwardRunsTheStepsOfItsForward) {
  Call c(false);
  c.len = {2, 1};
  dynrnn::ForwardArgs f = c.forward_args();
  ASSERT_TRUE(c.rnn->forward(f).is_ok());
  c.dx.assign(c.x.size(), NAN);
  dynrnn::BackwardArgs b = c.backward_args();
  b.grad_outputs = c.out.data();
  b.grad_initial_state = nullptr;
  c.len = {3, 1};  // changed between the calls: backward would run 3 steps
  expect_error(c.rnn->backward(b), StatusCode::kInvalidValue,
               "sequence_length / host_sequence_length: this backward runs 3 steps but the training forward that "
               "filled this reserve ran 2");
  for (float v : c.dx) ASSERT_TRUE(std::isnan(v)) << "a rejected backward wrote grad_inputs";
  c.len = {2, 1};
  EXPECT_TRUE(c.rnn->backward(b).is_ok());
  // A later forward into the same reserve replaces what the handle remembers.
  c.len = {3, 1};
  ASSERT_TRUE(c.rnn->forward(f).is_ok());
  EXPECT_TRUE(c.rnn->backward(b).is_ok());
  c.len = {1, 1};
  expect_error(c.rnn->backward(b), StatusCode::kInvalidValue, "runs 1 steps but the training forward");
}

TEST(Validation, SizeQueries) {
  std::unique_ptr<dynrnn::Rnn> rnn;
  ASSERT_TRUE(dynrnn::Rnn::create(lstm_spec(), Backend::kCpu, &rnn).is_ok());
  size_t bytes = 0;
  expect_error(rnn->get_workspace_size(-1, 2, false, &bytes), StatusCode::kInvalidValue, "max_time is -1");
  expect_error(rnn->get_reserve_size(3, 2, nullptr), StatusCode::kInvalidValue, "bytes is null");
  expect_error(rnn->get_reserve_size(int64_t(1) << 40, int64_t(1) << 30, &bytes), StatusCode::kInvalidValue,
               "overflows 64 bits");
  // Sizes past 2^31 elements are computed, not wrapped.
  ASSERT_TRUE(rnn->get_reserve_size(int64_t(1) << 20, int64_t(1) << 12, &bytes).is_ok());
  EXPECT_GT(bytes, size_t(1) << 32);
}

}  // namespace

// Error messages: every rejection names the argument, its value and what was expected.
//
// A table of invalid inputs — every RnnSpec and CellSpec field, Rnn::create's arguments, the size
// queries, every ForwardArgs and BackwardArgs pointer and count, and the weight conversions — each
// with the status code and three fragments its message must contain: the argument (with its index
// where it has one), the offending value, and the expectation. tests/validation_test.cpp checks that
// each rule fires and that nothing is written; this file checks what the message says.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "call_buffers.h"
#include "dynrnn/rnn.h"
#include "dynrnn/weights.h"

namespace {

using dynrnn::Backend;
using dynrnn::CellKind;
using dynrnn::CellSpec;
using dynrnn::RnnSpec;
using dynrnn::Status;
using dynrnn::StatusCode;

struct Expect {
  StatusCode code;
  std::string argument, value, expectation;
};

void check_message(const std::string& what, const Status& st, const Expect& e) {
  SCOPED_TRACE(what);
  EXPECT_EQ(st.code(), e.code) << st.to_string();
  const std::string& m = st.message();
  EXPECT_NE(m.find(e.argument), std::string::npos)
      << "message '" << m << "' does not name the argument '" << e.argument << "'";
  EXPECT_NE(m.find(e.value), std::string::npos) << "message '" << m << "' does not give the value '" << e.value << "'";
  EXPECT_NE(m.find(e.expectation), std::string::npos)
      << "message '" << m << "' does not state the expectation '" << e.expectation << "'";
}

/// A valid two-layer forward stack [LSTM(3), GRU(4)] on depth 2; bidirectional adds [BasicRNN(2)].
RnnSpec base_spec(bool bidirectional = false) {
  RnnSpec s;
  s.cells_fw = {CellSpec::lstm(3), CellSpec::gru(4)};
  if (bidirectional) s.cells_bw = {CellSpec::basic_rnn(2)};
  s.input_size = 2;
  return s;
}

Status create(const RnnSpec& spec) {
  std::unique_ptr<dynrnn::Rnn> rnn;
  return dynrnn::Rnn::create(spec, Backend::kCpu, &rnn);
}

struct SpecCase {
  const char* what;
  std::function<void(RnnSpec&)> mutate;
  Expect expect;
};

TEST(Messages, EverySpecField) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const SpecCase cases[] = {
      {"cells_fw empty",
       [](RnnSpec& s) { s.cells_fw.clear(); },
       {StatusCode::kInvalidValue, "spec.cells_fw", "empty", "at least one cell"}},
      {"kind",
       [](RnnSpec& s) { s.cells_fw[1].kind = static_cast<CellKind>(-1); },
       {StatusCode::kInvalidValue, "spec.cells_fw[1].kind", "is -1", "expected a CellKind"}},
      {"kind in the backward stack",
       [](RnnSpec& s) { s.cells_bw[0].kind = static_cast<CellKind>(5); },
       {StatusCode::kInvalidValue, "spec.cells_bw[0].kind", "is 5", "expected a CellKind"}},
      {"num_units negative",
       [](RnnSpec& s) { s.cells_fw[1].num_units = -3; },
       {StatusCode::kInvalidValue, "spec.cells_fw[1].num_units", "is -3", "expected > 0"}},
      {"num_units in the backward stack",
       [](RnnSpec& s) { s.cells_bw[0].num_units = 0; },
       {StatusCode::kInvalidValue, "spec.cells_bw[0].num_units", "is 0", "expected > 0"}},
      {"num_units too large",
       [](RnnSpec& s) { s.cells_fw[0].num_units = int64_t(1) << 60; },
       {StatusCode::kInvalidValue, "spec.cells_fw[0].num_units", std::to_string(int64_t(1) << 60), "expected"}},
      {"activation",
       [](RnnSpec& s) { s.cells_fw[1].activation = static_cast<dynrnn::Activation>(2); },
       {StatusCode::kInvalidValue, "spec.cells_fw[1].activation", "is 2", "expected kTanh (0) or kRelu (1)"}},
      {"forget_bias NaN",
       [nan](RnnSpec& s) { s.cells_fw[0].forget_bias = nan; },
       {StatusCode::kInvalidValue, "spec.cells_fw[0].forget_bias", "nan", "finite"}},
      {"forget_bias infinite",
       [inf](RnnSpec& s) { s.cells_fw[0].forget_bias = -inf; },
       {StatusCode::kInvalidValue, "spec.cells_fw[0].forget_bias", "inf", "finite"}},
      {"forget_bias on a GRU",
       [](RnnSpec& s) { s.cells_fw[1].forget_bias = 0.5; },
       {StatusCode::kInvalidValue, "spec.cells_fw[1].forget_bias", "0.5", "only LSTM cells"}},
      {"use_peepholes on a BasicLSTMCell",
       [](RnnSpec& s) {
         s.cells_fw[0] = CellSpec::basic_lstm(3);
         s.cells_fw[0].use_peepholes = true;
       },
       {StatusCode::kInvalidValue, "spec.cells_fw[0].use_peepholes", "true", "only for CellKind::kLSTM"}},
      {"cell_clip on a GRU",
       [](RnnSpec& s) { s.cells_fw[1].cell_clip = 1.0; },
       {StatusCode::kInvalidValue, "spec.cells_fw[1].cell_clip", "1", "only for CellKind::kLSTM"}},
      {"num_proj on a BasicRNNCell",
       [](RnnSpec& s) { s.cells_bw[0].num_proj = 2; },
       {StatusCode::kInvalidValue, "spec.cells_bw[0].num_proj", "2", "only for CellKind::kLSTM"}},
      {"cell_clip negative",
       [](RnnSpec& s) { s.cells_fw[0].cell_clip = -0.25; },
       {StatusCode::kInvalidValue, "spec.cells_fw[0].cell_clip", "-0.25", "expected a finite value >= 0"}},
      {"cell_clip NaN",
       [nan](RnnSpec& s) { s.cells_fw[0].cell_clip = nan; },
       {StatusCode::kInvalidValue, "spec.cells_fw[0].cell_clip", "nan", "expected a finite value >= 0"}},
      {"num_proj negative",
       [](RnnSpec& s) { s.cells_fw[0].num_proj = -7; },
       {StatusCode::kInvalidValue, "spec.cells_fw[0].num_proj", "is -7", "expected >= 0"}},
      {"num_proj too large",
       [](RnnSpec& s) { s.cells_fw[0].num_proj = int64_t(1) << 50; },
       {StatusCode::kInvalidValue, "spec.cells_fw[0]", std::to_string(int64_t(1) << 50), "expected"}},
      {"proj_clip without num_proj",
       [](RnnSpec& s) { s.cells_fw[0].proj_clip = 0.5; },
       {StatusCode::kInvalidValue, "spec.cells_fw[0].proj_clip", "num_proj is 0", "no projection"}},
      {"proj_clip negative",
       [](RnnSpec& s) {
         s.cells_fw[0].num_proj = 2;
         s.cells_fw[0].proj_clip = -3.0;
       },
       {StatusCode::kInvalidValue, "spec.cells_fw[0].proj_clip", "-3", "expected a finite value >= 0"}},
      {"proj_clip infinite",
       [inf](RnnSpec& s) {
         s.cells_fw[0].num_proj = 2;
         s.cells_fw[0].proj_clip = inf;
       },
       {StatusCode::kInvalidValue, "spec.cells_fw[0].proj_clip", "inf", "expected a finite value >= 0"}},
      {"residual with unequal input and output widths",
       [](RnnSpec& s) { s.cells_fw[1].residual = true; },  // GRU(4) over LSTM(3): input width 3, output 4
       {StatusCode::kInvalidValue, "spec.cells_fw[1].residual", "is true", "input width"}},
      {"input_keep_prob zero",
       [](RnnSpec& s) { s.cells_fw[0].input_keep_prob = 0.0; },
       {StatusCode::kInvalidValue, "spec.cells_fw[0].input_keep_prob", "is 0", "probability in (0, 1]"}},
      {"output_keep_prob above one",
       [](RnnSpec& s) { s.cells_bw[0].output_keep_prob = 1.5; },
       {StatusCode::kInvalidValue, "spec.cells_bw[0].output_keep_prob", "is 1.5", "probability in (0, 1]"}},
      {"state_keep_prob tiny",
       [](RnnSpec& s) { s.cells_fw[0].state_keep_prob = 1e-60; },
       {StatusCode::kInvalidValue, "spec.cells_fw[0].state_keep_prob", "1e-60", "above 0 in float32"}},
      {"output_keep_prob NaN",
       [nan](RnnSpec& s) { s.cells_fw[1].output_keep_prob = nan; },
       {StatusCode::kInvalidValue, "spec.cells_fw[1].output_keep_prob", "nan", "probability in (0, 1]"}},
      {"input_size zero",
       [](RnnSpec& s) { s.input_size = 0; },
       {StatusCode::kInvalidValue, "spec.input_size", "is 0", "expected > 0"}},
      {"input_size negative",
       [](RnnSpec& s) { s.input_size = -5; },
       {StatusCode::kInvalidValue, "spec.input_size", "is -5", "expected > 0"}},
      {"input_size too large",
       [](RnnSpec& s) { s.input_size = int64_t(1) << 62; },
       {StatusCode::kInvalidValue, "input_size", std::to_string(int64_t(1) << 62), "expected"}},
      {"dtype",
       [](RnnSpec& s) { s.dtype = static_cast<dynrnn::DataType>(4); },
       {StatusCode::kNotSupported, "spec.dtype", "is 4", "kFloat32 (0), kFloat64 (1), kBFloat16 (2), kFloat16 (3)"}},
      {"math",
       [](RnnSpec& s) { s.math = static_cast<dynrnn::MathMode>(-1); },
       {StatusCode::kInvalidValue, "spec.math", "is -1", "expected kDefault (0) or kTF32 (1)"}},
      {"algorithm",
       [](RnnSpec& s) { s.algorithm = static_cast<dynrnn::RecurrentAlgorithm>(7); },
       {StatusCode::kInvalidValue, "spec.algorithm", "is 7", "expected kStandard (0) or kPersistent (1)"}},
      {"parallel_iterations",
       [](RnnSpec& s) { s.parallel_iterations = -32; },
       {StatusCode::kInvalidValue, "spec.parallel_iterations", "is -32", "0 means the default"}},
      {"stack_bidirectional with stacks of different depths",
       [](RnnSpec& s) { s.stack_bidirectional = true; },
       {StatusCode::kInvalidValue, "spec.stack_bidirectional", "cells_fw has 2 cells and spec.cells_bw 1",
        "same depth"}},
      {"stack_bidirectional without a backward stack",
       [](RnnSpec& s) {
         s.cells_bw.clear();
         s.stack_bidirectional = true;
       },
       {StatusCode::kInvalidValue, "spec.stack_bidirectional", "spec.cells_bw 0", "same depth"}},
  };
  for (const SpecCase& c : cases) {
    RnnSpec s = base_spec(/*bidirectional=*/true);
    c.mutate(s);
    check_message(c.what, create(s), c.expect);
  }
}

TEST(Messages, CreateAndSizeQueries) {
  std::unique_ptr<dynrnn::Rnn> rnn;
  check_message("backend", dynrnn::Rnn::create(base_spec(), static_cast<Backend>(-2), &rnn),
                {StatusCode::kInvalidValue, "backend", "is -2", "expected kCpu (0) or kCuda (1)"});
  check_message("out", dynrnn::Rnn::create(base_spec(), Backend::kCpu, nullptr),
                {StatusCode::kInvalidValue, "out", "null", "expected"});
  ASSERT_TRUE(dynrnn::Rnn::create(base_spec(), Backend::kCpu, &rnn).is_ok());
  size_t bytes = 0;
  check_message("workspace: bytes", rnn->get_workspace_size(4, 2, true, nullptr),
                {StatusCode::kInvalidValue, "bytes", "null", "expected"});
  check_message("reserve: bytes", rnn->get_reserve_size(4, 2, nullptr),
                {StatusCode::kInvalidValue, "bytes", "null", "expected"});
  check_message("workspace: batch", rnn->get_workspace_size(4, -9, false, &bytes),
                {StatusCode::kInvalidValue, "batch", "is -9", "expected both >= 0"});
  check_message("reserve: max_time", rnn->get_reserve_size(-1, 2, &bytes),
                {StatusCode::kInvalidValue, "max_time", "is -1", "expected both >= 0"});
  const int64_t big = int64_t(1) << 40;
  check_message("workspace: T * B overflow", rnn->get_workspace_size(big, big, false, &bytes),
                {StatusCode::kInvalidValue, "max_time * batch", std::to_string(big), "overflows 64 bits"});
  check_message("reserve: size overflow", rnn->get_reserve_size(big, int64_t(1) << 21, &bytes),
                {StatusCode::kInvalidValue, "max_time = " + std::to_string(big), "batch = 2097152", "overflow"});
}

TEST(Messages, StackBidirectionalOutputs) {
  // Both directions' outputs (and their gradients) are one buffer: the size names both widths.
  RnnSpec s = base_spec(/*bidirectional=*/true);
  s.cells_bw.push_back(CellSpec::basic_lstm(5));
  s.stack_bidirectional = true;
  std::unique_ptr<dynrnn::Rnn> rnn;
  ASSERT_TRUE(dynrnn::Rnn::create(s, Backend::kCpu, &rnn).is_ok());
  testing_support::CallBuffers<float> c(*rnn, /*T=*/3, /*B=*/2, false);
  ASSERT_EQ(c.out.size(), 3u * 2u * (4u + 5u));
  c.x.assign(3 * 2 * 2, 0.5f);
  c.w.assign(rnn->param_count(), 0.1f);
  c.dout = c.out;
  std::vector<float> other(c.out.size());
  dynrnn::ForwardArgs f = c.forward_args();
  f.outputs = nullptr;
  check_message("outputs null", rnn->forward(f),
                {StatusCode::kInvalidValue, "outputs", "null", std::to_string(3 * 2 * 9 * 4) + " bytes"});
  f = c.forward_args();
  f.outputs_bw = other.data();
  check_message("outputs_bw set", rnn->forward(f),
                {StatusCode::kInvalidValue, "outputs_bw", "is set", "concatenated in outputs"});
  dynrnn::BackwardArgs b = c.backward_args();
  b.grad_outputs_bw = other.data();
  check_message("grad_outputs_bw set", rnn->backward(b),
                {StatusCode::kInvalidValue, "grad_outputs_bw", "is set", "concatenated in grad_outputs"});
}

/// The handle of a Bufs, created before its buffers.
struct Handle {
  std::unique_ptr<dynrnn::Rnn> rnn;
  explicit Handle(bool bidirectional) {
    EXPECT_TRUE(dynrnn::Rnn::create(base_spec(bidirectional), Backend::kCpu, &rnn).is_ok());
  }
};

/// Buffers of one valid forward + backward; each case breaks one thing.
struct Bufs : Handle, testing_support::CallBuffers<float> {
  dynrnn::ForwardArgs f;
  dynrnn::BackwardArgs b;

  explicit Bufs(bool bidirectional) : Handle(bidirectional), CallBuffers(*rnn, /*T=*/3, /*B=*/2, false) {
    EXPECT_TRUE(ok()) << error;
    x.assign(T_ * B * 2, 0.5f);
    w.assign(rnn->param_count(), 0.1f);
    init = dfin = fin;
    dout = out;
    dout_bw = out_bw;
    dx = x;
    dw = w;
    len = {3, 1};
    f = forward_args();
    b = backward_args();
  }
  std::string ws_bytes() const { return std::to_string(ws.size()); }
  std::string rs_bytes() const { return std::to_string(rs.size()); }
};

struct CallCase {
  const char* what;
  bool bidirectional;
  std::function<void(Bufs&)> mutate;
  std::function<Expect(const Bufs&)> expect;
};

TEST(Messages, EveryForwardArgument) {
  const CallCase cases[] = {
      {"x_shape[0]", false, [](Bufs& c) { c.f.x_shape[0] = -1; },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "x_shape[0]", "is -1", "expected >= 0"};
       }},
      {"x_shape[2] negative", false, [](Bufs& c) { c.f.x_shape[2] = -2; },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "x_shape[2]", "is -2", "expected >= 0"};
       }},
      {"x null", false, [](Bufs& c) { c.f.x = nullptr; },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "x", "is null", "6 rows"};
       }},
      {"x size overflow", false,
       [](Bufs& c) {
         c.f.x_shape[0] = int64_t(1) << 31;
         c.f.x_shape[1] = int64_t(1) << 31;
       },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "max_time", std::to_string(int64_t(1) << 31), "overflow"};
       }},
      {"sequence_length_size", false, [](Bufs& c) { c.f.sequence_length_size = 5; },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "sequence_length_size", "is 5", "length batch_size"};
       }},
      {"sequence_length null with a size", false, [](Bufs& c) { c.f.sequence_length = nullptr; },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "sequence_length", "null", "sequence_length_size is 2"};
       }},
      {"host_sequence_length without sequence_length", false,
       [](Bufs& c) {
         c.f.host_sequence_length = c.len.data();
         c.f.sequence_length = nullptr;
         c.f.sequence_length_size = 0;
       },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "sequence_length", "null", "host_sequence_length is set"};
       }},
      {"bidirectional length > T", true, [](Bufs& c) { c.len[0] = 9; },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "sequence_length[0]", "is 9", "0 <= length <= max_time = 3"};
       }},
      {"bidirectional length INT32_MIN", true, [](Bufs& c) { c.len[1] = INT32_MIN; },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "sequence_length[1]", std::to_string(INT32_MIN), "0 <= length"};
       }},
      {"weights null", false, [](Bufs& c) { c.f.weights = nullptr; },
       [](const Bufs& c) {
         return Expect{StatusCode::kInvalidValue, "weights", "null",
                       "param_count() = " + std::to_string(c.rnn->param_count())};
       }},
      {"outputs null", false, [](Bufs& c) { c.f.outputs = nullptr; },
       [](const Bufs& c) {
         return Expect{StatusCode::kInvalidValue, "outputs", "null", std::to_string(c.out.size() * 4) + " bytes"};
       }},
      {"outputs_bw null", true, [](Bufs& c) { c.f.outputs_bw = nullptr; },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "outputs_bw", "null", "bidirectional"};
       }},
      {"outputs_bw set", false, [](Bufs& c) { c.f.outputs_bw = c.dout.data(); },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "outputs_bw", "set", "spec.cells_bw is empty"};
       }},
      {"workspace_bytes", false, [](Bufs& c) { c.f.workspace_bytes = 100; },
       [](const Bufs& c) {
         return Expect{StatusCode::kWorkspaceTooSmall, "workspace_bytes", "is 100", "needs " + c.ws_bytes()};
       }},
      {"workspace null", false, [](Bufs& c) { c.f.workspace = nullptr; },
       [](const Bufs& c) {
         return Expect{StatusCode::kInvalidValue, "workspace", "null", "needs " + c.ws_bytes()};
       }},
      {"reserve without training", false,
       [](Bufs& c) {
         c.f.training = false;
         size_t ws = 0;
         EXPECT_TRUE(c.rnn->get_workspace_size(c.T_, c.B, false, &ws).is_ok());
         c.f.workspace_bytes = ws;
       },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "reserve", "training is false", "ForwardArgs::training"};
       }},
      {"training without reserve", false, [](Bufs& c) { c.f.reserve = nullptr; },
       [](const Bufs& c) {
         return Expect{StatusCode::kInvalidValue, "reserve", "null", c.rs_bytes() + " bytes"};
       }},
      {"reserve_bytes", false, [](Bufs& c) { c.f.reserve_bytes = 12; },
       [](const Bufs& c) {
         return Expect{StatusCode::kWorkspaceTooSmall, "reserve_bytes", "is 12", "needs " + c.rs_bytes()};
       }},
      {"dropout_seed_at misaligned", false,
       [](Bufs& c) { c.f.dropout_seed_at = reinterpret_cast<const uint64_t*>(c.ws.data() + 4); },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "dropout_seed_at", "not 8-byte aligned", "uint64_t"};
       }},
      {"workspace overlaps dropout_seed_at", false,
       [](Bufs& c) { c.f.dropout_seed_at = reinterpret_cast<const uint64_t*>(c.ws.data()); },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "workspace", "overlaps dropout_seed_at", "must not alias"};
       }},
      {"final_state overlaps initial_state", false, [](Bufs& c) { c.f.final_state = c.init.data(); },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "final_state", "overlaps initial_state", "must not alias"};
       }},
      {"outputs_bw overlaps final_state", true, [](Bufs& c) { c.f.outputs_bw = c.fin.data(); },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "outputs_bw", "overlaps final_state", "must be distinct"};
       }},
      {"reserve overlaps workspace", false,
       [](Bufs& c) {
         c.ws.resize(c.ws.size() + c.rs.size() + 8);  // one allocation: nothing else can overlap
         c.f.workspace = c.ws.data();
         c.f.reserve = c.ws.data() + 8;
       },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "workspace", "overlaps reserve", "must be distinct"};
       }},
      {"outputs overlap sequence_length", false, [](Bufs& c) { c.f.outputs = reinterpret_cast<float*>(c.len.data()); },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "outputs", "overlaps sequence_length", "must not alias"};
       }},
  };
  for (const CallCase& k : cases) {
    Bufs c(k.bidirectional);
    k.mutate(c);
    check_message(k.what, c.rnn->forward(c.f), k.expect(c));
  }
}

TEST(Messages, EveryBackwardArgument) {
  const CallCase cases[] = {
      {"x_shape[1]", false, [](Bufs& c) { c.b.x_shape[1] = -8; },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "x_shape[1]", "is -8", "expected >= 0"};
       }},
      {"x_shape[2] depth", false, [](Bufs& c) { c.b.x_shape[2] = 3; },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "x_shape[2]", "is 3", "spec.input_size is 2"};
       }},
      {"x null", false, [](Bufs& c) { c.b.x = nullptr; },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "x", "is null", "6 rows"};
       }},
      {"weights null", false, [](Bufs& c) { c.b.weights = nullptr; },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "weights", "null", "param_count()"};
       }},
      {"sequence_length_size", false, [](Bufs& c) { c.b.sequence_length_size = 0; },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "sequence_length_size", "is 0", "length batch_size"};
       }},
      {"bidirectional length negative", true, [](Bufs& c) { c.len[1] = -1; },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "sequence_length[1]", "is -1", "0 <= length"};
       }},
      {"grad_outputs_bw on unidirectional", false, [](Bufs& c) { c.b.grad_outputs_bw = c.out.data(); },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "grad_outputs_bw", "set", "spec.cells_bw is empty"};
       }},
      {"reserve null", false, [](Bufs& c) { c.b.reserve = nullptr; },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "reserve", "null", "reserve of a training forward"};
       }},
      {"reserve_bytes", false, [](Bufs& c) { c.b.reserve_bytes = 4; },
       [](const Bufs& c) {
         return Expect{StatusCode::kWorkspaceTooSmall, "reserve_bytes", "is 4", c.rs_bytes()};
       }},
      {"workspace_bytes", false, [](Bufs& c) { c.b.workspace_bytes = 0; },
       [](const Bufs& c) {
         return Expect{StatusCode::kWorkspaceTooSmall, "workspace_bytes", "is 0", "needs " + c.ws_bytes()};
       }},
      {"workspace null", false, [](Bufs& c) { c.b.workspace = nullptr; },
       [](const Bufs& c) {
         return Expect{StatusCode::kInvalidValue, "workspace", "null", "needs " + c.ws_bytes()};
       }},
      {"grad_inputs overlaps grad_outputs", false, [](Bufs& c) { c.b.grad_inputs = c.dout.data(); },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "grad_inputs", "overlaps grad_outputs", "must not alias"};
       }},
      {"grad_initial_state overlaps grad_final_state", false, [](Bufs& c) { c.b.grad_initial_state = c.dfin.data(); },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "grad_initial_state", "overlaps grad_final_state", "must not alias"};
       }},
      {"grad_initial_state overlaps initial_state", false, [](Bufs& c) { c.b.grad_initial_state = c.init.data(); },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "grad_initial_state", "overlaps initial_state", "must not alias"};
       }},
      {"grad_weights overlaps weights", false, [](Bufs& c) { c.b.grad_weights = c.w.data(); },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "grad_weights", "overlaps weights", "must not alias"};
       }},
      {"grad_inputs overlaps grad_outputs_bw", true, [](Bufs& c) { c.b.grad_inputs = c.dout_bw.data(); },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "grad_inputs", "overlaps grad_outputs_bw", "must not alias"};
       }},
      {"workspace overlaps reserve", false,
       [](Bufs& c) {
         // Both inside one allocation, so that the workspace range overlaps nothing else.
         c.rs.resize(c.rs.size() + c.ws.size());
         c.b.reserve = c.rs.data();
         c.b.workspace = c.rs.data();
       },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "workspace", "overlaps reserve", "must not alias"};
       }},
      {"grad_weights overlaps grad_inputs", false, [](Bufs& c) { c.b.grad_weights = c.dx.data() + 1; },
       [](const Bufs&) {
         return Expect{StatusCode::kInvalidValue, "grad_inputs", "overlaps grad_weights", "must be distinct"};
       }},
  };
  for (const CallCase& k : cases) {
    Bufs c(k.bidirectional);
    ASSERT_TRUE(c.rnn->forward(c.f).is_ok()) << k.what;
    k.mutate(c);
    check_message(k.what, c.rnn->backward(c.b), k.expect(c));
  }
}

TEST(Messages, WeightConversion) {
  std::vector<float> k(64), bias(16), proj(16), w_ih(64), w_hh(64), b_ih(16), b_hh(16), w_hr(16);
  dynrnn::CudnnLayerWeights<float> out{w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data(), w_hr.data()};
  const CellSpec lstm = CellSpec::basic_lstm(2);
  auto to_cudnn = [&](const CellSpec& c, int64_t D, const float* kk, const float* bb, const float* pp,
                      const dynrnn::CudnnLayerWeights<float>& o) {
    return dynrnn::tf_to_cudnn<float>(c, D, kk, bb, pp, o);
  };
  check_message("GRU", to_cudnn(CellSpec::gru(2), 2, k.data(), bias.data(), nullptr, out),
                {StatusCode::kNotSupported, "cell.kind", "kGRU", "cannot express"});
  check_message("num_units", to_cudnn(CellSpec::basic_lstm(-4), 2, k.data(), bias.data(), nullptr, out),
                {StatusCode::kInvalidValue, "cell.num_units", "is -4", "expected both > 0"});
  check_message("input_size", to_cudnn(lstm, 0, k.data(), bias.data(), nullptr, out),
                {StatusCode::kInvalidValue, "input_size", "is 0", "expected both > 0"});
  CellSpec kind = lstm;
  kind.kind = static_cast<CellKind>(7);
  check_message("kind out of range", to_cudnn(kind, 2, k.data(), bias.data(), nullptr, out),
                {StatusCode::kInvalidValue, "cell.kind", "is 7", "expected"});
  CellSpec peep = CellSpec::lstm(2);
  peep.use_peepholes = true;
  check_message("peepholes", to_cudnn(peep, 2, k.data(), bias.data(), nullptr, out),
                {StatusCode::kNotSupported, "use_peepholes", "true", "no cuDNN/PyTorch equivalent"});
  CellSpec clip = CellSpec::lstm(2);
  clip.cell_clip = 0.5;
  check_message("cell_clip", to_cudnn(clip, 2, k.data(), bias.data(), nullptr, out),
                {StatusCode::kNotSupported, "cell_clip", "0.5", "no cuDNN/PyTorch equivalent"});
  check_message("kernel null", to_cudnn(lstm, 2, nullptr, bias.data(), nullptr, out),
                {StatusCode::kInvalidValue, "tf_kernel", "null", "expected"});
  check_message("bias null", to_cudnn(lstm, 2, k.data(), nullptr, nullptr, out),
                {StatusCode::kInvalidValue, "tf_bias", "null", "expected"});
  dynrnn::CudnnLayerWeights<float> no_hh = out;
  no_hh.w_hh = nullptr;
  check_message("w_hh null", to_cudnn(lstm, 2, k.data(), bias.data(), nullptr, no_hh),
                {StatusCode::kInvalidValue, "w_hh", "null", "expected"});
  CellSpec projected = CellSpec::lstm(2);
  projected.num_proj = 2;
  check_message("projection null", to_cudnn(projected, 2, k.data(), bias.data(), nullptr, out),
                {StatusCode::kInvalidValue, "tf_projection", "null", "num_proj is 2"});
  dynrnn::CudnnLayerWeights<const float> in{w_ih.data(), w_hh.data(), nullptr, b_hh.data(), w_hr.data()};
  check_message("b_ih null", dynrnn::cudnn_to_tf<float>(lstm, 2, in, k.data(), bias.data(), nullptr),
                {StatusCode::kInvalidValue, "b_ih", "null", "expected"});

  // Keras <-> TF: every kind converts (the TF GRUCell too); LSTMCell's options other than
  // forget_bias do not.
  dynrnn::KerasLayerWeights<const float> keras{w_ih.data(), w_hh.data(), b_ih.data()};
  auto to_tf = [&](const CellSpec& c, int64_t D, const dynrnn::KerasLayerWeights<const float>& kk, float* tf) {
    return dynrnn::keras_to_tf<float>(c, D, kk, tf);
  };
  check_message("keras: peepholes", to_tf(peep, 2, keras, k.data()),
                {StatusCode::kNotSupported, "use_peepholes", "true", "no Keras equivalent"});
  check_message("keras: cell_clip", to_tf(clip, 2, keras, k.data()),
                {StatusCode::kNotSupported, "cell_clip", "0.5", "no Keras equivalent"});
  check_message("keras: num_proj", to_tf(projected, 2, keras, k.data()),
                {StatusCode::kNotSupported, "cell.num_proj", "is 2", "no Keras equivalent"});
  CellSpec proj_clip = projected;
  proj_clip.num_proj = 0;
  proj_clip.proj_clip = 0.25;
  check_message("keras: proj_clip", to_tf(proj_clip, 2, keras, k.data()),
                {StatusCode::kNotSupported, "cell.proj_clip", "0.25", "no Keras equivalent"});
  check_message("keras: input_size", to_tf(lstm, 0, keras, k.data()),
                {StatusCode::kInvalidValue, "input_size", "is 0", "expected both > 0"});
  check_message("keras: num_units", to_tf(CellSpec::gru(-1), 2, keras, k.data()),
                {StatusCode::kInvalidValue, "cell.num_units", "is -1", "expected both > 0"});
  check_message("keras: kind out of range", to_tf(kind, 2, keras, k.data()),
                {StatusCode::kInvalidValue, "cell.kind", "is 7", "expected a CellKind"});
  check_message("keras: overflow", to_tf(CellSpec::basic_rnn(int64_t{1} << 40), int64_t{1} << 40, keras, k.data()),
                {StatusCode::kInvalidValue, "cell.num_units", "overflow 64 bits", "expected a smaller layer"});
  dynrnn::KerasLayerWeights<const float> no_kernel = keras;
  no_kernel.kernel = nullptr;
  check_message("keras: kernel null", to_tf(lstm, 3, no_kernel, k.data()),
                {StatusCode::kInvalidValue, "kernel is null", "null", "[input_size, 4 * num_units] = [3, 8]"});
  dynrnn::KerasLayerWeights<const float> no_recurrent = keras;
  no_recurrent.recurrent_kernel = nullptr;
  check_message("keras: recurrent_kernel null", to_tf(CellSpec::gru_reset_after(2), 2, no_recurrent, k.data()),
                {StatusCode::kInvalidValue, "recurrent_kernel", "null", "[num_units, 3 * num_units] = [2, 6]"});
  check_message("keras: tf_layer null", to_tf(CellSpec::basic_rnn(2), 2, keras, nullptr),
                {StatusCode::kInvalidValue, "tf_layer", "null", "first parameter"});
  dynrnn::KerasLayerWeights<float> keras_out{w_ih.data(), nullptr, b_ih.data()};
  check_message("keras: out recurrent_kernel null", dynrnn::tf_to_keras<float>(lstm, 2, k.data(), keras_out),
                {StatusCode::kInvalidValue, "recurrent_kernel", "null", "[num_units, 4 * num_units] = [2, 8]"});
  keras_out.recurrent_kernel = w_hh.data();
  check_message("keras: tf_to_keras tf_layer null", dynrnn::tf_to_keras<float>(lstm, 2, nullptr, keras_out),
                {StatusCode::kInvalidValue, "tf_layer", "null", "Rnn::params()"});
  check_message("keras: tf_to_keras peepholes", dynrnn::tf_to_keras<float>(peep, 2, k.data(), keras_out),
                {StatusCode::kNotSupported, "use_peepholes", "true", "no Keras equivalent"});
}

/// swap_memory's host_reserve (ForwardArgs / BackwardArgs): size, presence, training flag, aliasing.
TEST(Messages, HostReserve) {
  RnnSpec spec = base_spec();
  spec.swap_memory = true;
  spec.parallel_iterations = 1;  // 3 one-step chunks, a ring of 2: one chunk goes to the host
  std::unique_ptr<dynrnn::Rnn> rnn;
  ASSERT_TRUE(dynrnn::Rnn::create(spec, Backend::kCpu, &rnn).is_ok());
  const int64_t T = 3, B = 2;
  testing_support::CallBuffers<float> c(*rnn, T, B, /*time_major=*/false);
  ASSERT_TRUE(c.ok()) << c.error;
  const size_t hr = c.hrs.size();
  ASSERT_GT(hr, 0u);
  const std::string need = std::to_string(hr);
  c.x.assign(T * B * 2, 0.5f);
  c.w.assign(rnn->param_count(), 0.1f);
  // No initial or final state and no lengths; the forward's outputs serve as upstream gradients.
  auto forward_args = [&] {
    dynrnn::ForwardArgs f = c.forward_args();
    f.final_state = nullptr;
    return f;
  };
  dynrnn::ForwardArgs f = forward_args();
  ASSERT_TRUE(rnn->forward(f).is_ok());
  f.host_reserve = nullptr;
  check_message("forward: host_reserve null", rnn->forward(f),
                {StatusCode::kInvalidValue, "host_reserve", "null", need + " bytes"});
  f = forward_args();
  f.host_reserve_bytes = 5;
  check_message("forward: host_reserve_bytes short", rnn->forward(f),
                {StatusCode::kWorkspaceTooSmall, "host_reserve_bytes", "is 5", "needs " + need});
  f = forward_args();
  f.training = false;
  f.reserve = nullptr;
  f.reserve_bytes = 0;
  ASSERT_TRUE(rnn->get_workspace_size(T, B, false, &f.workspace_bytes).is_ok());
  check_message("forward: host_reserve without training", rnn->forward(f),
                {StatusCode::kInvalidValue, "host_reserve", "training is false", "training forward"});
  f = forward_args();
  f.host_reserve = c.rs.data();
  check_message("forward: host_reserve overlaps reserve", rnn->forward(f),
                {StatusCode::kInvalidValue, "reserve", "overlaps host_reserve", "must be distinct"});

  ASSERT_TRUE(rnn->forward(forward_args()).is_ok());
  auto backward_args = [&] {
    dynrnn::BackwardArgs b = c.backward_args();
    b.grad_outputs = c.out.data();
    b.grad_initial_state = nullptr;
    return b;
  };
  ASSERT_TRUE(rnn->backward(backward_args()).is_ok());
  dynrnn::BackwardArgs b = backward_args();
  b.host_reserve = nullptr;
  check_message("backward: host_reserve null", rnn->backward(b),
                {StatusCode::kInvalidValue, "host_reserve", "null", need + " bytes"});
  b = backward_args();
  b.host_reserve_bytes = hr - 1;
  check_message(
      "backward: host_reserve_bytes short", rnn->backward(b),
      {StatusCode::kWorkspaceTooSmall, "host_reserve_bytes", "is " + std::to_string(hr - 1), "needs " + need});
  b = backward_args();
  b.grad_inputs = reinterpret_cast<float*>(c.hrs.data());
  check_message("backward: grad_inputs overlaps host_reserve", rnn->backward(b),
                {StatusCode::kInvalidValue, "grad_inputs", "overlaps host_reserve", "must not alias"});
}

}  // namespace

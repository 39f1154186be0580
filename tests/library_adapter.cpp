#include "library_adapter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "call_buffers.h"
#include "device_call.h"
#include "dtype_support.h"
#include "host/element_types.h"

namespace testing_support {
namespace {

bool bit_equal(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

bool bit_equal(const ref::Named& a, const ref::Named& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end() || !bit_equal(v, it->second)) return false;
  }
  return true;
}

dynrnn::CellSpec to_spec(const ref::Cell& c) {
  dynrnn::CellSpec s;
  switch (c.kind) {
    case ref::CellKind::BasicRNN: s.kind = dynrnn::CellKind::kBasicRNN; break;
    case ref::CellKind::BasicLSTM: s.kind = dynrnn::CellKind::kBasicLSTM; break;
    case ref::CellKind::LSTM: s.kind = dynrnn::CellKind::kLSTM; break;
    case ref::CellKind::GRU: s.kind = dynrnn::CellKind::kGRU; break;
    case ref::CellKind::GRUResetAfter: s.kind = dynrnn::CellKind::kGRUResetAfter; break;
  }
  s.num_units = c.units;
  s.activation = c.relu ? dynrnn::Activation::kRelu : dynrnn::Activation::kTanh;
  const bool lstm = c.kind == ref::CellKind::LSTM;
  if (lstm || c.kind == ref::CellKind::BasicLSTM) s.forget_bias = c.forget_bias;
  if (lstm) {
    s.use_peepholes = c.peepholes;
    if (c.has_cell_clip) s.cell_clip = c.cell_clip;
    s.num_proj = c.num_proj;
    if (c.has_proj_clip && c.num_proj > 0) s.proj_clip = c.proj_clip;
  }
  s.residual = c.residual;
  s.input_keep_prob = c.input_keep_prob;
  s.output_keep_prob = c.output_keep_prob;
  s.state_keep_prob = c.state_keep_prob;
  s.variational_recurrent = c.variational_recurrent;
  return s;
}

}  // namespace

dynrnn::RnnSpec spec_from_problem(const ref::Problem& p, dynrnn::DataType dtype, const LibraryOptions& opt) {
  dynrnn::RnnSpec spec;
  for (const ref::Cell& c : p.fw) spec.cells_fw.push_back(to_spec(c));
  for (const ref::Cell& c : p.bw) spec.cells_bw.push_back(to_spec(c));
  spec.stack_bidirectional = p.stack_bidirectional;
  spec.input_size = p.D;
  spec.dtype = dtype;
  spec.time_major = p.time_major;
  spec.parallel_iterations = opt.parallel_iterations;
  spec.swap_memory = opt.swap_memory;
  spec.activation_memory_budget = opt.activation_memory_budget;
  spec.recompute = opt.recompute;
  spec.algorithm = opt.algorithm;
  spec.pipeline_projections = opt.pipeline_projections;
  return spec;
}

std::vector<double> flat_weights(const dynrnn::Rnn& rnn, const ref::Problem& p) {
  std::vector<double> w(static_cast<size_t>(rnn.param_count()), 0.0);
  for (const dynrnn::ParamInfo& info : rnn.params()) {
    const std::vector<ref::Params>& stack = info.direction == 0 ? p.w_fw : p.w_bw;
    const ref::Params& params = stack.at(static_cast<size_t>(info.layer));
    auto it = params.find(info.local_name);
    if (it == params.end()) {
      ADD_FAILURE() << "the reference has no parameter " << info.local_name << " for " << info.name;
      continue;
    }
    EXPECT_EQ(static_cast<int64_t>(it->second.size()), info.count) << info.name;
    std::copy(it->second.begin(), it->second.end(), w.begin() + info.offset);
  }
  return w;
}

template <typename T>
LibraryRun run_library(const ref::Problem& p, const ref::Upstream* upstream, const LibraryOptions& opt,
                       const std::function<void(dynrnn::Rnn&)>& prepare) {
  LibraryRun run;
  const dynrnn::DataType dtype = dtype_of<T>();
  std::unique_ptr<dynrnn::Rnn> rnn;
  dynrnn::Status st = dynrnn::Rnn::create(spec_from_problem(p, dtype, opt), opt.backend, &rnn);
  if (!st) {
    ADD_FAILURE() << st.to_string();
    return run;
  }
  if (prepare) prepare(*rnn);
  const int64_t B = p.B;
  const bool training = !opt.inference;
  CallBuffers<T> c(*rnn, p.T, B, p.time_major, training);
  EXPECT_TRUE(c.ok()) << c.error;
  c.set_problem(*rnn, p);
  if (upstream && training) c.set_upstream(*rnn, *upstream);
  c.fill_results(T(NAN));
  // kCuda: device copies of every buffer; results() brings the results back into c.
  std::unique_ptr<DeviceCall<T>> device;
  if (opt.backend == dynrnn::Backend::kCuda) device = std::make_unique<DeviceCall<T>>(c, training);

  st = rnn->forward(device ? device->f : c.forward_args(training));
  if (device) device->results();
  if (!st) {
    ADD_FAILURE() << "forward: " << st.to_string();
    return run;
  }
  if (c.stacked) {
    const int64_t o_fw = rnn->output_width(0);
    run.forward.out_fw = column_block(widen(c.out), c.out_width, 0, o_fw);
    run.forward.out_bw = column_block(widen(c.out), c.out_width, o_fw, c.out_width - o_fw);
  } else {
    run.forward.out_fw = widen(c.out);
    if (c.bi) run.forward.out_bw = widen(c.out_bw);
  }
  run.forward.final_state = unpack_state(*rnn, widen(c.fin), B);
  if (!upstream || !training) return run;
  // The workspace keeps nothing from one call to the next: backward must not read what forward left.
  if (device) {
    device->poison_workspace();
  } else {
    std::fill(c.ws.begin(), c.ws.end(), char(-1));  // NaN in every element type
  }

  st = rnn->backward(device ? device->b : c.backward_args());
  if (device) device->results();
  if (!st) {
    ADD_FAILURE() << "backward: " << st.to_string();
    return run;
  }
  run.gradients.dx = widen(c.dx);
  run.gradients.dinit = unpack_state(*rnn, widen(c.dinit), B);
  run.gradients.dw_fw.resize(p.fw.size());
  run.gradients.dw_bw.resize(p.bw.size());
  for (const dynrnn::ParamInfo& info : rnn->params()) {
    auto& stack = info.direction == 0 ? run.gradients.dw_fw : run.gradients.dw_bw;
    auto begin = c.dw.begin() + info.offset;
    stack[static_cast<size_t>(info.layer)][info.local_name] = std::vector<double>(begin, begin + info.count);
  }
  return run;
}

// Every element type the library is built for (host/element_types.h keeps the one list).
#define DYNRNN_TEST_INSTANTIATE(T)                                                                     \
  template LibraryRun run_library<T>(const ref::Problem&, const ref::Upstream*, const LibraryOptions&, \
                                     const std::function<void(dynrnn::Rnn&)>&);
DYNRNN_FOR_EACH_ELEMENT_TYPE(DYNRNN_TEST_INSTANTIATE)
#undef DYNRNN_TEST_INSTANTIATE

double rel_error(const std::vector<double>& a, const std::vector<double>& b, double floor) {
  if (a.size() != b.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) != std::isnan(b[i])) return INFINITY;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), floor);
}

void expect_bit_equal(const LibraryRun& a, const LibraryRun& b, const std::string& what) {
  EXPECT_TRUE(bit_equal(a.forward.out_fw, b.forward.out_fw)) << what << ": out_fw";
  EXPECT_TRUE(bit_equal(a.forward.out_bw, b.forward.out_bw)) << what << ": out_bw";
  EXPECT_TRUE(bit_equal(a.forward.final_state, b.forward.final_state)) << what << ": final_state";
  EXPECT_TRUE(bit_equal(a.gradients.dx, b.gradients.dx)) << what << ": grad x";
  EXPECT_TRUE(bit_equal(a.gradients.dinit, b.gradients.dinit)) << what << ": grad initial_state";
  ASSERT_EQ(a.gradients.dw_fw.size(), b.gradients.dw_fw.size());
  ASSERT_EQ(a.gradients.dw_bw.size(), b.gradients.dw_bw.size());
  for (size_t l = 0; l < a.gradients.dw_fw.size(); ++l) {
    EXPECT_TRUE(bit_equal(a.gradients.dw_fw[l], b.gradients.dw_fw[l])) << what << ": grad fw layer " << l;
  }
  for (size_t l = 0; l < a.gradients.dw_bw.size(); ++l) {
    EXPECT_TRUE(bit_equal(a.gradients.dw_bw[l], b.gradients.dw_bw[l])) << what << ": grad bw layer " << l;
  }
}

}  // namespace testing_support

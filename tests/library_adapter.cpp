#include "library_adapter.h"

#include <gtest/gtest.h>

#include <cmath>

namespace testing_support {
namespace {

dynrnn::CellSpec to_spec(const ref::Cell& c) {
  dynrnn::CellSpec s;
  switch (c.kind) {
    case ref::CellKind::BasicRNN: s.kind = dynrnn::CellKind::kBasicRNN; break;
    case ref::CellKind::BasicLSTM: s.kind = dynrnn::CellKind::kBasicLSTM; break;
    case ref::CellKind::LSTM: s.kind = dynrnn::CellKind::kLSTM; break;
    case ref::CellKind::GRU: s.kind = dynrnn::CellKind::kGRU; break;
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
  return s;
}

const char* dir_name(int d) { return d == 0 ? "fw" : "bw"; }

template <typename T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

template <typename T>
std::vector<double> widen(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

/// Packs named state leaves into the flat state buffer (missing leaves are zero).
std::vector<double> pack_state(const dynrnn::Rnn& rnn, const ref::Named& leaves, int64_t B) {
  std::vector<double> flat(static_cast<size_t>(B * rnn.state_width()), 0.0);
  for (const dynrnn::StateLeaf& leaf : rnn.state_layout()) {
    auto it = leaves.find(leaf.name);
    if (it == leaves.end()) continue;
    EXPECT_EQ(static_cast<int64_t>(it->second.size()), B * leaf.width) << leaf.name;
    std::copy(it->second.begin(), it->second.end(), flat.begin() + B * leaf.column_offset);
  }
  return flat;
}

ref::Named unpack_state(const dynrnn::Rnn& rnn, const std::vector<double>& flat, int64_t B) {
  ref::Named out;
  for (const dynrnn::StateLeaf& leaf : rnn.state_layout()) {
    auto begin = flat.begin() + B * leaf.column_offset;
    out[leaf.name] = std::vector<double>(begin, begin + B * leaf.width);
  }
  return out;
}

}  // namespace

dynrnn::RnnSpec spec_from_problem(const ref::Problem& p, dynrnn::DataType dtype, const LibraryOptions& opt) {
  dynrnn::RnnSpec spec;
  for (const ref::Cell& c : p.fw) spec.cells_fw.push_back(to_spec(c));
  for (const ref::Cell& c : p.bw) spec.cells_bw.push_back(to_spec(c));
  spec.input_size = p.D;
  spec.dtype = dtype;
  spec.time_major = p.time_major;
  spec.parallel_iterations = opt.parallel_iterations;
  spec.swap_memory = opt.swap_memory;
  spec.activation_memory_budget = opt.activation_memory_budget;
  spec.recompute = opt.recompute;
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
  const dynrnn::DataType dtype = sizeof(T) == 4 ? dynrnn::DataType::kFloat32 : dynrnn::DataType::kFloat64;
  std::unique_ptr<dynrnn::Rnn> rnn;
  dynrnn::Status st = dynrnn::Rnn::create(spec_from_problem(p, dtype, opt), dynrnn::Backend::kCpu, &rnn);
  if (!st) {
    ADD_FAILURE() << st.to_string();
    return run;
  }
  if (prepare) prepare(*rnn);
  const int64_t T_ = p.T, B = p.B, D = p.D;
  size_t ws_bytes = 0, rs_bytes = 0;
  EXPECT_TRUE(rnn->get_workspace_size(T_, B, !opt.inference, &ws_bytes).is_ok());
  EXPECT_TRUE(rnn->get_reserve_size(T_, B, &rs_bytes).is_ok());
  size_t host_bytes = 0;
  EXPECT_TRUE(rnn->get_host_reserve_size(T_, B, &host_bytes).is_ok());
  std::vector<char> workspace(ws_bytes), reserve(rs_bytes), host_reserve(opt.inference ? 0 : host_bytes);
  std::vector<T> x = cast<T>(p.x);
  std::vector<T> weights = cast<T>(flat_weights(*rnn, p));
  std::vector<T> init = cast<T>(pack_state(*rnn, p.init, B));
  const bool bi = !p.bw.empty();
  std::vector<T> out_fw(static_cast<size_t>(T_ * B * rnn->output_width(0)), T(NAN));
  std::vector<T> out_bw(bi ? static_cast<size_t>(T_ * B * rnn->output_width(1)) : 0, T(NAN));
  std::vector<T> final_state(static_cast<size_t>(B * rnn->state_width()), T(NAN));

  dynrnn::ForwardArgs fa;
  fa.x_shape[0] = p.time_major ? T_ : B;
  fa.x_shape[1] = p.time_major ? B : T_;
  fa.x_shape[2] = D;
  fa.x = x.data();
  if (p.has_seq_len) {
    fa.sequence_length = p.seq_len.data();
    fa.sequence_length_size = B;
  }
  fa.initial_state = p.has_initial_state ? init.data() : nullptr;
  fa.weights = weights.data();
  fa.outputs = out_fw.data();
  fa.outputs_bw = bi ? out_bw.data() : nullptr;
  fa.final_state = final_state.data();
  fa.workspace = workspace.data();
  fa.workspace_bytes = ws_bytes;
  fa.training = !opt.inference;
  fa.reserve = opt.inference ? nullptr : reserve.data();
  fa.reserve_bytes = opt.inference ? 0 : rs_bytes;
  fa.host_reserve = host_reserve.empty() ? nullptr : host_reserve.data();
  fa.host_reserve_bytes = host_reserve.size();
  st = rnn->forward(fa);
  if (!st) {
    ADD_FAILURE() << "forward: " << st.to_string();
    return run;
  }
  run.forward.out_fw = widen(out_fw);
  if (bi) run.forward.out_bw = widen(out_bw);
  run.forward.final_state = unpack_state(*rnn, widen(final_state), B);
  if (!upstream || opt.inference) return run;

  std::vector<T> dout_fw = cast<T>(upstream->dout_fw), dout_bw = cast<T>(upstream->dout_bw);
  std::vector<T> dfinal = cast<T>(pack_state(*rnn, upstream->dfinal, B));
  std::vector<T> dx(x.size(), T(NAN)), dinit(init.size(), T(NAN)), dw(weights.size(), T(NAN));
  dynrnn::BackwardArgs ba;
  std::copy(fa.x_shape, fa.x_shape + 3, ba.x_shape);
  ba.x = x.data();
  ba.sequence_length = fa.sequence_length;
  ba.sequence_length_size = fa.sequence_length_size;
  ba.initial_state = fa.initial_state;
  ba.weights = weights.data();
  ba.grad_outputs = dout_fw.empty() ? nullptr : dout_fw.data();
  ba.grad_outputs_bw = dout_bw.empty() ? nullptr : dout_bw.data();
  ba.grad_final_state = dfinal.data();
  ba.grad_inputs = dx.data();
  ba.grad_initial_state = dinit.data();
  ba.grad_weights = dw.data();
  ba.workspace = workspace.data();
  ba.workspace_bytes = ws_bytes;
  ba.reserve = reserve.data();
  ba.reserve_bytes = rs_bytes;
  ba.host_reserve = fa.host_reserve;
  ba.host_reserve_bytes = fa.host_reserve_bytes;
  st = rnn->backward(ba);
  if (!st) {
    ADD_FAILURE() << "backward: " << st.to_string();
    return run;
  }
  run.gradients.dx = widen(dx);
  run.gradients.dinit = unpack_state(*rnn, widen(dinit), B);
  run.gradients.dw_fw.resize(p.fw.size());
  run.gradients.dw_bw.resize(p.bw.size());
  for (const dynrnn::ParamInfo& info : rnn->params()) {
    auto& stack = info.direction == 0 ? run.gradients.dw_fw : run.gradients.dw_bw;
    auto begin = dw.begin() + info.offset;
    stack[static_cast<size_t>(info.layer)][info.local_name] = std::vector<double>(begin, begin + info.count);
  }
  return run;
}

template LibraryRun run_library<float>(const ref::Problem&, const ref::Upstream*, const LibraryOptions&,
                                       const std::function<void(dynrnn::Rnn&)>&);
template LibraryRun run_library<double>(const ref::Problem&, const ref::Upstream*, const LibraryOptions&,
                                        const std::function<void(dynrnn::Rnn&)>&);

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

}  // namespace testing_support

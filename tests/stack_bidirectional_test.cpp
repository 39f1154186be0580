// RnnSpec::stack_bidirectional (tf.contrib.rnn.stack_bidirectional_dynamic_rnn) on the library: its
// TF names and layout, and that a stacked call is its layers run one at a time, each a one-layer
// bidirectional RNN over the concatenated outputs of the layer below, bit for bit — forward and
// backward, for every schedule that places the layers' buffers differently (chunks, swap_memory,
// recompute, a batch that runs sorted). Its values against TensorFlow are the stack_bidi_* fixtures
// (cpu_vs_tensorflow_test.cpp) and the float64 reference (random problems, finite differences).
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "call_buffers.h"
#include "dynrnn/rnn.h"
#include "gpu_support.h"
#include "library_adapter.h"
#include "reference/reference.h"

namespace {

using dynrnn::CellSpec;
using testing_support::column_block;
using testing_support::LibraryOptions;
using testing_support::LibraryRun;

ref::Cell cell(ref::CellKind kind, int units) {
  ref::Cell c;
  c.kind = kind;
  c.units = units;
  return c;
}

/// Three stacked layers of mixed cells whose two directions differ in kind and width, a residual
/// cell over a concatenation of its own width, an unsorted batch with lengths 0 and T, an initial
/// state, and full upstream gradients.
ref::Problem three_layer_problem(bool time_major, std::mt19937_64& rng) {
  ref::Problem p;
  p.T = 7;
  p.B = 5;
  p.D = 5;
  p.time_major = time_major;
  p.stack_bidirectional = true;
  ref::Cell proj = cell(ref::CellKind::LSTM, 4);
  proj.num_proj = 3;
  proj.peepholes = true;
  ref::Cell relu = cell(ref::CellKind::BasicRNN, 2);
  relu.relu = true;
  ref::Cell residual = cell(ref::CellKind::GRU, 5);  // reads 3 + 2 columns
  residual.residual = true;
  p.fw = {proj, residual, cell(ref::CellKind::GRUResetAfter, 3)};
  p.bw = {relu, cell(ref::CellKind::BasicLSTM, 4), cell(ref::CellKind::LSTM, 6)};
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (int i = 0; i < p.T * p.B * p.D; ++i) p.x.push_back(u(rng));
  p.has_seq_len = true;
  p.seq_len = {3, 7, 0, 5, 7};
  for (int d = 0; d < 2; ++d) {
    const std::vector<ref::Cell>& stack = d == 0 ? p.fw : p.bw;
    for (size_t l = 0; l < stack.size(); ++l) {
      (d == 0 ? p.w_fw : p.w_bw)
          .push_back(ref::random_params(stack[l], ref::layer_input_width(p, d, static_cast<int>(l)), rng, 0.6));
      for (const std::string& leaf : ref::leaves(stack[l])) {
        std::vector<double>& v = p.init[std::string(d == 0 ? "fw/" : "bw/") + std::to_string(l) + "/" + leaf];
        for (int i = 0; i < p.B * ref::state_width(stack[l], leaf.c_str()); ++i) v.push_back(u(rng));
      }
    }
  }
  p.has_initial_state = true;
  return p;
}

ref::Upstream upstream_of(const ref::Problem& p, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  ref::Upstream up;
  for (int i = 0; i < p.T * p.B * ref::output_width(p.fw.back()); ++i) up.dout_fw.push_back(u(rng));
  for (int i = 0; i < p.T * p.B * ref::output_width(p.bw.back()); ++i) up.dout_bw.push_back(u(rng));
  for (const auto& [name, v] : p.init) {
    for (size_t i = 0; i < v.size(); ++i) up.dfinal[name].push_back(u(rng));
  }
  return up;
}

/// "fw/<layer>/c" as the one-layer problem of that layer names it ("fw/0/c"), and back.
std::string leaf_of_layer(const std::string& name, int layer, bool to_layer) {
  const std::string stacked = "/" + std::to_string(layer) + "/", single = "/0/";
  const std::string& from = to_layer ? stacked : single;
  if (name.compare(2, from.size(), from) != 0) return "";
  return name.substr(0, 2) + (to_layer ? single : stacked) + name.substr(2 + from.size());
}

ref::Named layer_leaves(const ref::Named& all, int layer) {
  ref::Named out;
  for (const auto& [name, v] : all) {
    const std::string own = leaf_of_layer(name, layer, true);
    if (!own.empty()) out[own] = v;
  }
  return out;
}

/// Layer l of a stacked problem as a one-layer bidirectional problem over input x.
ref::Problem layer_problem(const ref::Problem& p, int l, const std::vector<double>& x) {
  ref::Problem q = p;
  q.stack_bidirectional = false;
  q.D = ref::layer_input_width(p, 0, l);
  q.fw = {p.fw[static_cast<size_t>(l)]};
  q.bw = {p.bw[static_cast<size_t>(l)]};
  q.w_fw = {p.w_fw[static_cast<size_t>(l)]};
  q.w_bw = {p.w_bw[static_cast<size_t>(l)]};
  q.x = x;
  q.init = layer_leaves(p.init, l);
  return q;
}

/// The stacked problem run as its layers, one handle each: forwards from the bottom, each layer's
/// input the outputs of the layer below concatenated; then backwards from the top, each layer's
/// output gradient the input gradient of the layer above split into the two directions' columns.
template <typename T>
LibraryRun run_layer_by_layer(const ref::Problem& p, const ref::Upstream& u, const LibraryOptions& opt) {
  const int L = static_cast<int>(p.fw.size());
  const int64_t rows = static_cast<int64_t>(p.T) * p.B;
  std::vector<ref::Problem> layers;
  std::vector<double> x = p.x;
  LibraryRun all;
  for (int l = 0; l < L; ++l) {
    layers.push_back(layer_problem(p, l, x));
    const LibraryRun f = testing_support::run_library<T>(layers.back(), nullptr, opt);
    const int64_t o_fw = ref::output_width(p.fw[static_cast<size_t>(l)]);
    const int64_t o_bw = ref::output_width(p.bw[static_cast<size_t>(l)]);
    x = testing_support::widen(
        testing_support::concat_columns<T>(f.forward.out_fw, o_fw, f.forward.out_bw, o_bw, rows));
    if (l == L - 1) all.forward.out_fw = f.forward.out_fw, all.forward.out_bw = f.forward.out_bw;
  }
  all.gradients.dw_fw.resize(static_cast<size_t>(L));
  all.gradients.dw_bw.resize(static_cast<size_t>(L));
  ref::Upstream up;
  up.dout_fw = u.dout_fw;
  up.dout_bw = u.dout_bw;
  for (int l = L - 1; l >= 0; --l) {
    up.dfinal = layer_leaves(u.dfinal, l);
    const LibraryRun r = testing_support::run_library<T>(layers[static_cast<size_t>(l)], &up, opt);
    for (const auto& [name, v] : r.forward.final_state) all.forward.final_state[leaf_of_layer(name, l, false)] = v;
    for (const auto& [name, v] : r.gradients.dinit) all.gradients.dinit[leaf_of_layer(name, l, false)] = v;
    all.gradients.dw_fw[static_cast<size_t>(l)] = r.gradients.dw_fw.at(0);
    all.gradients.dw_bw[static_cast<size_t>(l)] = r.gradients.dw_bw.at(0);
    if (l == 0) {
      all.gradients.dx = r.gradients.dx;
    } else {
      const int64_t o_fw = ref::output_width(p.fw[static_cast<size_t>(l - 1)]);
      const int64_t width = ref::layer_input_width(p, 0, l);
      up.dout_fw = column_block(r.gradients.dx, width, 0, o_fw);
      up.dout_bw = column_block(r.gradients.dx, width, o_fw, width - o_fw);
    }
  }
  return all;
}

template <typename T>
void expect_stacked_is_its_layers(bool time_major, const LibraryOptions& opt, const std::string& what) {
  std::mt19937_64 rng(20261128);
  const ref::Problem p = three_layer_problem(time_major, rng);
  const ref::Upstream u = upstream_of(p, rng);
  const LibraryRun stacked = testing_support::run_library<T>(p, &u, opt);
  const LibraryRun layers = run_layer_by_layer<T>(p, u, opt);
  testing_support::expect_bit_equal(stacked, layers, what);
  // Not vacuous: the layers' values are there (outputs at running rows, every gradient).
  EXPECT_NE(stacked.forward.out_fw, std::vector<double>(stacked.forward.out_fw.size(), 0.0)) << what;
  EXPECT_EQ(stacked.gradients.dw_fw.size(), 3u) << what;
}

TEST(StackBidirectional, IsItsLayersRunOneByOneBitForBit) {
  for (bool time_major : {false, true}) {
    const std::string layout = time_major ? "time-major" : "batch-major";
    LibraryOptions opt;
    expect_stacked_is_its_layers<double>(time_major, opt, layout + " float64");
    expect_stacked_is_its_layers<float>(time_major, opt, layout + " float32");
    opt.parallel_iterations = 2;  // several chunks per layer
    expect_stacked_is_its_layers<double>(time_major, opt, layout + " chunks of 2");
    opt.swap_memory = true;  // the smallest ring: chunks of every layer go to the host reserve
    expect_stacked_is_its_layers<double>(time_major, opt, layout + " swap_memory");
    opt.swap_memory = false;
    opt.recompute = true;
    expect_stacked_is_its_layers<double>(time_major, opt, layout + " recompute");
  }
}

TEST(GpuStackBidirectional, IsItsLayersRunOneByOneBitForBit) {
  REQUIRE_GPU();
  for (dynrnn::RecurrentAlgorithm algorithm :
       {dynrnn::RecurrentAlgorithm::kStandard, dynrnn::RecurrentAlgorithm::kPersistent}) {
    LibraryOptions opt;
    opt.backend = dynrnn::Backend::kCuda;
    opt.algorithm = algorithm;
    const std::string what = algorithm == dynrnn::RecurrentAlgorithm::kPersistent ? "persistent" : "standard";
    expect_stacked_is_its_layers<float>(false, opt, what + " float32");
    opt.parallel_iterations = 2;
    opt.swap_memory = true;
    expect_stacked_is_its_layers<double>(true, opt, what + " time-major float64, swap_memory in chunks of 2");
  }
}

dynrnn::RnnSpec stacked_spec() {
  dynrnn::RnnSpec s;
  CellSpec proj = CellSpec::lstm(4);
  proj.num_proj = 3;
  s.cells_fw = {proj, CellSpec::gru(5)};
  s.cells_bw = {CellSpec::basic_rnn(2), CellSpec::gru_reset_after(6)};
  s.input_size = 7;
  s.stack_bidirectional = true;
  return s;
}

TEST(StackBidirectional, TensorFlowNamesShapesAndStateLayout) {
  std::unique_ptr<dynrnn::Rnn> rnn;
  ASSERT_TRUE(dynrnn::Rnn::create(stacked_spec(), dynrnn::Backend::kCpu, &rnn).is_ok());
  // TF's creation order: per layer, bidirectional_dynamic_rnn builds the forward cell first. Layer 1
  // reads 3 + 2 concatenated columns.
  const std::string l0 = "stack_bidirectional_rnn/cell_0/bidirectional_rnn/";
  const std::string l1 = "stack_bidirectional_rnn/cell_1/bidirectional_rnn/";
  const std::vector<std::pair<std::string, std::vector<int64_t>>> want = {
      {l0 + "fw/lstm_cell/kernel", {7 + 3, 16}},
      {l0 + "fw/lstm_cell/bias", {16}},
      {l0 + "fw/lstm_cell/projection/kernel", {4, 3}},
      {l0 + "bw/basic_rnn_cell/kernel", {7 + 2, 2}},
      {l0 + "bw/basic_rnn_cell/bias", {2}},
      {l1 + "fw/gru_cell/gates/kernel", {5 + 5, 10}},
      {l1 + "fw/gru_cell/gates/bias", {10}},
      {l1 + "fw/gru_cell/candidate/kernel", {5 + 5, 5}},
      {l1 + "fw/gru_cell/candidate/bias", {5}},
      {l1 + "bw/gru_cell/kernel", {5, 18}},
      {l1 + "bw/gru_cell/recurrent_kernel", {6, 18}},
      {l1 + "bw/gru_cell/bias", {2, 18}},
  };
  ASSERT_EQ(rnn->params().size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(rnn->params()[i].name, want[i].first);
    EXPECT_EQ(rnn->params()[i].shape, want[i].second) << want[i].first;
    EXPECT_EQ(rnn->params()[i].layer, i < 5 ? 0 : 1) << want[i].first;
  }
  // TF returns (states_fw, states_bw): every forward layer's leaves, then the backward ones.
  std::vector<std::string> leaves;
  for (const dynrnn::StateLeaf& leaf : rnn->state_layout()) leaves.push_back(leaf.name);
  EXPECT_EQ(leaves, (std::vector<std::string>{"fw/0/c", "fw/0/h", "fw/1/h", "bw/0/h", "bw/1/h"}));
  EXPECT_EQ(rnn->state_width(), 4 + 3 + 5 + 2 + 6);
  EXPECT_EQ(rnn->output_width(0), 5);
  EXPECT_EQ(rnn->output_width(1), 6);
}

TEST(StackBidirectional, SwapBudgetCoversEveryLayer) {
  // The budget bounds the device reserve of the whole call: the rings of all layers together (each
  // layer keeps as many chunks as the budget holds for the whole stack), as without
  // stack_bidirectional, and the concatenated outputs between layers, which go to the host reserve
  // unless the budget holds them beside every chunk.
  dynrnn::RnnSpec s = stacked_spec();
  s.parallel_iterations = 4;
  const int64_t T = 64, B = 3;
  const size_t concat = static_cast<size_t>(T * B * (3 + 2)) * sizeof(float);  // layer 0's outputs
  const size_t align = 4 * 256 + 256;  // the 4 layers' rings and the concatenation round up to 256 bytes
  auto sizes = [&](bool swap, size_t budget, size_t* device, size_t* host) {
    s.swap_memory = swap;
    s.activation_memory_budget = budget;
    std::unique_ptr<dynrnn::Rnn> rnn;
    ASSERT_TRUE(dynrnn::Rnn::create(s, dynrnn::Backend::kCpu, &rnn).is_ok());
    ASSERT_TRUE(rnn->get_reserve_size(T, B, device).is_ok());
    ASSERT_TRUE(rnn->get_host_reserve_size(T, B, host).is_ok());
  };
  size_t full = 0, host_none = 0;
  sizes(false, 0, &full, &host_none);
  EXPECT_EQ(host_none, 0u);
  // A quarter of it: a ring of 4 of the 16 chunks per layer, the concatenation on the host.
  size_t device = 0, host = 0;
  sizes(true, full / 4, &device, &host);
  EXPECT_LE(device, full / 4 + align) << "full reserve " << full;
  EXPECT_GE(host, concat);
  EXPECT_LE(full, device + host + align);  // the host holds what the device no longer does
  EXPECT_LE(device + host, full + align);
  // Every chunk but not the concatenation: only the concatenation moves.
  sizes(true, full - 1, &device, &host);
  EXPECT_GE(host, concat);
  EXPECT_LT(host, concat + 256);
  EXPECT_EQ(device + host, full);
  EXPECT_LE(device, full - 1);
  // Everything: nothing moves.
  sizes(true, full, &device, &host);
  EXPECT_EQ(device, full);
  EXPECT_EQ(host, 0u);
}

}  // namespace

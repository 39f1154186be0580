// A TF2 user's Keras recurrent layers on dynrnn: tf.keras.layers.LSTM, GRU (reset_after False and
// True), SimpleRNN and stacks of Bidirectional(..., merge_mode="concat"), with masks from lengths,
// initial states and gradients, as recorded from tf_keras 2.18 in eager mode by
// tests/golden/generate_keras.py (tests/golden/data/keras/*.txt). Each fixture's Keras weights go
// through dynrnn::keras_to_tf into the flat weight buffer (each layer at its first Rnn::params()
// entry), dynrnn runs forward and backward, the weight gradients come back through tf_to_keras, and
// the outputs, final states and gradients must equal Keras' within fixture_tolerance:
//   LSTM(units, activation)       = CellSpec::lstm(units) (or basic_lstm) with forget_bias 0
//   GRU(reset_after=False)        = CellSpec::gru,  GRU(reset_after=True) = CellSpec::gru_reset_after
//   SimpleRNN                     = CellSpec::basic_rnn
//   mask[b, t] = t < len[b] with zero_output_for_mask = sequence_length
//   Bidirectional stack (concat)  = RnnSpec::stack_bidirectional, one layer per Bidirectional
// KerasLayers runs the CPU backend; GpuKerasLayers the CUDA one (skips without a device; CI runs it
// on the emulated device).
#include <gtest/gtest.h>

#include <cmath>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "call_buffers.h"
#include "device_call.h"
#include "dtype_support.h"
#include "dynrnn/rnn.h"
#include "dynrnn/weights.h"
#include "golden/fixture.h"
#include "gpu_support.h"
#include "reference/fixture_compare.h"
#include "reference/reference.h"

#ifndef DYNRNN_GOLDEN_DIR
#error "DYNRNN_GOLDEN_DIR must be defined (directory holding the *.txt fixtures)"
#endif

namespace {

using dynrnn::Backend;
using dynrnn::CellKind;
using dynrnn::CellSpec;
using testing_support::CallBuffers;

const char* const kKerasDir = DYNRNN_GOLDEN_DIR "/keras";
const char* const kWeights[] = {"kernel", "recurrent_kernel", "bias"};

std::vector<std::string> keras_fixture_paths() {
  try {
    return golden::list_fixtures(kKerasDir);
  } catch (const std::exception&) {
    return {};
  }
}

/// How a run maps the Keras layers onto dynrnn.
struct Variant {
  bool basic_lstm = false;  ///< LSTM as CellSpec::basic_lstm instead of CellSpec::lstm
  /// The LSTM cells' forget_bias: keras_to_tf subtracts it from the f bias and dynrnn adds it back.
  /// The weight *gradients* are always converted with forget_bias 0 (a gradient has no offset).
  double forget_bias = 0.0;
  /// A single Bidirectional layer as bidirectional_dynamic_rnn (outputs and outputs_bw) instead of
  /// stack_bidirectional (one concatenated output).
  bool unstacked = false;
  Backend backend = Backend::kCpu;
  dynrnn::RecurrentAlgorithm algorithm = dynrnn::RecurrentAlgorithm::kStandard;
};

const std::string& attr(const golden::CellLine& c, const std::string& key) {
  auto it = c.attrs.find(key);
  if (it == c.attrs.end()) throw std::runtime_error("cell line without " + key);
  return it->second;
}

/// The CellSpec of one Keras layer (the README's correspondence), checked against the fixture's
/// record of the equivalent dynamic_rnn cell (kind=...).
CellSpec keras_cell(const golden::CellLine& c, const Variant& v) {
  const std::string& layer = attr(c, "keras_layer");
  const int64_t units = std::stoll(attr(c, "units"));
  const std::string& act = attr(c, "activation");
  EXPECT_TRUE(act == "tanh" || act == "relu") << act;
  EXPECT_EQ(attr(c, "recurrent_activation"), "sigmoid");
  const dynrnn::Activation a = act == "relu" ? dynrnn::Activation::kRelu : dynrnn::Activation::kTanh;
  CellSpec s;
  if (layer == "LSTM") {
    EXPECT_EQ(attr(c, "kind"), "lstm");
    EXPECT_EQ(attr(c, "forget_bias"), "0");
    s = v.basic_lstm ? CellSpec::basic_lstm(units, v.forget_bias) : CellSpec::lstm(units);
    s.forget_bias = v.forget_bias;
    s.activation = a;
  } else if (layer == "GRU") {
    const bool reset_after = attr(c, "reset_after") == "1";
    EXPECT_EQ(attr(c, "kind"), reset_after ? "gru_ra" : "gru");
    s = reset_after ? CellSpec::gru_reset_after(units, a) : CellSpec::gru(units, a);
  } else {
    EXPECT_EQ(layer, "SimpleRNN");
    EXPECT_EQ(attr(c, "kind"), "basic_rnn");
    s = CellSpec::basic_rnn(units, a);
  }
  return s;
}

dynrnn::RnnSpec keras_spec(const golden::Fixture& fx, dynrnn::DataType dtype, const Variant& v) {
  EXPECT_EQ(fx.meta_str("format"), "keras");
  EXPECT_EQ(fx.meta_int("time_major"), 0);  // Keras layers are batch-major
  EXPECT_EQ(fx.meta_int("zero_output_for_mask"), 1);
  dynrnn::RnnSpec spec;
  for (const golden::CellLine* c : fx.cells_of("fw")) spec.cells_fw.push_back(keras_cell(*c, v));
  for (const golden::CellLine* c : fx.cells_of("bw")) spec.cells_bw.push_back(keras_cell(*c, v));
  const bool bidirectional = fx.meta_int("bidirectional") != 0;
  EXPECT_EQ(!spec.cells_bw.empty(), bidirectional);
  EXPECT_EQ(fx.meta_str("keras_layer") == "Bidirectional", bidirectional);
  // Stacked Bidirectional layers: each reads both directions of the one below, concatenated.
  spec.stack_bidirectional = bidirectional && !v.unstacked;
  if (bidirectional) EXPECT_EQ(fx.meta_int("stack_bidirectional"), 1);
  spec.input_size = fx.meta_int("D");
  spec.dtype = dtype;
  spec.time_major = false;
  spec.algorithm = v.algorithm;
  return spec;
}

/// Input width of layer `layer` of direction `dir`.
int64_t layer_input_size(const dynrnn::RnnSpec& spec, int dir, int layer) {
  if (layer == 0) return spec.input_size;
  if (spec.stack_bidirectional) return spec.cells_fw[layer - 1].num_units + spec.cells_bw[layer - 1].num_units;
  return (dir == 0 ? spec.cells_fw : spec.cells_bw)[layer - 1].num_units;
}

/// The first parameter of (dir, layer) in the flat table; checks that the layer's parameters are
/// contiguous and hold as many values as Keras' three arrays.
const dynrnn::ParamInfo* layer_start(const dynrnn::Rnn& rnn, int dir, int layer, int64_t keras_count) {
  const dynrnn::ParamInfo* first = nullptr;
  int64_t end = 0, count = 0;
  for (const dynrnn::ParamInfo& p : rnn.params()) {
    if (p.direction != dir || p.layer != layer) continue;
    if (!first) {
      first = &p;
    } else {
      EXPECT_EQ(p.offset, end) << p.name << ": the layer's parameters are not contiguous";
    }
    end = p.offset + p.count;
    count += p.count;
  }
  EXPECT_NE(first, nullptr) << "no parameters for direction " << dir << " layer " << layer;
  EXPECT_EQ(count, keras_count) << "direction " << dir << " layer " << layer;
  return first;
}

ref::Named leaves_of(const golden::Fixture& fx, const std::string& prefix) {
  ref::Named out;
  for (const auto& [name, t] : fx.tensors)
    if (name.rfind(prefix, 0) == 0) out[name.substr(prefix.size())] = t.values;
  return out;
}

/// Converts the fixture's Keras weights, runs forward + backward in T on v.backend, converts the
/// weight gradients back to Keras' layout and compares everything with Keras'.
template <typename T>
void expect_keras_matches(const std::string& path, const Variant& v, const std::string& category) {
  const golden::Fixture fx = golden::load_fixture(path);
  const dynrnn::DataType dtype = testing_support::dtype_of<T>();
  const dynrnn::RnnSpec spec = keras_spec(fx, dtype, v);
  std::unique_ptr<dynrnn::Rnn> rnn;
  dynrnn::Status st = dynrnn::Rnn::create(spec, v.backend, &rnn);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  const int64_t T_ = fx.meta_int("T"), B = fx.meta_int("B"), D = fx.meta_int("D");
  const bool has_init = fx.meta_int("has_initial_state") != 0;
  ASSERT_EQ(fx.at("x").dims, (std::vector<int64_t>{B, T_, D}));

  CallBuffers<T> c(*rnn, T_, B, /*time_major_layout=*/false);
  ASSERT_TRUE(c.ok()) << c.error;
  c.x = testing_support::cast<T>(fx.at("x").values);
  if (fx.meta_int("has_seq_len")) {
    for (double n : fx.at("seq_len").values) c.len.push_back(static_cast<int32_t>(n));
  }
  if (has_init) c.init = testing_support::pack_state<T>(*rnn, leaves_of(fx, "init/"), B);

  // Keras weights -> the flat TF-layout weights, one layer at a time.
  struct Layer {
    int dir, layer;
    CellSpec cell;
    int64_t input_size, offset;
    std::vector<int64_t> counts;  // of kernel, recurrent_kernel, bias
  };
  std::vector<Layer> layers;
  c.w.assign(static_cast<size_t>(rnn->param_count()), T(NAN));
  for (int d = 0; d < (spec.bidirectional() ? 2 : 1); ++d) {
    const std::vector<CellSpec>& cells = d == 0 ? spec.cells_fw : spec.cells_bw;
    for (int l = 0; l < static_cast<int>(cells.size()); ++l) {
      const std::string prefix = std::string(d == 0 ? "fw/" : "bw/") + std::to_string(l) + "/";
      Layer L{d, l, cells[l], layer_input_size(spec, d, l), 0, {}};
      std::vector<std::vector<T>> keras;
      int64_t total = 0;
      for (const char* w : kWeights) {
        keras.push_back(testing_support::cast<T>(fx.at(prefix + w).values));
        L.counts.push_back(static_cast<int64_t>(keras.back().size()));
        total += L.counts.back();
      }
      const dynrnn::ParamInfo* first = layer_start(*rnn, d, l, total);
      ASSERT_NE(first, nullptr);
      L.offset = first->offset;
      dynrnn::KerasLayerWeights<const T> in;
      in.kernel = keras[0].data();
      in.recurrent_kernel = keras[1].data();
      in.bias = keras[2].data();
      st = dynrnn::keras_to_tf<T>(L.cell, L.input_size, in, c.w.data() + L.offset);
      ASSERT_TRUE(st.is_ok()) << prefix << ": keras_to_tf: " << st.to_string();
      layers.push_back(L);
    }
  }
  for (size_t i = 0; i < c.w.size(); ++i) ASSERT_FALSE(std::isnan(double(c.w[i]))) << "weight " << i << " not set";

  ref::Upstream u;
  u.dout_fw = fx.at("dout/fw").values;
  if (spec.bidirectional()) u.dout_bw = fx.at("dout/bw").values;
  u.dfinal = leaves_of(fx, "dfinal/");
  c.set_upstream(*rnn, u);
  c.fill_results(T(NAN));

  std::unique_ptr<testing_support::DeviceCall<T>> device;
  if (v.backend == Backend::kCuda) device = std::make_unique<testing_support::DeviceCall<T>>(c);
  st = rnn->forward(device ? device->f : c.forward_args());
  if (device) device->results();
  ASSERT_TRUE(st.is_ok()) << "forward: " << st.to_string();
  st = rnn->backward(device ? device->b : c.backward_args());
  if (device) device->results();
  ASSERT_TRUE(st.is_ok()) << "backward: " << st.to_string();

  ref::Forward f;
  if (c.stacked) {
    const int64_t o_fw = rnn->output_width(0);
    f.out_fw = testing_support::column_block(testing_support::widen(c.out), c.out_width, 0, o_fw);
    f.out_bw = testing_support::column_block(testing_support::widen(c.out), c.out_width, o_fw, c.out_width - o_fw);
  } else {
    f.out_fw = testing_support::widen(c.out);
    f.out_bw = testing_support::widen(c.out_bw);
  }
  f.final_state = testing_support::unpack_state(*rnn, testing_support::widen(c.fin), B);
  ref::Gradients g;
  g.dx = testing_support::widen(c.dx);
  g.dinit = testing_support::unpack_state(*rnn, testing_support::widen(c.dinit), B);
  g.dw_fw.resize(spec.cells_fw.size());
  g.dw_bw.resize(spec.cells_bw.size());
  // Flat TF-layout weight gradients -> Keras' layout. A gradient has no forget-bias offset.
  for (const Layer& L : layers) {
    CellSpec grad_cell = L.cell;
    if (grad_cell.kind == CellKind::kLSTM || grad_cell.kind == CellKind::kBasicLSTM) grad_cell.forget_bias = 0.0;
    std::vector<std::vector<T>> keras;
    for (int64_t n : L.counts) keras.emplace_back(static_cast<size_t>(n), T(NAN));
    dynrnn::KerasLayerWeights<T> out;
    out.kernel = keras[0].data();
    out.recurrent_kernel = keras[1].data();
    out.bias = keras[2].data();
    st = dynrnn::tf_to_keras<T>(grad_cell, L.input_size, c.dw.data() + L.offset, out);
    ASSERT_TRUE(st.is_ok()) << "tf_to_keras: " << st.to_string();
    ref::Params& p = (L.dir == 0 ? g.dw_fw : g.dw_bw)[static_cast<size_t>(L.layer)];
    for (size_t i = 0; i < keras.size(); ++i) p[kWeights[i]] = testing_support::widen(keras[i]);
  }

  const bool f32 = dtype == dynrnn::DataType::kFloat32;
  const ref::Tolerance tol = ref::fixture_tolerance(fx.meta_str("dtype"), f32);
  const std::string who = fx.name + " (" + testing_support::dtype_name(dtype) + ")";
  const ref::CompareSummary s =
      ref::compare_with_fixture(fx, f, g, has_init, tol, who, category + ", " + fx.meta_str("dtype") + " fixtures");
  EXPECT_GT(s.compared, 0);
}

bool has_lstm(const golden::Fixture& fx) {
  for (const golden::CellLine& c : fx.cells)
    if (attr(c, "keras_layer") == "LSTM") return true;
  return false;
}

bool single_bidirectional(const golden::Fixture& fx) {
  return fx.meta_int("bidirectional") != 0 && fx.meta_int("layers_fw") == 1;
}

/// The Keras fixtures that `keep` accepts (none if one does not load: KerasLayers reports that).
std::vector<std::string> keras_fixture_paths(bool (*keep)(const golden::Fixture&)) {
  std::vector<std::string> out;
  try {
    for (const std::string& p : keras_fixture_paths())
      if (keep(golden::load_fixture(p))) out.push_back(p);
  } catch (const std::exception&) {
  }
  return out;
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  return ref::fixture_test_name(info.param);
}

// ---- CPU -----------------------------------------------------------------------------------------

TEST(KerasFixtures, PresentAndApartFromTheDynamicRnnFixtures) {
  const std::vector<std::string> paths = keras_fixture_paths();
  EXPECT_GE(paths.size(), 7u) << "Keras fixtures in " << kKerasDir;
  for (const std::string& p : paths) {
    const golden::Fixture fx = golden::load_fixture(p);
    EXPECT_EQ(fx.meta_str("format"), "keras") << p;
    EXPECT_EQ(fx.name.rfind("keras_", 0), 0u) << p;
  }
  // The dynamic_rnn suites read DYNRNN_GOLDEN_DIR/*.txt, not this subdirectory.
  for (const std::string& p : ref::golden_fixture_paths()) EXPECT_EQ(p.find("/keras/"), std::string::npos) << p;
}

class KerasLayers : public ::testing::TestWithParam<std::string> {};

TEST_P(KerasLayers, Float64) {
  expect_keras_matches<double>(GetParam(), Variant{}, "Keras layers, CPU float64");
}

TEST_P(KerasLayers, Float32) {
  expect_keras_matches<float>(GetParam(), Variant{}, "Keras layers, CPU float32");
}

INSTANTIATE_TEST_SUITE_P(Keras, KerasLayers, ::testing::ValuesIn(keras_fixture_paths()), test_name);

// LSTM layers also as BasicLSTMCell, and with a nonzero forget_bias on the dynrnn side (keras_to_tf
// takes it off the f bias, the cell adds it back; the gradients convert back with forget_bias 0).
class KerasLstmLayers : public ::testing::TestWithParam<std::string> {};

TEST_P(KerasLstmLayers, AsBasicLstmAndWithForgetBias) {
  Variant basic;
  basic.basic_lstm = true;
  expect_keras_matches<double>(GetParam(), basic, "Keras layers, CPU float64, variants");
  expect_keras_matches<float>(GetParam(), basic, "Keras layers, CPU float32, variants");
  for (bool b : {false, true}) {
    Variant fb;
    fb.basic_lstm = b;
    fb.forget_bias = 1.0;
    expect_keras_matches<double>(GetParam(), fb, "Keras layers, CPU float64, variants");
  }
}

INSTANTIATE_TEST_SUITE_P(Keras, KerasLstmLayers, ::testing::ValuesIn(keras_fixture_paths(has_lstm)), test_name);

// A single Bidirectional layer is also bidirectional_dynamic_rnn with two output buffers.
class KerasBidirectionalLayer : public ::testing::TestWithParam<std::string> {};

TEST_P(KerasBidirectionalLayer, AsBidirectionalDynamicRnn) {
  Variant v;
  v.unstacked = true;
  expect_keras_matches<double>(GetParam(), v, "Keras layers, CPU float64, variants");
  expect_keras_matches<float>(GetParam(), v, "Keras layers, CPU float32, variants");
}

INSTANTIATE_TEST_SUITE_P(Keras, KerasBidirectionalLayer, ::testing::ValuesIn(keras_fixture_paths(single_bidirectional)),
                         test_name);

// ---- CUDA (the emulated device in CI) ----------------------------------------------------------

class GpuKerasLayers : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuKerasLayers, Float64) {
  REQUIRE_GPU();
  Variant v;
  v.backend = Backend::kCuda;
  expect_keras_matches<double>(GetParam(), v, "Keras layers, CUDA float64");
}

TEST_P(GpuKerasLayers, Float32) {
  REQUIRE_GPU();
  Variant v;
  v.backend = Backend::kCuda;
  expect_keras_matches<float>(GetParam(), v, "Keras layers, CUDA float32");
}

TEST_P(GpuKerasLayers, Float32Persistent) {
  REQUIRE_GPU();
  Variant v;
  v.backend = Backend::kCuda;
  v.algorithm = dynrnn::RecurrentAlgorithm::kPersistent;
  expect_keras_matches<float>(GetParam(), v, "Keras layers, CUDA float32 persistent");
}

// The prefix starts with "Gpu" so that the emulated test binary's filter ("Gpu*:...") selects it.
INSTANTIATE_TEST_SUITE_P(GpuKeras, GpuKerasLayers, ::testing::ValuesIn(keras_fixture_paths()), test_name);

}  // namespace

// NaN and Inf, in padded and in valid positions: what reaches outputs, states and gradients.
//
// Pins what the library does (CPU backend; float32 and float64, and for padded inputs also the
// 16-bit types), against README "Intentional divergence": steps past a row's length are computed
// and discarded, so NaN/Inf there never reach outputs or states; a finished row's pre-activation
// gradient is exactly zero, so NaN/Inf in padded inputs reach only weight gradients — the rows of
// the kernels that multiply the padded values — never the state or input gradients. Each test
// compares a run with special values against the same run with ordinary values, bit for bit, and
// lists every element that changed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "call_buffers.h"
#include "dtype_support.h"
#include "dynrnn/rnn.h"

namespace {

using dynrnn::Backend;
using dynrnn::CellSpec;
using dynrnn::Rnn;
using dynrnn::RnnSpec;
using testing_support::cast;
using testing_support::widen;

/// Inputs and results of one forward + backward (double storage; T is the run's element type).
struct Trial {
  std::vector<double> x, init, dout, dout_bw, dfin;
  std::vector<double> out, out_bw, fin, dx, dinit, dw;
};

struct Problem {
  RnnSpec spec;
  int64_t T = 5, B = 4;
  std::vector<int32_t> len;  ///< empty: no sequence_length
  std::vector<double> w;

  int64_t D() const { return spec.input_size; }
  /// Element index of x[b, t, d] (or outputs with width `width`) in the caller's layout.
  int64_t at(int64_t b, int64_t t, int64_t width, int64_t d) const {
    return (spec.time_major ? (t * B + b) : (b * T + t)) * width + d;
  }
  int64_t length(int64_t b) const {
    if (len.empty()) return T;
    return len[b] < 0 ? 0 : (len[b] > T ? T : len[b]);
  }
};

uint64_t bits(double v) {
  uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
}
bool same(double a, double b) {
  return bits(a) == bits(b);
}

/// Deterministic small values.
std::vector<double> values(size_t n, double scale, uint64_t seed) {
  std::vector<double> v(n);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (double& x : v) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    x = scale * (static_cast<double>(s >> 11) / 9007199254740992.0 * 2 - 1);
  }
  return v;
}

/// Fills r's inputs with ordinary values for problem p.
void ordinary_inputs(const Problem& p, const Rnn& rnn, Trial& r) {
  r.x = values(p.T * p.B * p.D(), 1.0, 1);
  r.init = values(p.B * rnn.state_width(), 0.5, 2);
  r.dout = values(p.T * p.B * rnn.output_width(0), 1.0, 3);
  r.dout_bw = p.spec.bidirectional() ? values(p.T * p.B * rnn.output_width(1), 1.0, 4) : std::vector<double>();
  r.dfin = values(p.B * rnn.state_width(), 1.0, 5);
}

template <typename T>
void run(const Problem& p, Rnn& rnn, Trial& r) {
  testing_support::CallBuffers<T> c(rnn, p.T, p.B, p.spec.time_major);
  ASSERT_TRUE(c.ok()) << c.error;
  c.x = cast<T>(r.x);
  c.w = cast<T>(p.w);
  c.init = cast<T>(r.init);
  c.len = p.len;
  const dynrnn::Status fs = rnn.forward(c.forward_args());
  ASSERT_TRUE(fs.is_ok()) << fs.to_string();
  c.dout = cast<T>(r.dout);
  c.dout_bw = cast<T>(r.dout_bw);
  c.dfin = cast<T>(r.dfin);
  const dynrnn::Status bs = rnn.backward(c.backward_args());
  ASSERT_TRUE(bs.is_ok()) << bs.to_string();
  r.out = widen(c.out);
  r.out_bw = widen(c.out_bw);
  r.fin = widen(c.fin);
  r.dx = widen(c.dx);
  r.dinit = widen(c.dinit);
  r.dw = widen(c.dw);
}

/// Indices where two result vectors differ bitwise.
std::vector<int64_t> differing(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<int64_t> d;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!same(a[i], b[i])) d.push_back(static_cast<int64_t>(i));
  }
  return d;
}

/// The weight parameter (name, row) holding flat element i.
std::string param_of(const Rnn& rnn, int64_t i, int64_t* row = nullptr) {
  for (const dynrnn::ParamInfo& p : rnn.params()) {
    if (i >= p.offset && i < p.offset + p.count) {
      const int64_t cols = p.shape.size() == 2 ? p.shape[1] : p.count;
      if (row) *row = (i - p.offset) / cols;
      return p.name;
    }
  }
  return "?";
}

/// The configurations: every cell kind, projection, peepholes, stacks, both directions and layouts,
/// lengths 0, partial and full (no clips; clip_by_value and relu with NaN are tested separately).
std::vector<Problem> configurations() {
  std::vector<Problem> ps;
  auto add = [&](std::vector<CellSpec> fw, std::vector<CellSpec> bw, bool time_major) {
    Problem p;
    p.spec.cells_fw = std::move(fw);
    p.spec.cells_bw = std::move(bw);
    p.spec.input_size = 3;
    p.spec.time_major = time_major;
    p.spec.parallel_iterations = 2;  // several chunks
    p.len = {5, 2, 0, 3};
    ps.push_back(p);
  };
  CellSpec lstm = CellSpec::lstm(3);
  lstm.use_peepholes = true;
  lstm.num_proj = 2;
  add({lstm, CellSpec::gru(2)}, {}, false);
  add({CellSpec::gru(3)}, {CellSpec::basic_lstm(2), CellSpec::basic_rnn(2)}, true);
  add({CellSpec::basic_rnn(4)}, {CellSpec::gru(2)}, false);
  add({CellSpec::gru_reset_after(3)}, {CellSpec::gru_reset_after(2)}, true);
  add({CellSpec::basic_lstm(2), CellSpec::lstm(3)}, {}, true);
  return ps;
}

template <typename T>
void prepare(Problem& p, std::unique_ptr<Rnn>* rnn) {
  p.spec.dtype = testing_support::dtype_of<T>();
  ASSERT_TRUE(Rnn::create(p.spec, Backend::kCpu, rnn).is_ok());
  p.w = values((*rnn)->param_count(), 0.6, 6);
}

/// Marks every padded position of input column 1 with `special`.
Trial with_padded_column(const Problem& p, Trial r, double special) {
  for (int64_t b = 0; b < p.B; ++b) {
    for (int64_t t = p.length(b); t < p.T; ++t) r.x[p.at(b, t, p.D(), 1)] = special;
  }
  return r;
}

/// "name row r" of every weight-gradient element that differs between two runs.
std::set<std::string> changed_rows(const Rnn& rnn, const Trial& clean, const Trial& dirty, bool* all_nan) {
  std::set<std::string> rows;
  *all_nan = true;
  for (int64_t i : differing(clean.dw, dirty.dw)) {
    int64_t row = -1;
    const std::string name = param_of(rnn, i, &row);
    rows.insert(name + " row " + std::to_string(row));
    *all_nan = *all_nan && std::isnan(dirty.dw[i]);
  }
  return rows;
}

std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const std::string& e : s) out += "  " + e + "\n";
  return out;
}

/// NaN/Inf in padded inputs (x at t >= length, input column 1). What the library does, pinned:
///  * outputs, final states, grad_inputs and grad_initial_state are bit for bit those of a clean run
///    (and grad_inputs is exactly 0 at padded positions);
///  * weight gradients: the layer-0 kernel rows that multiply column 1 become NaN (x^T dz with
///    0 x NaN = NaN: kernel, gates/kernel, candidate/kernel row 1, both directions);
///  * with NaN (not with +-Inf, which saturate the gates to finite values) also two more products
///    over all steps of a chunk see the padded steps' discarded activations: an LSTM's projection
///    kernel (m_raw^T dm_p, every row) and a GRU's candidate kernel rows that multiply r*h
///    ((r*h)^T dz_c) — the README's "Intentional divergence" paragraph names only x^T dz.
template <typename T>
void padded_inputs() {
  for (Problem p : configurations()) {
    std::unique_ptr<Rnn> rnn;
    prepare<T>(p, &rnn);
    SCOPED_TRACE(std::string("cells ") + rnn->params().front().name +
                 (p.spec.bidirectional() ? " (bidirectional)" : ""));
    Trial clean;
    ordinary_inputs(p, *rnn, clean);
    std::set<std::string> input_rows, nan_rows;
    for (const dynrnn::ParamInfo& info : rnn->params()) {
      if (info.layer != 0) continue;
      const int64_t D = p.D();
      if (info.local_name == "kernel" || info.local_name == "gates/kernel" || info.local_name == "candidate/kernel") {
        input_rows.insert(info.name + " row 1");
      }
      if (info.local_name == "candidate/kernel") {
        for (int64_t r = D; r < info.shape[0]; ++r) nan_rows.insert(info.name + " row " + std::to_string(r));
      }
      if (info.local_name == "projection/kernel") {
        for (int64_t r = 0; r < info.shape[0]; ++r) nan_rows.insert(info.name + " row " + std::to_string(r));
      }
    }
    nan_rows.insert(input_rows.begin(), input_rows.end());
    run<T>(p, *rnn, clean);
    for (double special : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                           -std::numeric_limits<double>::infinity()}) {
      SCOPED_TRACE("padded value " + std::to_string(special));
      Trial dirty = with_padded_column(p, clean, special);
      run<T>(p, *rnn, dirty);
      EXPECT_TRUE(differing(clean.out, dirty.out).empty()) << "padded NaN/Inf reached outputs";
      EXPECT_TRUE(differing(clean.out_bw, dirty.out_bw).empty()) << "padded NaN/Inf reached outputs_bw";
      EXPECT_TRUE(differing(clean.fin, dirty.fin).empty()) << "padded NaN/Inf reached final_state";
      EXPECT_TRUE(differing(clean.dx, dirty.dx).empty()) << "padded NaN/Inf reached grad_inputs";
      EXPECT_TRUE(differing(clean.dinit, dirty.dinit).empty()) << "padded NaN/Inf reached grad_initial_state";
      for (int64_t b = 0; b < p.B; ++b) {
        for (int64_t t = p.length(b); t < p.T; ++t) {
          for (int64_t d = 0; d < p.D(); ++d) EXPECT_EQ(dirty.dx[p.at(b, t, p.D(), d)], 0.0) << "padded grad_inputs";
        }
      }
      bool all_nan = false;
      const std::set<std::string> rows = changed_rows(*rnn, clean, dirty, &all_nan);
      EXPECT_TRUE(all_nan) << "a weight gradient changed to something other than NaN";
      EXPECT_EQ(join(rows), join(std::isnan(special) ? nan_rows : input_rows))
          << "the weight-gradient rows that padded " << special << " reaches";
    }
  }
}

TEST(NanInf, PaddedInputsReachOnlyWeightGradientsFloat32) {
  padded_inputs<float>();
}
TEST(NanInf, PaddedInputsReachOnlyWeightGradientsFloat64) {
  padded_inputs<double>();
}
TEST(NanInf, PaddedInputsReachOnlyWeightGradientsBFloat16) {
  padded_inputs<dynrnn::bfloat16>();
}
TEST(NanInf, PaddedInputsReachOnlyWeightGradientsFloat16) {
  padded_inputs<dynrnn::float16>();
}

/// Upstream gradients at padded positions (dL/d outputs at t >= length) are ignored entirely: NaN
/// there changes no gradient bit (the outputs there are constant zeros).
TEST(NanInf, PaddedUpstreamGradientsAreIgnored) {
  for (Problem p : configurations()) {
    std::unique_ptr<Rnn> rnn;
    prepare<float>(p, &rnn);
    SCOPED_TRACE(rnn->params().front().name);
    Trial clean;
    ordinary_inputs(p, *rnn, clean);
    Trial dirty = clean;
    for (int64_t b = 0; b < p.B; ++b) {
      for (int64_t t = p.length(b); t < p.T; ++t) {
        for (int64_t o = 0; o < rnn->output_width(0); ++o) dirty.dout[p.at(b, t, rnn->output_width(0), o)] = NAN;
        for (int64_t o = 0; o < rnn->output_width(1); ++o)
          dirty.dout_bw[p.at(b, t, rnn->output_width(1), o)] = -INFINITY;
      }
    }
    run<float>(p, *rnn, clean);
    run<float>(p, *rnn, dirty);
    EXPECT_TRUE(differing(clean.dx, dirty.dx).empty());
    EXPECT_TRUE(differing(clean.dinit, dirty.dinit).empty());
    EXPECT_TRUE(differing(clean.dw, dirty.dw).empty());
  }
}

/// NaN in one valid input x[b0 = 0, t0 = 1, d = 0] (tanh and sigmoid propagate NaN; no clips):
///  * forward: row b0's outputs are NaN (every unit) from t0 up to its length, bit for bit the clean
///    ones before t0, and 0 after its length; its final state is NaN; every other row is bit for
///    bit the clean run's (the GEMMs never mix rows);
///  * backward: row b0's grad_inputs are NaN at every valid step (the gradient flows back from t0
///    and forward steps read NaN activations) and 0 at padded steps; its grad_initial_state is NaN;
///    other rows' grad_inputs and grad_initial_state are bit for bit the clean ones; weight
///    gradients, which sum over rows, contain NaN.
TEST(NanInf, NaNInAValidInputStaysInItsRow) {
  for (Problem p : configurations()) {
    std::unique_ptr<Rnn> rnn;
    prepare<double>(p, &rnn);
    SCOPED_TRACE(rnn->params().front().name);
    ASSERT_GE(p.length(0), 3);
    Trial clean;
    ordinary_inputs(p, *rnn, clean);
    Trial dirty = clean;
    const int64_t t0 = 1, L = p.length(0);
    dirty.x[p.at(0, t0, p.D(), 0)] = NAN;
    run<double>(p, *rnn, clean);
    run<double>(p, *rnn, dirty);
    for (int d = 0; d < (p.spec.bidirectional() ? 2 : 1); ++d) {
      const std::vector<double>& o = d == 0 ? dirty.out : dirty.out_bw;
      const std::vector<double>& oc = d == 0 ? clean.out : clean.out_bw;
      const int64_t O = rnn->output_width(d);
      for (int64_t b = 0; b < p.B; ++b) {
        for (int64_t t = 0; t < p.T; ++t) {
          for (int64_t k = 0; k < O; ++k) {
            const int64_t i = p.at(b, t, O, k);
            // The backward direction runs t = L-1 .. 0: NaN reaches t <= t0.
            const bool poisoned = b == 0 && t < L && (d == 0 ? t >= t0 : t <= t0);
            if (poisoned) {
              EXPECT_TRUE(std::isnan(o[i])) << "direction " << d << " b=" << b << " t=" << t;
            } else {
              EXPECT_TRUE(same(o[i], oc[i])) << "direction " << d << " b=" << b << " t=" << t;
            }
          }
        }
      }
    }
    const int64_t S = rnn->state_width();
    for (int64_t b = 0; b < p.B; ++b) {
      for (const dynrnn::StateLeaf& leaf : rnn->state_layout()) {
        for (int64_t k = 0; k < leaf.width; ++k) {
          const int64_t i = p.B * leaf.column_offset + b * leaf.width + k;
          if (b == 0) {
            EXPECT_TRUE(std::isnan(dirty.fin[i])) << leaf.name;
            EXPECT_TRUE(std::isnan(dirty.dinit[i])) << leaf.name;
          } else {
            EXPECT_TRUE(same(dirty.fin[i], clean.fin[i])) << leaf.name << " b=" << b;
            EXPECT_TRUE(same(dirty.dinit[i], clean.dinit[i])) << leaf.name << " b=" << b;
          }
        }
      }
    }
    (void)S;
    for (int64_t b = 0; b < p.B; ++b) {
      for (int64_t t = 0; t < p.T; ++t) {
        for (int64_t k = 0; k < p.D(); ++k) {
          const int64_t i = p.at(b, t, p.D(), k);
          if (b == 0 && t < L) {
            EXPECT_TRUE(std::isnan(dirty.dx[i])) << "grad_inputs t=" << t;
          } else {
            EXPECT_TRUE(same(dirty.dx[i], clean.dx[i])) << "grad_inputs b=" << b << " t=" << t;
          }
        }
      }
    }
    bool any_nan = false;
    for (double g : dirty.dw) any_nan = any_nan || std::isnan(g);
    EXPECT_TRUE(any_nan);
  }
}

/// +Inf in a valid input follows IEEE arithmetic: tanh and sigmoid saturate, so outputs can stay
/// finite, and so do the input gradients (the saturated derivative is 0); but the weight gradient
/// of the kernel row that multiplies it is Inf x 0 = NaN. BasicRNNCell(1), D = 1, positive kernel.
TEST(NanInf, InfInAValidInputSaturates) {
  RnnSpec spec;
  spec.cells_fw = {CellSpec::basic_rnn(1)};
  spec.input_size = 1;
  spec.dtype = dynrnn::DataType::kFloat64;
  std::unique_ptr<Rnn> rnn;
  ASSERT_TRUE(Rnn::create(spec, Backend::kCpu, &rnn).is_ok());
  Problem p;
  p.spec = spec;
  p.T = 3;
  p.B = 1;
  p.w = {0.5, 0.3, 0.1};  // kernel [x; h] = [0.5; 0.3], bias 0.1
  Trial r;
  r.x = {0.2, INFINITY, -0.4};
  r.init = {0.0};
  r.dout = {1.0, 1.0, 1.0};
  r.dfin = {0.0};
  run<double>(p, *rnn, r);
  EXPECT_EQ(r.out[1], 1.0);  // tanh(+Inf)
  for (double v : r.out) EXPECT_TRUE(std::isfinite(v));
  for (double v : r.dx) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(r.dx[1], 0.0);
  EXPECT_TRUE(std::isnan(r.dw[0])) << "kernel row of x: sum of x * dz includes Inf * 0";
  EXPECT_TRUE(std::isfinite(r.dw[1]) && std::isfinite(r.dw[2])) << "recurrent row and bias stay finite";
}

/// NaN in the initial state of a row of length 0 is copied to its final state bit for bit, and its
/// grad_final_state to its grad_initial_state; other rows and all outputs are untouched. The
/// discarded steps of that row do compute with NaN h, so weight gradients that multiply the carried
/// state (recurrent kernel rows: h^T dz with dz = 0 there; peepholes; projections) become NaN — the
/// same mechanism as padded inputs, through the state instead of x. Biases and input rows do not.
TEST(NanInf, NaNStateOfAFinishedRowIsCarriedNotSpread) {
  for (Problem p : configurations()) {
    std::unique_ptr<Rnn> rnn;
    prepare<float>(p, &rnn);
    SCOPED_TRACE(rnn->params().front().name);
    ASSERT_EQ(p.length(2), 0);
    Trial clean;
    ordinary_inputs(p, *rnn, clean);
    Trial dirty = clean;
    for (const dynrnn::StateLeaf& leaf : rnn->state_layout()) {
      for (int64_t k = 0; k < leaf.width; ++k) {
        dirty.init[p.B * leaf.column_offset + 2 * leaf.width + k] = NAN;
        dirty.dfin[p.B * leaf.column_offset + 2 * leaf.width + k] = -INFINITY;
      }
    }
    run<float>(p, *rnn, clean);
    run<float>(p, *rnn, dirty);
    EXPECT_TRUE(differing(clean.out, dirty.out).empty());
    EXPECT_TRUE(differing(clean.out_bw, dirty.out_bw).empty());
    EXPECT_TRUE(differing(clean.dx, dirty.dx).empty());
    for (size_t i = 0; i < dirty.fin.size(); ++i) {
      const bool row2 = [&] {
        for (const dynrnn::StateLeaf& leaf : rnn->state_layout()) {
          const int64_t lo = p.B * leaf.column_offset + 2 * leaf.width;
          if (static_cast<int64_t>(i) >= lo && static_cast<int64_t>(i) < lo + leaf.width) return true;
        }
        return false;
      }();
      if (row2) {
        EXPECT_TRUE(same(dirty.fin[i], dirty.init[i])) << "final state of the length-0 row";
        EXPECT_TRUE(same(dirty.dinit[i], dirty.dfin[i])) << "grad_initial_state of the length-0 row";
      } else {
        EXPECT_TRUE(same(dirty.fin[i], clean.fin[i]));
        EXPECT_TRUE(same(dirty.dinit[i], clean.dinit[i]));
      }
    }
    // Weight gradients: only products with the carried state change (to NaN): recurrent kernel rows,
    // peepholes (dpeep = df * c), projections (m_raw), never a row that multiplies the layer input.
    for (int64_t i : differing(clean.dw, dirty.dw)) {
      int64_t row = -1;
      const std::string name = param_of(*rnn, i, &row);
      EXPECT_TRUE(std::isnan(dirty.dw[i])) << name;
      const dynrnn::ParamInfo* info = rnn->find_param(name);
      ASSERT_NE(info, nullptr);
      const bool input_rows =
          info->local_name == "kernel" || info->local_name == "gates/kernel" || info->local_name == "candidate/kernel";
      const int64_t in_width = info->layer == 0 ? p.D() : -1;  // upper layers: checked by value only
      if (input_rows && in_width > 0) {
        EXPECT_GE(row, in_width) << name << ": an input row changed";
      }
      EXPECT_NE(info->local_name, "bias") << name;
    }
  }
}

/// ReLU and clip_by_value propagate NaN, as TensorFlow's CPU kernels do (Eigen's max/min keep NaN):
/// NaN in a valid input of a ReLU BasicRNNCell gives NaN outputs, and an LSTMCell with cell_clip
/// gives a NaN state — a diverging run shows as NaN instead of being hidden behind finite values.
TEST(NanInf, ReluAndClipPropagateNaN) {
  {
    RnnSpec spec;
    spec.cells_fw = {CellSpec::basic_rnn(2, dynrnn::Activation::kRelu)};
    spec.input_size = 1;
    spec.dtype = dynrnn::DataType::kFloat64;
    std::unique_ptr<Rnn> rnn;
    ASSERT_TRUE(Rnn::create(spec, Backend::kCpu, &rnn).is_ok());
    Problem p;
    p.spec = spec;
    p.T = 2;
    p.B = 1;
    p.w = values(rnn->param_count(), 0.5, 9);
    Trial r;
    r.x = {NAN, 0.5};
    r.init = {0.1, 0.2};
    r.dout = {1, 1, 1, 1};
    r.dfin = {0, 0};
    run<double>(p, *rnn, r);
    EXPECT_TRUE(std::isnan(r.out[0])) << "relu(NaN) is NaN";
    EXPECT_TRUE(std::isnan(r.out[1])) << "the NaN state carries into the next step";
  }
  {
    RnnSpec spec;
    CellSpec lstm = CellSpec::lstm(2);
    lstm.cell_clip = 0.75;
    spec.cells_fw = {lstm};
    spec.input_size = 1;
    spec.dtype = dynrnn::DataType::kFloat64;
    std::unique_ptr<Rnn> rnn;
    ASSERT_TRUE(Rnn::create(spec, Backend::kCpu, &rnn).is_ok());
    Problem p;
    p.spec = spec;
    p.T = 1;
    p.B = 1;
    p.w = values(rnn->param_count(), 0.5, 10);
    Trial r;
    r.x = {NAN};
    r.init = {0, 0, 0, 0};
    r.dout = {1, 1};
    r.dfin = {0, 0, 0, 0};
    run<double>(p, *rnn, r);
    EXPECT_TRUE(std::isnan(r.fin[0])) << "c = clip(NaN) is NaN";
    EXPECT_TRUE(std::isnan(r.fin[1]));
    EXPECT_TRUE(std::isnan(r.fin[2])) << "h = o * tanh(c)";
  }
}

}  // namespace

// TF <-> cuDNN/PyTorch weight conversion: the cuDNN equations (spec §4.1), evaluated here with the
// converted weights, must reproduce the float64 reference's TF cells. In the 16-bit types the
// conversion must move exactly the values the float64 one moves and round its one sum once.
// Keras <-> TF: Keras' cell equations (tf.keras 2.18), written out here, must reproduce the
// library's CPU forward on the converted flat weights; round trips return the weights bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>

#include "call_buffers.h"
#include "dtype_support.h"
#include "dynrnn/weights.h"
#include "reference/reference.h"

namespace {

double sigm(double z) {
  return 1.0 / (1.0 + std::exp(-z));
}

/// cuDNN-form RNN over T steps, batch 1 each row independent: returns outputs [T, B, Hs].
std::vector<double> cudnn_forward(bool lstm, bool relu, int64_t T, int64_t B, int64_t D, int64_t H, int64_t P,
                                  const std::vector<double>& x, const std::vector<double>& w_ih,
                                  const std::vector<double>& w_hh, const std::vector<double>& b_ih,
                                  const std::vector<double>& b_hh, const std::vector<double>& w_hr) {
  const int64_t G = lstm ? 4 : 1, Hs = P > 0 ? P : H;
  std::vector<double> out;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> h(Hs, 0.0), c(H, 0.0);
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> z(G * H);
      for (int64_t r = 0; r < G * H; ++r) {
        double s = b_ih[r] + b_hh[r];
        for (int64_t d = 0; d < D; ++d) s += w_ih[r * D + d] * x[(b * T + t) * D + d];  // batch-major x
        for (int64_t k = 0; k < Hs; ++k) s += w_hh[r * Hs + k] * h[k];
        z[r] = s;
      }
      std::vector<double> m(H);
      for (int64_t j = 0; j < H; ++j) {
        if (!lstm) {
          m[j] = relu ? std::max(z[j], 0.0) : std::tanh(z[j]);
          continue;
        }
        const double i = sigm(z[j]), f = sigm(z[H + j]), g = std::tanh(z[2 * H + j]), o = sigm(z[3 * H + j]);
        c[j] = f * c[j] + i * g;
        m[j] = o * std::tanh(c[j]);
      }
      for (int64_t k = 0; k < Hs; ++k) {
        double v = m[k < H ? k : 0];
        if (P > 0) {
          v = 0;
          for (int64_t j = 0; j < H; ++j) v += w_hr[k * H + j] * m[j];
        }
        h[k] = v;
      }
      out.insert(out.end(), h.begin(), h.end());  // [B, T, Hs]
    }
  }
  return out;
}

/// One cell over T = 3 steps of B = 2 rows of depth D = 4, random weights and inputs.
ref::Problem one_cell_problem(const ref::Cell& rc, uint64_t seed) {
  std::mt19937_64 rng(seed);
  ref::Problem p;
  p.T = 3;
  p.B = 2;
  p.D = 4;
  p.fw = {rc};
  p.w_fw = {ref::random_params(rc, p.D, rng, 0.6)};
  std::uniform_real_distribution<double> u(-1, 1);
  for (int64_t i = 0; i < p.T * p.B * p.D; ++i) p.x.push_back(u(rng));
  return p;
}

void check_equivalence(const ref::Cell& rc, const dynrnn::CellSpec& spec) {
  const ref::Problem p = one_cell_problem(rc, 5);
  const int64_t T = p.T, B = p.B, D = p.D, H = rc.units, P = rc.num_proj, Hs = P > 0 ? P : H;
  const bool lstm = rc.kind != ref::CellKind::BasicRNN;
  const ref::Forward want = ref::forward(p);

  const int64_t GH = (lstm ? 4 : 1) * H;
  std::vector<double> w_ih(GH * D), w_hh(GH * Hs), b_ih(GH), b_hh(GH), w_hr(P * H);
  dynrnn::CudnnLayerWeights<double> cw{w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data(),
                                       P > 0 ? w_hr.data() : nullptr};
  const ref::Params& tf = p.w_fw[0];
  const double* proj = P > 0 ? tf.at("projection/kernel").data() : nullptr;
  ASSERT_TRUE(dynrnn::tf_to_cudnn<double>(spec, D, tf.at("kernel").data(), tf.at("bias").data(), proj, cw).is_ok());
  const std::vector<double> got = cudnn_forward(lstm, rc.relu, T, B, D, H, P, p.x, w_ih, w_hh, b_ih, b_hh, w_hr);
  ASSERT_EQ(got.size(), want.out_fw.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want.out_fw[i], 1e-12) << i;

  // And back: the TF weights return (up to the rounding of adding and removing forget_bias).
  std::vector<double> K(tf.at("kernel").size()), bias(GH), proj_back(P * H);
  dynrnn::CudnnLayerWeights<const double> ci{w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data(), w_hr.data()};
  ASSERT_TRUE(
      dynrnn::cudnn_to_tf<double>(spec, D, ci, K.data(), bias.data(), P > 0 ? proj_back.data() : nullptr).is_ok());
  EXPECT_EQ(K, tf.at("kernel"));
  for (int64_t r = 0; r < GH; ++r) EXPECT_NEAR(bias[r], tf.at("bias")[r], 1e-15);
  if (P > 0) {
    EXPECT_EQ(proj_back, tf.at("projection/kernel"));
  }
}

TEST(WeightConversion, LstmWithForgetBiasMatchesCudnnEquations) {
  ref::Cell c;
  c.kind = ref::CellKind::BasicLSTM;
  c.units = 3;
  c.forget_bias = 1.0;
  check_equivalence(c, dynrnn::CellSpec::basic_lstm(3, 1.0));
}

TEST(WeightConversion, LstmProjectionMatchesLstmp) {
  ref::Cell c;
  c.kind = ref::CellKind::LSTM;
  c.units = 4;
  c.num_proj = 2;
  c.forget_bias = 0.5;
  dynrnn::CellSpec s = dynrnn::CellSpec::lstm(4);
  s.num_proj = 2;
  s.forget_bias = 0.5;
  check_equivalence(c, s);
}

TEST(WeightConversion, BasicRnnReluMatchesRnnRelu) {
  ref::Cell c;
  c.kind = ref::CellKind::BasicRNN;
  c.units = 5;
  c.relu = true;
  check_equivalence(c, dynrnn::CellSpec::basic_rnn(5, dynrnn::Activation::kRelu));
}

/// cuDNN's GRU (PyTorch nn.GRU's documented equations, gate rows r, z, n) over T steps from zero
/// states: returns outputs [B, T, H].
std::vector<double> cudnn_gru_forward(int64_t T, int64_t B, int64_t D, int64_t H, const std::vector<double>& x,
                                      const std::vector<double>& w_ih, const std::vector<double>& w_hh,
                                      const std::vector<double>& b_ih, const std::vector<double>& b_hh) {
  std::vector<double> out;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> h(H, 0.0);
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> gi(3 * H), gh(3 * H);
      for (int64_t r = 0; r < 3 * H; ++r) {
        gi[r] = b_ih[r];
        gh[r] = b_hh[r];
        for (int64_t d = 0; d < D; ++d) gi[r] += w_ih[r * D + d] * x[(b * T + t) * D + d];  // batch-major x
        for (int64_t k = 0; k < H; ++k) gh[r] += w_hh[r * H + k] * h[k];
      }
      for (int64_t j = 0; j < H; ++j) {
        const double r = sigm(gi[j] + gh[j]), z = sigm(gi[H + j] + gh[H + j]);
        const double n = std::tanh(gi[2 * H + j] + r * gh[2 * H + j]);
        h[j] = (1 - z) * n + z * h[j];
      }
      out.insert(out.end(), h.begin(), h.end());
    }
  }
  return out;
}

TEST(WeightConversion, ResetAfterGruMatchesCudnnGruExactlyBothWays) {
  ref::Cell rc;
  rc.kind = ref::CellKind::GRUResetAfter;
  rc.units = 3;
  const ref::Problem p = one_cell_problem(rc, 7);
  const int64_t T = p.T, B = p.B, D = p.D, H = rc.units;
  const ref::Forward want = ref::forward(p);

  // The converter reads kernel and recurrent_kernel as one [D + H, 3H] block, as dynrnn stores them.
  const ref::Params& tf = p.w_fw[0];
  std::vector<double> K = tf.at("kernel");
  K.insert(K.end(), tf.at("recurrent_kernel").begin(), tf.at("recurrent_kernel").end());
  const std::vector<double>& bias = tf.at("bias");
  ASSERT_EQ(bias.size(), static_cast<size_t>(6 * H));
  std::vector<double> w_ih(3 * H * D), w_hh(3 * H * H), b_ih(3 * H), b_hh(3 * H);
  const dynrnn::CellSpec spec = dynrnn::CellSpec::gru_reset_after(H);
  ASSERT_TRUE(dynrnn::tf_to_cudnn<double>(spec, D, K.data(), bias.data(), nullptr,
                                          {w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data(), nullptr})
                  .is_ok());
  const std::vector<double> got = cudnn_gru_forward(T, B, D, H, p.x, w_ih, w_hh, b_ih, b_hh);
  ASSERT_EQ(got.size(), want.out_fw.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want.out_fw[i], 1e-12) << i;

  std::vector<double> K2(K.size()), bias2(bias.size());
  ASSERT_TRUE(dynrnn::cudnn_to_tf<double>(spec, D, {w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data(), nullptr},
                                          K2.data(), bias2.data(), nullptr)
                  .is_ok());
  EXPECT_EQ(K2, K);
  EXPECT_EQ(bias2, bias);  // the two biases map one to one: nothing is summed
}

/// tf_to_cudnn / cudnn_to_tf in T (bfloat16, float16) on TF weights already rounded to T: every
/// matrix entry is the float64 conversion's bit for bit (the conversion only moves values), b_hh is
/// 0, b_ih is the TF bias except on the forget rows, where it is bias + forget_bias rounded once to
/// T (the float32 addition may round too: 2^-24 more); with forget_bias 0 the way back returns the
/// TF weights bit for bit.
template <typename T>
void check_16bit_conversion(const ref::Cell& rc, dynrnn::CellSpec spec) {
  SCOPED_TRACE(testing_support::dtype_name(testing_support::dtype_of<T>()));
  const int64_t D = 4, H = rc.units, P = rc.num_proj, Hs = P > 0 ? P : H;
  const int64_t GH = (rc.kind == ref::CellKind::BasicRNN ? 1 : 4) * H;
  std::mt19937_64 rng(6);
  ref::Params tf = ref::random_params(rc, static_cast<int>(D), rng, 0.6);
  for (auto& kv : tf) testing_support::round_all<T>(kv.second);
  auto as_T = [](const std::vector<double>& v) { return std::vector<T>(v.begin(), v.end()); };
  const std::vector<T> K = as_T(tf.at("kernel")), b = as_T(tf.at("bias"));
  const std::vector<T> proj = P > 0 ? as_T(tf.at("projection/kernel")) : std::vector<T>();

  std::vector<double> w_ih(GH * D), w_hh(GH * Hs), b_ih(GH), b_hh(GH), w_hr(P * H);
  ASSERT_TRUE(dynrnn::tf_to_cudnn<double>(spec, D, tf.at("kernel").data(), tf.at("bias").data(),
                                          P > 0 ? tf.at("projection/kernel").data() : nullptr,
                                          {w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data(), w_hr.data()})
                  .is_ok());
  std::vector<T> w_ih16(w_ih.size()), w_hh16(w_hh.size()), b_ih16(GH), b_hh16(GH), w_hr16(w_hr.size());
  ASSERT_TRUE(dynrnn::tf_to_cudnn<T>(spec, D, K.data(), b.data(), P > 0 ? proj.data() : nullptr,
                                     {w_ih16.data(), w_hh16.data(), b_ih16.data(), b_hh16.data(), w_hr16.data()})
                  .is_ok());
  const std::vector<double> got_ih = testing_support::widen(w_ih16), got_hh = testing_support::widen(w_hh16),
                            got_hr = testing_support::widen(w_hr16);
  EXPECT_EQ(got_ih, w_ih);
  EXPECT_EQ(got_hh, w_hh);
  EXPECT_EQ(got_hr, w_hr);
  const double u = testing_support::unit_roundoff<T>();
  for (int64_t r = 0; r < GH; ++r) {
    EXPECT_EQ(static_cast<double>(b_hh16[r]), 0.0) << r;
    EXPECT_LE(std::fabs(static_cast<double>(b_ih16[r]) - b_ih[r]), (u + std::ldexp(1.0, -23)) * std::fabs(b_ih[r]))
        << "b_ih row " << r << ": " << static_cast<double>(b_ih16[r]) << " vs " << b_ih[r];
  }

  // forget_bias 0: cuDNN's biases are TF's, and the round trip is exact.
  spec.forget_bias = 0;
  ASSERT_TRUE(dynrnn::tf_to_cudnn<T>(spec, D, K.data(), b.data(), P > 0 ? proj.data() : nullptr,
                                     {w_ih16.data(), w_hh16.data(), b_ih16.data(), b_hh16.data(), w_hr16.data()})
                  .is_ok());
  std::vector<T> K2(K.size()), b2(b.size()), proj2(proj.size());
  ASSERT_TRUE(dynrnn::cudnn_to_tf<T>(spec, D,
                                     {w_ih16.data(), w_hh16.data(), b_ih16.data(), b_hh16.data(), w_hr16.data()},
                                     K2.data(), b2.data(), P > 0 ? proj2.data() : nullptr)
                  .is_ok());
  EXPECT_EQ(testing_support::widen(K2), tf.at("kernel"));
  EXPECT_EQ(testing_support::widen(b2), tf.at("bias"));
  if (P > 0) {
    EXPECT_EQ(testing_support::widen(proj2), tf.at("projection/kernel"));
  }
}

TEST(WeightConversion, SixteenBitTypesMoveValuesAndRoundTheForgetBiasOnce) {
  ref::Cell basic;
  basic.kind = ref::CellKind::BasicLSTM;
  basic.units = 3;
  ref::Cell projected;
  projected.kind = ref::CellKind::LSTM;
  projected.units = 4;
  projected.num_proj = 2;
  projected.forget_bias = 0.3;
  dynrnn::CellSpec projected_spec = dynrnn::CellSpec::lstm(4);
  projected_spec.num_proj = 2;
  projected_spec.forget_bias = 0.3;
  ref::Cell rnn;
  rnn.kind = ref::CellKind::BasicRNN;
  rnn.units = 5;
  check_16bit_conversion<dynrnn::bfloat16>(basic, dynrnn::CellSpec::basic_lstm(3, 1.0));
  check_16bit_conversion<dynrnn::float16>(basic, dynrnn::CellSpec::basic_lstm(3, 1.0));
  check_16bit_conversion<dynrnn::bfloat16>(projected, projected_spec);
  check_16bit_conversion<dynrnn::float16>(projected, projected_spec);
  check_16bit_conversion<dynrnn::bfloat16>(rnn, dynrnn::CellSpec::basic_rnn(5));
  check_16bit_conversion<dynrnn::float16>(rnn, dynrnn::CellSpec::basic_rnn(5));
}

TEST(WeightConversion, RejectsWhatCudnnCannotExpress) {
  std::vector<float> k(64), b(8), w(64);
  dynrnn::CudnnLayerWeights<float> cw{w.data(), w.data(), w.data(), w.data(), nullptr};
  dynrnn::Status st = dynrnn::tf_to_cudnn<float>(dynrnn::CellSpec::gru(2), 2, k.data(), b.data(), nullptr, cw);
  EXPECT_EQ(st.code(), dynrnn::StatusCode::kNotSupported);
  EXPECT_NE(st.message().find("reset gate before"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("kGRUResetAfter"), std::string::npos) << st.message();
  dynrnn::CellSpec peep = dynrnn::CellSpec::lstm(2);
  peep.use_peepholes = true;
  EXPECT_EQ(dynrnn::tf_to_cudnn<float>(peep, 2, k.data(), b.data(), nullptr, cw).code(),
            dynrnn::StatusCode::kNotSupported);
  EXPECT_EQ(dynrnn::tf_to_cudnn<float>(dynrnn::CellSpec::lstm(2), 2, nullptr, b.data(), nullptr, cw).code(),
            dynrnn::StatusCode::kInvalidValue);
}

// ---- Keras <-> TF ----

enum class KerasKind { kLstm, kGru, kGruResetAfter, kSimpleRnn };

const char* keras_name(KerasKind k) {
  switch (k) {
    case KerasKind::kLstm: return "LSTM";
    case KerasKind::kGru: return "GRU(reset_after=False)";
    case KerasKind::kGruResetAfter: return "GRU(reset_after=True)";
    case KerasKind::kSimpleRnn:
    default: return "SimpleRNN";
  }
}

/// One Keras layer's weights as Keras holds them (x @ kernel, gate column blocks of H).
struct KerasWeights {
  KerasKind kind = KerasKind::kLstm;
  int64_t D = 0, H = 0;
  bool relu = false;
  std::vector<double> kernel, recurrent_kernel, bias;  ///< bias empty: use_bias=False

  int64_t gates() const { return kind == KerasKind::kLstm ? 4 : (kind == KerasKind::kSimpleRnn ? 1 : 3); }
  int64_t bias_size() const { return (kind == KerasKind::kGruResetAfter ? 2 : 1) * gates() * H; }
  dynrnn::KerasLayerWeights<const double> view() const {
    return {kernel.data(), recurrent_kernel.data(), bias.empty() ? nullptr : bias.data()};
  }
};

KerasWeights random_keras(KerasKind kind, int64_t D, int64_t H, bool relu, bool use_bias, std::mt19937_64& rng) {
  KerasWeights w;
  w.kind = kind;
  w.D = D;
  w.H = H;
  w.relu = relu;
  std::uniform_real_distribution<double> u(-0.6, 0.6);
  auto fill = [&](std::vector<double>& v, int64_t n) {
    v.resize(static_cast<size_t>(n));
    for (double& e : v) e = u(rng);
  };
  fill(w.kernel, D * w.gates() * H);
  fill(w.recurrent_kernel, H * w.gates() * H);
  if (use_bias) fill(w.bias, w.bias_size());
  return w;
}

/// Keras' cells (tf.keras 2.18 LSTMCell, GRUCell, SimpleRNNCell; recurrent_activation sigmoid) over
/// T steps of B rows of x [B, T, D] from the states h [B, H] and c [B, H] (LSTM), which end as the
/// final states: returns the outputs [B, T, H].
std::vector<double> keras_forward(const KerasWeights& w, int64_t T, int64_t B, const std::vector<double>& x,
                                  std::vector<double>* h_state, std::vector<double>* c_state) {
  const int64_t D = w.D, H = w.H, GW = w.gates() * H;
  auto act = [&](double v) { return w.relu ? std::max(v, 0.0) : std::tanh(v); };
  auto b_in = [&](int64_t j) { return w.bias.empty() ? 0.0 : w.bias[j]; };
  auto b_rec = [&](int64_t j) { return w.bias.empty() ? 0.0 : w.bias[GW + j]; };  // reset_after only
  std::vector<double> out(static_cast<size_t>(B * T * H));
  for (int64_t b = 0; b < B; ++b) {
    double* h = h_state->data() + b * H;
    double* c = w.kind == KerasKind::kLstm ? c_state->data() + b * H : nullptr;
    for (int64_t t = 0; t < T; ++t) {
      // xk = x @ kernel, hr = h @ recurrent_kernel, both [GW]
      std::vector<double> xk(GW, 0.0), hr(GW, 0.0), hn(H);
      for (int64_t j = 0; j < GW; ++j) {
        for (int64_t d = 0; d < D; ++d) xk[j] += x[(b * T + t) * D + d] * w.kernel[d * GW + j];
        for (int64_t k = 0; k < H; ++k) hr[j] += h[k] * w.recurrent_kernel[k * GW + j];
      }
      if (w.kind == KerasKind::kLstm) {  // columns i, f, c, o
        for (int64_t j = 0; j < H; ++j) {
          const double i = sigm(xk[j] + hr[j] + b_in(j)), f = sigm(xk[H + j] + hr[H + j] + b_in(H + j));
          const double cc = act(xk[2 * H + j] + hr[2 * H + j] + b_in(2 * H + j));
          const double o = sigm(xk[3 * H + j] + hr[3 * H + j] + b_in(3 * H + j));
          c[j] = f * c[j] + i * cc;
          hn[j] = o * act(c[j]);
        }
      } else if (w.kind == KerasKind::kGru) {  // columns z, r, h; the reset gate scales h before R_h
        std::vector<double> r(H);
        for (int64_t k = 0; k < H; ++k) r[k] = sigm(xk[H + k] + hr[H + k] + b_in(H + k));
        for (int64_t j = 0; j < H; ++j) {
          const double z = sigm(xk[j] + hr[j] + b_in(j));
          double s = xk[2 * H + j] + b_in(2 * H + j);
          for (int64_t k = 0; k < H; ++k) s += r[k] * h[k] * w.recurrent_kernel[k * GW + 2 * H + j];
          hn[j] = z * h[j] + (1 - z) * act(s);
        }
      } else if (w.kind == KerasKind::kGruResetAfter) {  // the reset gate scales h R_h + b_rec
        for (int64_t j = 0; j < H; ++j) {
          const double z = sigm(xk[j] + b_in(j) + hr[j] + b_rec(j));
          const double r = sigm(xk[H + j] + b_in(H + j) + hr[H + j] + b_rec(H + j));
          const double hh = act(xk[2 * H + j] + b_in(2 * H + j) + r * (hr[2 * H + j] + b_rec(2 * H + j)));
          hn[j] = z * h[j] + (1 - z) * hh;
        }
      } else {
        for (int64_t j = 0; j < H; ++j) hn[j] = act(xk[j] + hr[j] + b_in(j));
      }
      std::copy(hn.begin(), hn.end(), h);
      std::copy(hn.begin(), hn.end(), out.begin() + (b * T + t) * H);
    }
  }
  return out;
}

std::unique_ptr<dynrnn::Rnn> one_layer_rnn(const dynrnn::CellSpec& spec, int64_t D, dynrnn::DataType dtype) {
  dynrnn::RnnSpec rs;
  rs.cells_fw = {spec};
  rs.input_size = D;
  rs.dtype = dtype;
  std::unique_ptr<dynrnn::Rnn> rnn;
  const dynrnn::Status st = dynrnn::Rnn::create(rs, dynrnn::Backend::kCpu, &rnn);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return rnn;
}

/// keras_to_tf into the flat weights of a one-layer Rnn of `spec`, which must fill exactly the
/// layer's param_count() values; then the library's CPU forward over T steps of B = 2 rows from a
/// random initial state must give Keras' outputs and final state.
void check_keras_equivalence(KerasKind kind, const dynrnn::CellSpec& spec, int64_t T, bool use_bias) {
  SCOPED_TRACE(
      std::string(keras_name(kind)) + " T=" + std::to_string(T) + " forget_bias=" + std::to_string(spec.forget_bias) +
      (spec.activation == dynrnn::Activation::kRelu ? " relu" : " tanh") + (use_bias ? "" : " use_bias=False"));
  const int64_t D = 4, H = 3, B = 2;
  std::mt19937_64 rng(11 + T);
  const KerasWeights kw = random_keras(kind, D, H, spec.activation == dynrnn::Activation::kRelu, use_bias, rng);
  const std::unique_ptr<dynrnn::Rnn> rnn = one_layer_rnn(spec, D, dynrnn::DataType::kFloat64);
  ASSERT_TRUE(rnn);
  ASSERT_EQ(rnn->params().front().offset, 0);

  // The layer's parameters, and nothing after them: a guard of NaNs must survive.
  const int64_t n = rnn->param_count(), guard = 8;
  std::vector<double> w(static_cast<size_t>(n + guard), std::numeric_limits<double>::quiet_NaN());
  const dynrnn::Status st = dynrnn::keras_to_tf<double>(spec, D, kw.view(), w.data());
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  for (int64_t i = 0; i < n; ++i) EXPECT_FALSE(std::isnan(w[i])) << "parameter " << i << " not written";
  for (int64_t i = n; i < n + guard; ++i) EXPECT_TRUE(std::isnan(w[i])) << "wrote past the layer at " << i;
  w.resize(static_cast<size_t>(n));

  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> x(static_cast<size_t>(B * T * D)), h(static_cast<size_t>(B * H)), c(h.size());
  for (double& v : x) v = u(rng);
  for (double& v : h) v = u(rng);
  for (double& v : c) v = u(rng);
  ref::Named init{{"fw/0/h", h}};
  if (kind == KerasKind::kLstm) init["fw/0/c"] = c;

  testing_support::CallBuffers<double> cb(*rnn, T, B, /*time_major=*/false, /*training=*/false);
  ASSERT_TRUE(cb.ok()) << cb.error;
  cb.x = x;
  cb.w = w;
  cb.init = testing_support::pack_state<double>(*rnn, init, B);
  const dynrnn::Status fs = rnn->forward(cb.forward_args(/*training=*/false));
  ASSERT_TRUE(fs.is_ok()) << fs.to_string();

  const std::vector<double> want = keras_forward(kw, T, B, x, &h, &c);
  ASSERT_EQ(cb.out.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(cb.out[i], want[i], 1e-12) << "output " << i;
  ref::Named fin{{"fw/0/h", h}};
  if (kind == KerasKind::kLstm) fin["fw/0/c"] = c;
  const std::vector<double> want_fin = testing_support::pack_state<double>(*rnn, fin, B);
  ASSERT_EQ(cb.fin.size(), want_fin.size());
  for (size_t i = 0; i < want_fin.size(); ++i) EXPECT_NEAR(cb.fin[i], want_fin[i], 1e-12) << "final state " << i;
}

dynrnn::CellSpec lstm_spec(dynrnn::CellKind kind, double forget_bias, dynrnn::Activation act) {
  dynrnn::CellSpec s =
      kind == dynrnn::CellKind::kBasicLSTM ? dynrnn::CellSpec::basic_lstm(3, forget_bias) : dynrnn::CellSpec::lstm(3);
  s.forget_bias = forget_bias;
  s.activation = act;
  return s;
}

TEST(WeightConversion, KerasLstmMatchesTfLstmCells) {
  for (dynrnn::CellKind kind : {dynrnn::CellKind::kBasicLSTM, dynrnn::CellKind::kLSTM}) {
    for (double fb : {0.0, 1.5}) {
      for (int64_t T : {1, 3}) {
        check_keras_equivalence(KerasKind::kLstm, lstm_spec(kind, fb, dynrnn::Activation::kTanh), T, true);
      }
    }
  }
  check_keras_equivalence(KerasKind::kLstm, lstm_spec(dynrnn::CellKind::kLSTM, 1.0, dynrnn::Activation::kRelu), 3,
                          true);
}

TEST(WeightConversion, KerasGruMatchesTfGruCells) {
  for (dynrnn::Activation act : {dynrnn::Activation::kTanh, dynrnn::Activation::kRelu}) {
    for (int64_t T : {1, 3}) {
      check_keras_equivalence(KerasKind::kGru, dynrnn::CellSpec::gru(3, act), T, true);
      check_keras_equivalence(KerasKind::kGruResetAfter, dynrnn::CellSpec::gru_reset_after(3, act), T, true);
    }
  }
}

TEST(WeightConversion, KerasSimpleRnnMatchesBasicRnnCell) {
  for (dynrnn::Activation act : {dynrnn::Activation::kTanh, dynrnn::Activation::kRelu}) {
    for (int64_t T : {1, 3})
      check_keras_equivalence(KerasKind::kSimpleRnn, dynrnn::CellSpec::basic_rnn(3, act), T, true);
  }
}

/// A Keras cell and a TF cell it converts to, for the tests below.
struct KerasCase {
  KerasKind kind;
  dynrnn::CellSpec spec;
};

std::vector<KerasCase> keras_cases(double forget_bias) {
  return {{KerasKind::kLstm, lstm_spec(dynrnn::CellKind::kBasicLSTM, forget_bias, dynrnn::Activation::kTanh)},
          {KerasKind::kLstm, lstm_spec(dynrnn::CellKind::kLSTM, forget_bias, dynrnn::Activation::kTanh)},
          {KerasKind::kGru, dynrnn::CellSpec::gru(3)},
          {KerasKind::kGruResetAfter, dynrnn::CellSpec::gru_reset_after(3)},
          {KerasKind::kSimpleRnn, dynrnn::CellSpec::basic_rnn(3)}};
}

/// use_bias=False: the TF cell computes Keras' zero bias (every TF bias 0, except an LSTM's f block,
/// -forget_bias), and tf_to_keras without a bias buffer returns the kernels only.
TEST(WeightConversion, KerasWithoutBiasIsZeroBiasInTf) {
  for (const KerasCase& kc : keras_cases(1.5)) {
    check_keras_equivalence(kc.kind, kc.spec, 3, /*use_bias=*/false);
    SCOPED_TRACE(keras_name(kc.kind));
    const int64_t D = 4, H = 3;
    std::mt19937_64 rng(3);
    const KerasWeights kw = random_keras(kc.kind, D, H, false, /*use_bias=*/false, rng);
    const std::unique_ptr<dynrnn::Rnn> rnn = one_layer_rnn(kc.spec, D, dynrnn::DataType::kFloat64);
    ASSERT_TRUE(rnn);
    std::vector<double> w(static_cast<size_t>(rnn->param_count()), 7.0);
    ASSERT_TRUE(dynrnn::keras_to_tf<double>(kc.spec, D, kw.view(), w.data()).is_ok());
    const bool lstm = kc.kind == KerasKind::kLstm;
    for (const dynrnn::ParamInfo& p : rnn->params()) {
      if (p.local_name.find("bias") == std::string::npos) continue;
      for (int64_t i = 0; i < p.count; ++i) {
        const bool f = lstm && i / H == 2;  // TF's i, j, f, o
        EXPECT_EQ(w[p.offset + i], f ? -1.5 : 0.0) << p.name << "[" << i << "]";
      }
    }
    KerasWeights back = kw;
    std::fill(back.kernel.begin(), back.kernel.end(), 0.0);
    std::fill(back.recurrent_kernel.begin(), back.recurrent_kernel.end(), 0.0);
    ASSERT_TRUE(
        dynrnn::tf_to_keras<double>(kc.spec, D, w.data(), {back.kernel.data(), back.recurrent_kernel.data(), nullptr})
            .is_ok());
    EXPECT_EQ(back.kernel, kw.kernel);
    EXPECT_EQ(back.recurrent_kernel, kw.recurrent_kernel);
  }
}

/// keras -> tf -> keras and tf -> keras -> tf in T, on values already rounded to T: kernels return
/// bit for bit; biases too with forget_bias 0, and otherwise (LSTM) to the rounding of subtracting
/// and adding forget_bias in compute_t<T>.
template <typename T>
void check_keras_round_trips(double forget_bias) {
  SCOPED_TRACE(std::string(testing_support::dtype_name(testing_support::dtype_of<T>())) +
               " forget_bias=" + std::to_string(forget_bias));
  const int64_t D = 4, H = 3;
  // 0 for an exact trip; else the rounding of b -/+ forget_bias (|b| < 1) each way (float and double
  // compute in T).
  const double tol = forget_bias == 0 ? 0.0 : 4 * (1 + forget_bias) * testing_support::unit_roundoff<T>();
  auto as_T = [](const std::vector<double>& v) { return std::vector<T>(v.begin(), v.end()); };
  auto expect_close = [&](const std::vector<T>& got, const std::vector<double>& want, const char* what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t i = 0; i < want.size(); ++i) {
      if (tol == 0) {
        EXPECT_EQ(static_cast<double>(got[i]), want[i]) << what << "[" << i << "]";
      } else {
        EXPECT_NEAR(static_cast<double>(got[i]), want[i], tol) << what << "[" << i << "]";
      }
    }
  };
  for (const KerasCase& kc : keras_cases(forget_bias)) {
    SCOPED_TRACE(keras_name(kc.kind));
    std::mt19937_64 rng(9);
    KerasWeights kw = random_keras(kc.kind, D, H, false, /*use_bias=*/true, rng);
    for (std::vector<double>* v : {&kw.kernel, &kw.recurrent_kernel, &kw.bias}) testing_support::round_all<T>(*v);
    const std::unique_ptr<dynrnn::Rnn> rnn = one_layer_rnn(kc.spec, D, testing_support::dtype_of<T>());
    ASSERT_TRUE(rnn);
    const size_t n = static_cast<size_t>(rnn->param_count());

    // keras -> tf -> keras
    const std::vector<T> k = as_T(kw.kernel), rk = as_T(kw.recurrent_kernel), b = as_T(kw.bias);
    std::vector<T> tf(n);
    ASSERT_TRUE(dynrnn::keras_to_tf<T>(kc.spec, D, {k.data(), rk.data(), b.data()}, tf.data()).is_ok());
    std::vector<T> k2(k.size()), rk2(rk.size()), b2(b.size());
    ASSERT_TRUE(dynrnn::tf_to_keras<T>(kc.spec, D, tf.data(), {k2.data(), rk2.data(), b2.data()}).is_ok());
    EXPECT_EQ(testing_support::widen(k2), kw.kernel);
    EXPECT_EQ(testing_support::widen(rk2), kw.recurrent_kernel);
    expect_close(b2, kw.bias, "keras bias");

    // tf -> keras -> tf, from a random TF layer
    std::vector<double> tfd(n);
    std::uniform_real_distribution<double> u(-0.6, 0.6);
    for (double& v : tfd) v = u(rng);
    testing_support::round_all<T>(tfd);
    const std::vector<T> tf1 = as_T(tfd);
    ASSERT_TRUE(dynrnn::tf_to_keras<T>(kc.spec, D, tf1.data(), {k2.data(), rk2.data(), b2.data()}).is_ok());
    std::vector<T> tf2(n);
    ASSERT_TRUE(dynrnn::keras_to_tf<T>(kc.spec, D, {k2.data(), rk2.data(), b2.data()}, tf2.data()).is_ok());
    for (const dynrnn::ParamInfo& p : rnn->params()) {
      const std::vector<T> got(tf2.begin() + p.offset, tf2.begin() + p.offset + p.count);
      const std::vector<double> want(tfd.begin() + p.offset, tfd.begin() + p.offset + p.count);
      if (p.local_name.find("bias") == std::string::npos) {
        EXPECT_EQ(testing_support::widen(got), want) << p.name;
      } else {
        expect_close(got, want, p.name.c_str());
      }
    }
  }
}

TEST(WeightConversion, KerasRoundTripsAreExact) {
  check_keras_round_trips<float>(0.0);
  check_keras_round_trips<double>(0.0);
  check_keras_round_trips<dynrnn::bfloat16>(0.0);
  check_keras_round_trips<dynrnn::float16>(0.0);
  // With forget_bias the LSTM's f bias is rounded going each way; every other value still moves exactly.
  check_keras_round_trips<double>(1.5);
  check_keras_round_trips<float>(1.5);
}

}  // namespace

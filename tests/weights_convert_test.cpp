// TF <-> cuDNN/PyTorch weight conversion: the cuDNN equations (spec §4.1), evaluated here with the
// converted weights, must reproduce the float64 reference's TF cells. In the 16-bit types the
// conversion must move exactly the values the float64 one moves and round its one sum once.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

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

}  // namespace

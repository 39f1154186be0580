// Host-side tests of bench/cudnn_mapping.h, the TF -> cuDNN weight mapping of the cuDNN rows (which
// the CPU path never reaches): against the library's own conversion (dynrnn::tf_to_cudnn), against
// cuDNN's GRU equations evaluated here with the mapped weights and compared with dynrnn's CPU
// forward, and the gradient mapping as the transpose of the weight mapping. No GPU, no cuDNN.
#include "bench/cudnn_mapping.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>

#include "dynrnn/rnn.h"
#include "dynrnn/weights.h"

namespace bench {
namespace {

Shape small_shape(Cell cell, int layers, bool bidirectional, bool stacked = false) {
  Shape s;
  s.id = "mapping-test";
  s.cell = cell;
  s.T = 4;
  s.B = 3;
  s.I = 5;
  s.H = 4;
  s.layers = layers;
  s.bidirectional = bidirectional;
  s.stack_bidirectional = stacked;
  return s;
}

/// The matrices and biases of a cuDNN weight space as cudnnGetRNNWeightParams lists them: per pseudo
/// layer and linLayerID, matrix [H, cols] then bias [H], packed one after the other.
std::vector<CudnnParam> cudnn_params(const Problem& p, int64_t* space_elems) {
  std::vector<CudnnParam> v;
  int64_t off = 0;
  const int D = p.directions(), G = cell_gates(p.shape.cell);
  for (int pl = 0; pl < p.shape.layers * D; ++pl) {
    const int layer = pl / D;
    for (int lin = 0; lin < cudnn_lin_count(p.shape.cell); ++lin) {
      CudnnParam m;
      m.pseudo_layer = pl;
      m.lin = lin;
      m.rows = p.shape.H;
      m.cols = lin < G ? cudnn_layer_input(p, layer) : p.shape.H;
      m.offset = off;
      off += m.rows * m.cols;
      v.push_back(m);
      CudnnParam b = m;
      b.bias = true;
      b.cols = 1;
      b.offset = off;
      off += b.rows;
      v.push_back(b);
    }
  }
  *space_elems = off;
  return v;
}

std::vector<double> map_to_cudnn(const Problem& p, const std::vector<CudnnParam>& params, int64_t elems) {
  std::vector<double> space(static_cast<size_t>(elems), -7.0);  // every element must be written
  for (const CudnnParam& m : params) tf_to_cudnn(p, m, space.data());
  return space;
}

const CudnnParam& find(const std::vector<CudnnParam>& params, int pl, int lin, bool bias) {
  for (const CudnnParam& m : params) {
    if (m.pseudo_layer == pl && m.lin == lin && m.bias == bias) return m;
  }
  throw BenchError("no such cuDNN parameter");
}

/// One layer of one direction in the TF table: offset of its [in + H, G*H] kernel block and bias.
struct TfLayer {
  int64_t kernel = -1, bias = -1;
};

TfLayer tf_layer(const Problem& p, int dir, int layer) {
  TfLayer t;
  for (const dynrnn::ParamInfo& info : p.params) {
    if (info.direction != dir || info.layer != layer) continue;
    if (info.local_name == "kernel") t.kernel = info.offset;  // recurrent_kernel follows it directly
    if (info.local_name == "bias") t.bias = info.offset;
  }
  return t;
}

// The bench's mapping against dynrnn::tf_to_cudnn (include/dynrnn/weights.h), layer by layer: cuDNN's
// linLayerID g < G is rows [g*H, (g+1)*H) of w_ih (gate order r, z, n for GRUs, i, f, g, o for
// LSTMs), G + g those of w_hh, and the biases likewise b_ih / b_hh. Layers above the first read both
// directions in cuDNN: for TF's independent stacks the other direction's columns must be zero; for
// a stacked shape (stack_bidirectional) the layer's kernel has those 2H input rows itself, and
// w_ih (PyTorch's weight_ih_l<k> of width 2H) is all of cuDNN's matrix, no zero block.
void expect_matches_library(Cell cell, const dynrnn::CellSpec& spec_cell, bool stacked = false) {
  const Problem p = make_problem(small_shape(cell, 3, true, stacked), 1, 7);
  int64_t elems = 0;
  const std::vector<CudnnParam> params = cudnn_params(p, &elems);
  const std::vector<double> space = map_to_cudnn(p, params, elems);
  const int D = p.directions(), G = cell_gates(cell);
  const int64_t H = p.shape.H;
  for (int layer = 0; layer < p.shape.layers; ++layer) {
    const int64_t in = layer == 0 ? p.shape.I : (stacked ? D : 1) * H;
    for (int dir = 0; dir < D; ++dir) {
      const TfLayer t = tf_layer(p, dir, layer);
      ASSERT_GE(t.kernel, 0);
      ASSERT_GE(t.bias, 0);
      std::vector<double> w_ih(static_cast<size_t>(G * H * in)), w_hh(static_cast<size_t>(G * H * H)),
          b_ih(static_cast<size_t>(G * H)), b_hh(static_cast<size_t>(G * H));
      dynrnn::CudnnLayerWeights<double> out;
      out.w_ih = w_ih.data();
      out.w_hh = w_hh.data();
      out.b_ih = b_ih.data();
      out.b_hh = b_hh.data();
      const dynrnn::Status st = dynrnn::tf_to_cudnn<double>(spec_cell, in, p.weights.data() + t.kernel,
                                                            p.weights.data() + t.bias, nullptr, out);
      ASSERT_TRUE(st) << st.to_string();
      const int pl = layer * D + dir;
      for (int g = 0; g < G; ++g) {
        const CudnnParam& wm = find(params, pl, g, false);
        const CudnnParam& rm = find(params, pl, G + g, false);
        const CudnnParam& wb = find(params, pl, g, true);
        const CudnnParam& rb = find(params, pl, G + g, true);
        for (int64_t u = 0; u < H; ++u) {
          const int64_t row = g * H + u;
          for (int64_t k = 0; k < wm.cols; ++k) {
            // Layer > 0 of independent stacks: columns [dir*H, (dir+1)*H) are this direction's.
            const int64_t lo = layer == 0 || stacked ? 0 : dir * H;
            if (stacked) {
              ASSERT_EQ(wm.cols, in);
            }
            const bool own = k >= lo && k < lo + in;
            const double want = own ? w_ih[static_cast<size_t>(row * in + k - lo)] : 0.0;
            EXPECT_EQ(space[static_cast<size_t>(wm.offset + u * wm.cols + k)], want)
                << "W layer " << layer << " dir " << dir << " gate " << g << " unit " << u << " col " << k;
          }
          for (int64_t k = 0; k < H; ++k) {
            EXPECT_EQ(space[static_cast<size_t>(rm.offset + u * H + k)], w_hh[static_cast<size_t>(row * H + k)])
                << "R layer " << layer << " dir " << dir << " gate " << g << " unit " << u << " col " << k;
          }
          EXPECT_EQ(space[static_cast<size_t>(wb.offset + u)], b_ih[static_cast<size_t>(row)]);
          EXPECT_EQ(space[static_cast<size_t>(rb.offset + u)], b_hh[static_cast<size_t>(row)]);
        }
      }
    }
  }
}

TEST(CudnnMapping, ResetAfterGruMatchesLibraryConversion) {
  expect_matches_library(Cell::kGruResetAfter, dynrnn::CellSpec::gru_reset_after(4));
}

TEST(CudnnMapping, LstmMatchesLibraryConversion) {
  dynrnn::CellSpec c = dynrnn::CellSpec::lstm(4);
  c.forget_bias = kForgetBias;
  expect_matches_library(Cell::kLstm, c);
}

TEST(CudnnMapping, StackedLstmMatchesLibraryConversion) {
  dynrnn::CellSpec c = dynrnn::CellSpec::lstm(4);
  c.forget_bias = kForgetBias;
  expect_matches_library(Cell::kLstm, c, true);
}

TEST(CudnnMapping, StackedResetAfterGruMatchesLibraryConversion) {
  expect_matches_library(Cell::kGruResetAfter, dynrnn::CellSpec::gru_reset_after(4), true);
}

TEST(CudnnMapping, StackedRnnMatchesLibraryConversion) {
  expect_matches_library(Cell::kRnnTanh, dynrnn::CellSpec::basic_rnn(4), true);
}

TEST(CudnnMapping, ResetAfterGruMapsBothBiasesOneToOne) {
  // Keras' bias row 0 is cuDNN's b_W, row 1 its b_R (gate order r, z, n = Keras columns 1, 0, 2).
  const Problem p = make_problem(small_shape(Cell::kGruResetAfter, 1, false), 1, 3);
  int64_t elems = 0;
  const std::vector<CudnnParam> params = cudnn_params(p, &elems);
  const std::vector<double> space = map_to_cudnn(p, params, elems);
  const TfLayer t = tf_layer(p, 0, 0);
  const int64_t H = p.shape.H;
  const int keras[3] = {1, 0, 2};
  for (int g = 0; g < 3; ++g) {
    for (int64_t u = 0; u < H; ++u) {
      EXPECT_EQ(space[static_cast<size_t>(find(params, 0, g, true).offset + u)],
                p.weights[static_cast<size_t>(t.bias + keras[g] * H + u)]);
      EXPECT_EQ(space[static_cast<size_t>(find(params, 0, 3 + g, true).offset + u)],
                p.weights[static_cast<size_t>(t.bias + 3 * H + keras[g] * H + u)]);
    }
  }
}

double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

// cuDNN's GRU equations (cudnnRNNMode_t CUDNN_GRU), evaluated with the mapped weights, give dynrnn's
// kGRUResetAfter forward on the CPU (float64): outputs and final state of a 2-layer stack.
TEST(CudnnMapping, CudnnGruEquationsWithMappedWeightsReproduceDynrnn) {
  const Problem p = make_problem(small_shape(Cell::kGruResetAfter, 2, false), 1, 11);
  int64_t elems = 0;
  const std::vector<CudnnParam> params = cudnn_params(p, &elems);
  const std::vector<double> space = map_to_cudnn(p, params, elems);
  const int64_t T = p.shape.T, B = p.shape.B, H = p.shape.H;
  const std::vector<double>& x = p.sets[0].x;  // [T, B, I]

  // cuDNN, layer by layer over the whole sequence: r, z, n = linLayerIDs 0, 1, 2 (W) and 3, 4, 5 (R).
  std::vector<double> in = x;
  int64_t in_w = p.shape.I;
  std::vector<double> hy(static_cast<size_t>(p.shape.layers * B * H));
  for (int layer = 0; layer < p.shape.layers; ++layer) {
    auto W = [&](int g) { return space.data() + find(params, layer, g, false).offset; };
    auto R = [&](int g) { return space.data() + find(params, layer, 3 + g, false).offset; };
    auto bW = [&](int g) { return space.data() + find(params, layer, g, true).offset; };
    auto bR = [&](int g) { return space.data() + find(params, layer, 3 + g, true).offset; };
    std::vector<double> h(static_cast<size_t>(B * H), 0.0), y(static_cast<size_t>(T * B * H));
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> hn(h.size());
      for (int64_t b = 0; b < B; ++b) {
        const double* xt = in.data() + (t * B + b) * in_w;
        const double* hb = h.data() + b * H;
        for (int64_t u = 0; u < H; ++u) {
          double wx[3], rh[3];
          for (int g = 0; g < 3; ++g) {
            wx[g] = bW(g)[u];
            for (int64_t k = 0; k < in_w; ++k) wx[g] += W(g)[u * in_w + k] * xt[k];
            rh[g] = bR(g)[u];
            for (int64_t k = 0; k < H; ++k) rh[g] += R(g)[u * H + k] * hb[k];
          }
          const double r = sigmoid(wx[0] + rh[0]);
          const double z = sigmoid(wx[1] + rh[1]);
          const double n = std::tanh(wx[2] + r * rh[2]);
          hn[static_cast<size_t>(b * H + u)] = (1.0 - z) * n + z * hb[u];
        }
      }
      h = hn;
      std::copy(h.begin(), h.end(), y.begin() + t * B * H);
    }
    std::copy(h.begin(), h.end(), hy.begin() + layer * B * H);
    in = y;
    in_w = H;
  }

  // dynrnn, CPU, float64, the same TF-layout weights.
  std::unique_ptr<dynrnn::Rnn> rnn;
  ASSERT_TRUE(dynrnn::Rnn::create(make_spec(p.shape, dynrnn::DataType::kFloat64, dynrnn::MathMode::kDefault),
                                  dynrnn::Backend::kCpu, &rnn));
  size_t ws = 0;
  ASSERT_TRUE(rnn->get_workspace_size(T, B, false, &ws));
  std::vector<unsigned char> workspace(ws + 1);
  std::vector<double> out(static_cast<size_t>(T * B * H)), final_state(static_cast<size_t>(p.state_elems()));
  dynrnn::ForwardArgs f;
  f.x_shape[0] = T;
  f.x_shape[1] = B;
  f.x_shape[2] = p.shape.I;
  f.x = x.data();
  f.weights = p.weights.data();
  f.outputs = out.data();
  f.final_state = final_state.data();
  f.workspace = workspace.data();
  f.workspace_bytes = ws;
  const dynrnn::Status st = rnn->forward(f, nullptr);
  ASSERT_TRUE(st) << st.to_string();

  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], in[i], 1e-12) << "output " << i;
  EXPECT_EQ(cudnn_states_to_flat(p, hy, nullptr).size(), final_state.size());
  const std::vector<double> flat = cudnn_states_to_flat(p, hy, nullptr);
  for (size_t i = 0; i < flat.size(); ++i) EXPECT_NEAR(final_state[i], flat[i], 1e-12) << "final state " << i;
}

// dL/dw_tf = M^T dL/dw_cudnn when w_cudnn = M w_tf (the mapping is linear with forget_bias 0, and the
// recurrent biases it leaves at zero are exactly those whose gradient it skips): for random w and g,
// <M w, g> == <w, cudnn_grad_to_tf(g)>. For the reset-after GRU, also every TF weight receives some
// gradient (both bias rows included).
void expect_adjoint(Cell cell) {
  for (int form = 0; form < 3; ++form) {  // unidirectional, independent stacks, stacked
    const bool bi = form > 0, stacked = form == 2;
    const Problem p = make_problem(small_shape(cell, 2, bi, stacked), 1, 5);
    int64_t elems = 0;
    const std::vector<CudnnParam> params = cudnn_params(p, &elems);
    const std::vector<double> space = map_to_cudnn(p, params, elems);
    std::mt19937_64 rng(9);
    std::uniform_real_distribution<double> d(-1, 1);
    std::vector<double> g(static_cast<size_t>(elems));
    for (double& v : g) v = d(rng);
    std::vector<double> dw(static_cast<size_t>(p.param_count), 0.0);
    for (const CudnnParam& m : params) cudnn_grad_to_tf(p, m, g.data(), &dw);
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < space.size(); ++i) lhs += space[i] * g[i];
    for (size_t i = 0; i < dw.size(); ++i) rhs += p.weights[i] * dw[i];
    EXPECT_NEAR(lhs, rhs, 1e-11 * (1 + std::fabs(lhs))) << cell_name(cell)
                                                        << (stacked ? " stacked"
                                                            : bi    ? " bidirectional"
                                                                    : "");
    if (cell == Cell::kGruResetAfter) {
      for (size_t i = 0; i < dw.size(); ++i) EXPECT_NE(dw[i], 0.0) << "TF weight " << i << " gets no gradient";
    }
  }
}

TEST(CudnnMapping, GradientMappingIsTheTransposeResetAfterGru) {
  expect_adjoint(Cell::kGruResetAfter);
}

TEST(CudnnMapping, GradientMappingIsTheTransposeLstmAndRnn) {
  expect_adjoint(Cell::kLstm);
  expect_adjoint(Cell::kRnnTanh);
}

/// cuDNN's forward (cudnnRNNForward: padded layout with paddingFill 0, zero hx and cx) evaluated
/// here from a host image of its weight space, from cuDNN's documented equations: per layer and
/// direction (pseudo layer layer * D + dir), the forward direction runs t = 0 .. len - 1, the
/// backward one t = len - 1 .. 0 of each sequence, y [T, B, D*H] holds direction d in columns
/// [d*H, (d+1)*H) and zeros past each length, and layer l > 0 reads the layer below's y, both
/// directions (cuDNN has no other bidirectional stack). hy, cy [L*D, B, H].
struct CudnnForward {
  std::vector<double> y, hy, cy;
};

CudnnForward cudnn_forward_on_host(const Problem& p, const std::vector<CudnnParam>& params,
                                   const std::vector<double>& space) {
  const int64_t T = p.shape.T, B = p.shape.B, H = p.shape.H;
  const int D = p.directions(), G = cell_gates(p.shape.cell), L = p.shape.layers;
  const Cell cell = p.shape.cell;
  CudnnForward out;
  out.hy.assign(static_cast<size_t>(L * D * B * H), 0.0);
  out.cy.assign(out.hy.size(), 0.0);
  std::vector<double> in = p.sets[0].x;  // [T, B, I]
  int64_t in_w = p.shape.I;
  for (int layer = 0; layer < L; ++layer) {
    std::vector<double> y(static_cast<size_t>(T * B * D * H), 0.0);
    for (int dir = 0; dir < D; ++dir) {
      const int pl = layer * D + dir;
      auto W = [&](int g) { return space.data() + find(params, pl, g, false).offset; };
      auto R = [&](int g) { return space.data() + find(params, pl, G + g, false).offset; };
      auto bW = [&](int g) { return space.data() + find(params, pl, g, true).offset; };
      auto bR = [&](int g) { return space.data() + find(params, pl, G + g, true).offset; };
      for (int64_t b = 0; b < B; ++b) {
        const int64_t len = p.has_lengths ? std::min<int64_t>(p.lengths[static_cast<size_t>(b)], T) : T;
        std::vector<double> h(static_cast<size_t>(H), 0.0), c(static_cast<size_t>(H), 0.0);
        for (int64_t k = 0; k < len; ++k) {
          const int64_t t = dir == 0 ? k : len - 1 - k;
          const double* xt = in.data() + (t * B + b) * in_w;
          std::vector<double> hn(h.size()), cn(c.size());
          for (int64_t u = 0; u < H; ++u) {
            double wx[4], rh[4];
            for (int g = 0; g < G; ++g) {
              wx[g] = bW(g)[u];
              for (int64_t j = 0; j < in_w; ++j) wx[g] += W(g)[u * in_w + j] * xt[j];
              rh[g] = bR(g)[u];
              for (int64_t j = 0; j < H; ++j) rh[g] += R(g)[u * H + j] * h[static_cast<size_t>(j)];
            }
            switch (cell) {
              case Cell::kLstm: {  // linLayerIDs i, f, c', o
                const double i = sigmoid(wx[0] + rh[0]), f = sigmoid(wx[1] + rh[1]);
                const double g = std::tanh(wx[2] + rh[2]), o = sigmoid(wx[3] + rh[3]);
                cn[static_cast<size_t>(u)] = f * c[static_cast<size_t>(u)] + i * g;
                hn[static_cast<size_t>(u)] = o * std::tanh(cn[static_cast<size_t>(u)]);
                break;
              }
              case Cell::kGruResetAfter: {  // linLayerIDs r, z, h'
                const double r = sigmoid(wx[0] + rh[0]), z = sigmoid(wx[1] + rh[1]);
                const double n = std::tanh(wx[2] + r * rh[2]);
                hn[static_cast<size_t>(u)] = (1.0 - z) * n + z * h[static_cast<size_t>(u)];
                break;
              }
              case Cell::kRnnTanh: hn[static_cast<size_t>(u)] = std::tanh(wx[0] + rh[0]); break;
              case Cell::kRnnRelu: hn[static_cast<size_t>(u)] = std::max(0.0, wx[0] + rh[0]); break;
              case Cell::kGru: throw BenchError("cuDNN has no TF GRU");
            }
          }
          h = hn;
          c = cn;
          std::copy(h.begin(), h.end(), y.begin() + (t * B + b) * D * H + dir * H);
        }
        std::copy(h.begin(), h.end(), out.hy.begin() + (pl * B + b) * H);
        std::copy(c.begin(), c.end(), out.cy.begin() + (pl * B + b) * H);
      }
    }
    in = y;
    in_w = D * H;
  }
  out.y = in;
  return out;
}

/// dynrnn's CPU forward in float64 of p's spec and set 0: outputs (a stacked shape's [T, B, 2H] in
/// one buffer, else the forward direction's and, bidirectional, the backward one's) and final state.
struct DynrnnForward {
  std::vector<double> out, out_bw, final_state;
};

DynrnnForward dynrnn_forward_cpu(const Problem& p) {
  const int64_t T = p.shape.T, B = p.shape.B, H = p.shape.H;
  std::unique_ptr<dynrnn::Rnn> rnn;
  const dynrnn::Status created = dynrnn::Rnn::create(
      make_spec(p.shape, dynrnn::DataType::kFloat64, dynrnn::MathMode::kDefault), dynrnn::Backend::kCpu, &rnn);
  if (!created) throw BenchError(created.to_string());
  size_t ws = 0;
  if (!rnn->get_workspace_size(T, B, false, &ws)) throw BenchError("get_workspace_size");
  std::vector<unsigned char> workspace(ws + 1);
  DynrnnForward r;
  const bool split = p.shape.bidirectional && !p.stacked();
  r.out.assign(static_cast<size_t>(T * B * H * (p.stacked() ? 2 : 1)), 0.0);
  if (split) r.out_bw.assign(static_cast<size_t>(T * B * H), 0.0);
  r.final_state.assign(static_cast<size_t>(p.state_elems()), 0.0);
  dynrnn::ForwardArgs f;
  f.x_shape[0] = T;
  f.x_shape[1] = B;
  f.x_shape[2] = p.shape.I;
  f.x = p.sets[0].x.data();
  if (p.has_lengths) {
    f.sequence_length = p.lengths.data();
    f.sequence_length_size = B;
  }
  f.weights = p.weights.data();
  f.outputs = r.out.data();
  f.outputs_bw = split ? r.out_bw.data() : nullptr;
  f.final_state = r.final_state.data();
  f.workspace = workspace.data();
  f.workspace_bytes = ws;
  const dynrnn::Status st = rnn->forward(f, nullptr);
  if (!st) throw BenchError(st.to_string());
  return r;
}

// A stacked bidirectional shape (TF stack_bidirectional_dynamic_rnn) is the model cuDNN runs for
// CUDNN_BIDIRECTIONAL with several layers: cuDNN's equations with the one-to-one mapped weights give
// dynrnn's outputs, in dynrnn's own [T, B, 2H] buffer (forward first, as cuDNN's y), and its final
// state, on a ragged batch, for every cell cuDNN has. (The independent stacks, mapped with zero
// blocks, give TF's bidirectional_dynamic_rnn the same way.)
void expect_cudnn_equations_reproduce_dynrnn(Cell cell, bool stacked) {
  Shape s = small_shape(cell, 3, true, stacked);
  s.T = 6;
  s.lengths = Lengths::kUniform;
  const Problem p = make_problem(s, 1, 13);
  ASSERT_TRUE(p.has_lengths);
  int64_t elems = 0;
  const std::vector<CudnnParam> params = cudnn_params(p, &elems);
  const std::vector<double> space = map_to_cudnn(p, params, elems);
  const CudnnForward c = cudnn_forward_on_host(p, params, space);
  const DynrnnForward d = dynrnn_forward_cpu(p);
  const std::string what = std::string(cell_name(cell)) + (stacked ? " stacked" : " independent stacks");
  const std::vector<double> y = stacked ? d.out : cudnn_join_outputs(p, d.out, d.out_bw);
  ASSERT_EQ(y.size(), c.y.size()) << what;
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], c.y[i], 1e-12) << what << ": output " << i;
  const std::vector<double> flat = cudnn_states_to_flat(p, c.hy, cell == Cell::kLstm ? &c.cy : nullptr);
  ASSERT_EQ(flat.size(), d.final_state.size()) << what;
  for (size_t i = 0; i < flat.size(); ++i) EXPECT_NEAR(d.final_state[i], flat[i], 1e-12) << what << ": state " << i;
  // The bench's split of the joined buffer is the per-direction view every row is compared in.
  if (stacked) {
    std::vector<double> fw, bw;
    split_directions(p, d.out, &fw, &bw);
    EXPECT_EQ(join_directions(p, fw, bw), d.out);
  }
}

TEST(CudnnMapping, CudnnEquationsReproduceStackedBidirectionalLstm) {
  expect_cudnn_equations_reproduce_dynrnn(Cell::kLstm, true);
}

TEST(CudnnMapping, CudnnEquationsReproduceStackedBidirectionalGruAndRnn) {
  expect_cudnn_equations_reproduce_dynrnn(Cell::kGruResetAfter, true);
  expect_cudnn_equations_reproduce_dynrnn(Cell::kRnnTanh, true);
}

TEST(CudnnMapping, CudnnEquationsWithZeroBlocksReproduceIndependentStacks) {
  expect_cudnn_equations_reproduce_dynrnn(Cell::kLstm, false);
  expect_cudnn_equations_reproduce_dynrnn(Cell::kGruResetAfter, false);
}

// The stacked mapping writes no zero block: every element of every cuDNN matrix and input-side bias
// is a TF weight (the recurrent-side biases of LSTM and RNN, which TF does not have, stay zero),
// while the independent stacks' layers above the first have half of their input columns zero.
TEST(CudnnMapping, StackedMappingHasNoZeroBlocks) {
  for (bool stacked : {true, false}) {
    const Problem p = make_problem(small_shape(Cell::kLstm, 3, true, stacked), 1, 17);
    int64_t elems = 0;
    const std::vector<CudnnParam> params = cudnn_params(p, &elems);
    const std::vector<double> space = map_to_cudnn(p, params, elems);
    int64_t zeros = 0;
    for (const CudnnParam& m : params) {
      if (m.bias) continue;
      for (int64_t i = 0; i < m.rows * m.cols; ++i) zeros += space[static_cast<size_t>(m.offset + i)] == 0.0;
    }
    const int64_t H = p.shape.H, G = 4, D = 2;
    // Independent stacks: layers 1 and 2, both directions, G gates of [H, 2H] with H zero columns.
    EXPECT_EQ(zeros, stacked ? 0 : (p.shape.layers - 1) * D * G * H * H) << (stacked ? "stacked" : "independent");
  }
}

TEST(CudnnMapping, TfGruIsUnsupported) {
  const Problem p = make_problem(small_shape(Cell::kGru, 1, false), 1, 1);
  CudnnParam m;
  m.rows = p.shape.H;
  m.cols = p.shape.I;
  std::vector<double> space(static_cast<size_t>(m.rows * m.cols));
  EXPECT_THROW(tf_to_cudnn(p, m, space.data()), BenchUnsupported);
}

}  // namespace
}  // namespace bench

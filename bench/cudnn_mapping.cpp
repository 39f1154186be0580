#include "bench/cudnn_mapping.h"

#include <algorithm>

#include "bench/naive_baseline.h"

namespace bench {

int cudnn_lin_count(Cell c) {
  return 2 * cell_gates(c);
}

int64_t cudnn_layer_input(const Problem& p, int layer) {
  return layer == 0 ? p.shape.I : p.directions() * p.shape.H;
}

namespace {

/// Where element (u, k) of cuDNN matrix `m` comes from in the TF weight table (-1: a zero block).
struct Source {
  const Problem& p;
  const CudnnParam& m;
  int D, layer, dir, G, gate;
  bool recurrent;
  NaiveLayer L;
  int64_t H;

  Source(const Problem& p_, const CudnnParam& m_) : p(p_), m(m_) {
    D = p.directions();
    layer = m.pseudo_layer / D;
    dir = m.pseudo_layer % D;
    if (p.shape.cell == Cell::kGru) {
      throw BenchUnsupported(
          "cuDNN has no reset-before (TF GRUCell) GRU: its GRU is the reset-after form (--cell gru_ra)");
    }
    G = cell_gates(p.shape.cell);
    recurrent = m.lin >= G;
    gate = recurrent ? m.lin - G : m.lin;
    L = naive_layers(p, dir).at(static_cast<size_t>(layer));
    H = p.shape.H;
    if (m.lin < 0 || m.lin >= 2 * G) throw BenchError("cuDNN linLayerID out of range: " + std::to_string(m.lin));
    const int64_t want_cols = m.bias ? 1 : (recurrent ? H : cudnn_layer_input(p, layer));
    if (m.rows != H || m.cols != want_cols) {
      throw BenchError("cuDNN parameter (pseudo layer " + std::to_string(m.pseudo_layer) + ", lin " +
                       std::to_string(m.lin) + ") is [" + std::to_string(m.rows) + ", " + std::to_string(m.cols) +
                       "]; the mapping expects [" + std::to_string(H) + ", " + std::to_string(want_cols) + "]");
    }
  }

  /// TF kernel row of cuDNN column k, or -1 for the other direction's (zero) block. Rows [0, in)
  /// multiply the layer's input, rows [in, in + H) the recurrent state. A stacked layer's input rows
  /// are cuDNN's columns: both directions of the layer below, forward first.
  int64_t tf_row(int64_t k) const {
    if (recurrent) return L.in + k;
    if (layer == 0 || D == 1 || p.stacked()) return k;
    return (k >= dir * H && k < (dir + 1) * H) ? k - dir * H : -1;
  }

  /// Element index in the flat TF table of kernel element (tf row r, unit u).
  int64_t kernel_index(int64_t r, int64_t u) const {
    switch (p.shape.cell) {
      case Cell::kLstm: {
        static const int tf_gate[4] = {0, 2, 1, 3};  // cuDNN i, f, g, o -> TF i, j, f, o
        return L.kernel + r * 4 * H + tf_gate[gate] * H + u;
      }
      case Cell::kGruResetAfter: {
        // `kernel` [in, 3H] for the input rows, `recurrent_kernel` [H, 3H] for the state rows.
        const int64_t col = kKerasGruGate[gate] * H + u;
        return r < L.in ? L.kernel + r * 3 * H + col : L.rec_kernel + (r - L.in) * 3 * H + col;
      }
      default: return L.kernel + r * H + u;
    }
  }

  /// Two separate biases: cuDNN's b_R is a TF weight of its own (reset-after GRU's bias row 1).
  bool two_biases() const { return p.shape.cell == Cell::kGruResetAfter; }

  /// Flat TF index of the bias of unit u: the input-side bias, or with two_biases() the one of this
  /// side (otherwise recurrent biases are 0).
  int64_t bias_index(int64_t u) const {
    switch (p.shape.cell) {
      case Cell::kLstm: {
        static const int tf_gate[4] = {0, 2, 1, 3};
        return L.bias + tf_gate[gate] * H + u;
      }
      case Cell::kGruResetAfter: return L.bias + (recurrent ? 3 * H : 0) + kKerasGruGate[gate] * H + u;
      default: return L.bias + u;
    }
  }

  /// cuDNN GRU gate g (r, z, n) is Keras column block kKerasGruGate[g] (Keras order z, r, h).
  static constexpr int kKerasGruGate[3] = {1, 0, 2};
};

}  // namespace

void tf_to_cudnn(const Problem& p, const CudnnParam& m, double* space) {
  const Source s(p, m);
  double* dst = space + m.offset;
  if (m.bias) {
    for (int64_t u = 0; u < m.rows; ++u) {
      if (s.recurrent && !s.two_biases()) {
        dst[u] = 0.0;
      } else {
        dst[u] = p.weights[static_cast<size_t>(s.bias_index(u))];
        if (p.shape.cell == Cell::kLstm && s.gate == 1) dst[u] += kForgetBias;
      }
    }
    return;
  }
  for (int64_t u = 0; u < m.rows; ++u) {
    for (int64_t k = 0; k < m.cols; ++k) {
      const int64_t r = s.tf_row(k);
      dst[u * m.cols + k] = r < 0 ? 0.0 : p.weights[static_cast<size_t>(s.kernel_index(r, u))];
    }
  }
}

void cudnn_grad_to_tf(const Problem& p, const CudnnParam& m, const double* space, std::vector<double>* dw_tf) {
  const Source s(p, m);
  const double* src = space + m.offset;
  std::vector<double>& dw = *dw_tf;
  if (m.bias) {
    // b_W and b_R enter the same pre-activation, so each receives the full dL/db: TF's single bias
    // gets the input-side one (adding both would count it twice). The reset-after GRU's b_Rn sits
    // inside r * (R_n h + b_Rn), so its two biases differ in gradient and each is a TF weight.
    if (s.recurrent && !s.two_biases()) return;
    for (int64_t u = 0; u < m.rows; ++u) dw[static_cast<size_t>(s.bias_index(u))] += src[u];
    return;
  }
  for (int64_t u = 0; u < m.rows; ++u) {
    for (int64_t k = 0; k < m.cols; ++k) {
      const int64_t r = s.tf_row(k);
      if (r >= 0) dw[static_cast<size_t>(s.kernel_index(r, u))] += src[u * m.cols + k];
    }
  }
}

std::vector<double> cudnn_states_to_flat(const Problem& p, const std::vector<double>& hy,
                                         const std::vector<double>* cy) {
  const int64_t B = p.shape.B, H = p.shape.H;
  const int D = p.directions();
  std::vector<double> flat(static_cast<size_t>(p.state_elems()), 0.0);
  for (const dynrnn::StateLeaf& leaf : p.state) {
    const std::vector<double>* src = leaf.is_cell ? cy : &hy;
    if (!src) continue;
    const int64_t pseudo = leaf.layer * D + leaf.direction;
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < leaf.width; ++j) {
        flat[static_cast<size_t>(B * leaf.column_offset + b * leaf.width + j)] =
            (*src)[static_cast<size_t>((pseudo * B + b) * H + j)];
      }
    }
  }
  return flat;
}

void cudnn_split_outputs(const Problem& p, const std::vector<double>& y, std::vector<double>* out_fw,
                         std::vector<double>* out_bw) {
  split_directions(p, y, out_fw, out_bw);
}

std::vector<double> cudnn_join_outputs(const Problem& p, const std::vector<double>& dy_fw,
                                       const std::vector<double>& dy_bw) {
  return join_directions(p, dy_fw, dy_bw);
}

void zero_padding(const Problem& p, int64_t width, std::vector<double>* v) {
  if (!p.has_lengths) return;
  const int64_t B = p.shape.B;
  for (int64_t t = 0; t < p.shape.T; ++t) {
    for (int64_t b = 0; b < B; ++b) {
      if (t < p.lengths[static_cast<size_t>(b)]) continue;
      std::fill(v->begin() + (t * B + b) * width, v->begin() + (t * B + b + 1) * width, 0.0);
    }
  }
}

}  // namespace bench

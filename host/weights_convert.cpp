#include <initializer_list>
#include <string>

#include "dynrnn/weights.h"
#include "host/checked_math.h"
#include "host/element_types.h"
#include "host/status_macros.h"

namespace dynrnn {
namespace {

// cuDNN LSTM gate g (i, f, g, o) is TF gate kTfLstmGate[g] (i, j, f, o); cuDNN GRU gate g (r, z, n)
// is Keras gate kKerasGruGate[g] (z, r, h). Keras' LSTM gates (i, f, c, o) are in cuDNN's order, so
// kTfLstmGate maps them too; Keras GRU gate g (z, r) is column block kTfGruGate[g] of TF GRUCell's
// gates/kernel (r, u), and Keras' h is its candidate.
constexpr int kTfLstmGate[4] = {0, 2, 1, 3};
constexpr int kKerasGruGate[3] = {1, 0, 2};
constexpr int kTfGruGate[2] = {1, 0};

struct Layout {
  int64_t gates, H, D, Hs, P;
  bool two_biases;  ///< reset-after GRU: TF's bias [2, 3H] is cuDNN's b_ih and b_hh
};

/// Every conversion: cell.kind and cell.activation are enumerators.
Status check_kind(const CellSpec& c) {
  const int kind = static_cast<int>(c.kind);
  if (kind < 0 || kind > static_cast<int>(CellKind::kGRUResetAfter)) {
    return Status(StatusCode::kInvalidValue, "cell.kind is " + std::to_string(kind) + "; expected a CellKind (0..4)");
  }
  const int act = static_cast<int>(c.activation);
  if (act < 0 || act > static_cast<int>(Activation::kRelu)) {
    return Status(StatusCode::kInvalidValue,
                  "cell.activation is " + std::to_string(act) + "; expected kTanh (0) or kRelu (1)");
  }
  return Status::ok();
}

Status check_sizes(const CellSpec& c, int64_t D) {
  if (c.num_units <= 0 || D <= 0) {
    return Status(StatusCode::kInvalidValue, "cell.num_units is " + std::to_string(c.num_units) +
                                                 " and input_size is " + std::to_string(D) + "; expected both > 0");
  }
  return Status::ok();
}

/// The LSTMCell options the other side lacks (`none` ends each message); num_proj too unless the
/// other side has a projection.
Status check_options(const CellSpec& c, bool projection, const char* none) {
  if (c.use_peepholes) return Status(StatusCode::kNotSupported, std::string("cell.use_peepholes is true") + none);
  if (c.cell_clip) return Status(StatusCode::kNotSupported, "cell.cell_clip is " + std::to_string(*c.cell_clip) + none);
  if (!projection && c.num_proj != 0) {
    return Status(StatusCode::kNotSupported, "cell.num_proj is " + std::to_string(c.num_proj) + none);
  }
  if (c.proj_clip) return Status(StatusCode::kNotSupported, "cell.proj_clip is " + std::to_string(*c.proj_clip) + none);
  return Status::ok();
}

Status check_cell(const CellSpec& c, int64_t D, const void* kernel, const void* bias, Layout* l) {
  DYNRNN_TRY(check_kind(c));
  if (c.kind == CellKind::kGRU) {
    return Status(StatusCode::kNotSupported,
                  "cell.kind is kGRU: TF's GRUCell applies the reset gate before the candidate matmul, which "
                  "cuDNN/PyTorch GRUs (reset after) cannot express; kGRUResetAfter (Keras' GRUCell) converts");
  }
  DYNRNN_TRY(check_sizes(c, D));
  DYNRNN_TRY(check_options(c, /*projection=*/true, "; expected none: there is no cuDNN/PyTorch equivalent"));
  if (!kernel) return Status(StatusCode::kInvalidValue, "tf_kernel is null; expected the TF kernel [D + Hs, G*H]");
  if (!bias) return Status(StatusCode::kInvalidValue, "tf_bias is null; expected the TF bias [G*H] ([2, 3H] for GRU)");
  const bool lstm = c.kind == CellKind::kLSTM || c.kind == CellKind::kBasicLSTM;
  l->two_biases = c.kind == CellKind::kGRUResetAfter;
  l->gates = lstm ? 4 : (l->two_biases ? 3 : 1);
  l->H = c.num_units;
  l->D = D;
  l->P = c.kind == CellKind::kLSTM ? c.num_proj : 0;
  l->Hs = l->P > 0 ? l->P : l->H;
  return Status::ok();
}

struct PointerArg {
  const char* name;
  const void* ptr;
  bool needed;
  std::string expected;
};

/// Names the first needed pointer that is null: "<name> is null; expected <expected>".
Status check_pointers(std::initializer_list<PointerArg> args) {
  for (const PointerArg& a : args) {
    if (a.needed && !a.ptr) {
      return Status(StatusCode::kInvalidValue, std::string(a.name) + " is null; expected " + a.expected);
    }
  }
  return Status::ok();
}

/// Names the first missing cuDNN-layout pointer (and the TF projection when num_proj needs it).
Status check_cudnn_pointers(const Layout& l, const void* w_ih, const void* w_hh, const void* b_ih, const void* b_hh,
                            const void* w_hr, const void* proj, const char* proj_name) {
  const std::string buffer = std::string("a buffer") + (l.P > 0 ? " (num_proj is " + std::to_string(l.P) + ")" : "");
  return check_pointers({{"w_ih", w_ih, true, buffer},
                         {"w_hh", w_hh, true, buffer},
                         {"b_ih", b_ih, true, buffer},
                         {"b_hh", b_hh, true, buffer},
                         {"w_hr", w_hr, l.P > 0, buffer},
                         {proj_name, proj, l.P > 0, buffer}});
}

/// TF column of cuDNN row r (gate-major rows).
int64_t tf_column(const Layout& l, int64_t r) {
  const int64_t g = r / l.H, h = r % l.H;
  return (l.gates == 4 ? kTfLstmGate[g] : (l.gates == 3 ? kKerasGruGate[g] : 0)) * l.H + h;
}

bool is_forget_row(const Layout& l, int64_t r) {
  return l.gates == 4 && r / l.H == 1;
}

/// keras_to_tf / tf_to_keras: the cell (every kind converts; LSTMCell's options other than
/// forget_bias do not), the sizes, and the pointers both sides always have. Keras has G = gates
/// column blocks of H: 4 (LSTM), 3 (GRU), 1 (SimpleRNN).
Status check_keras(const CellSpec& c, int64_t D, const void* kernel, const void* recurrent_kernel, const void* tf_layer,
                   Layout* l) {
  DYNRNN_TRY(check_kind(c));
  DYNRNN_TRY(check_sizes(c, D));
  DYNRNN_TRY(check_options(c, /*projection=*/false, "; expected none: there is no Keras equivalent"));
  const bool lstm = c.kind == CellKind::kLSTM || c.kind == CellKind::kBasicLSTM;
  l->gates = lstm ? 4 : (c.kind == CellKind::kBasicRNN ? 1 : 3);
  l->two_biases = c.kind == CellKind::kGRUResetAfter;
  l->H = l->Hs = c.num_units;
  l->D = D;
  l->P = 0;
  // Every layout has at most (D + H + 2) * G*H parameters (the reset-after GRU exactly).
  int64_t rows = 0, count = 0;
  if (!checked_add(D, l->H, &rows) || !checked_add(rows, int64_t{2}, &rows) ||
      !checked_product({rows, l->gates, l->H}, &count)) {
    return Status(StatusCode::kInvalidValue, "cell.num_units is " + std::to_string(c.num_units) +
                                                 " and input_size is " + std::to_string(D) +
                                                 ": the layer's weights overflow 64 bits; expected a smaller layer");
  }
  const std::string gw = l->gates > 1 ? std::to_string(l->gates) + " * num_units" : std::string("num_units");
  const std::string cols = std::to_string(l->gates * l->H) + "]";
  return check_pointers(
      {{"kernel", kernel, true, "Keras' kernel [input_size, " + gw + "] = [" + std::to_string(D) + ", " + cols},
       {"recurrent_kernel", recurrent_kernel, true,
        "Keras' recurrent_kernel [num_units, " + gw + "] = [" + std::to_string(l->H) + ", " + cols},
       {"tf_layer", tf_layer, true, "the layer's first parameter in the flat weights (Rnn::params())"}});
}

/// Where Keras gate block g (columns g*H .. g*H + H - 1 of kernel, recurrent_kernel and bias) lives
/// in a TF layer, in elements from the layer's first parameter: D + H kernel rows of `width` columns
/// starting at `kernel`, from column `col`, and the bias from `bias` (the reset-after GRU's recurrent
/// bias row G*H later). The TF layer's parameters are those of host/model.cpp, in its order.
struct TfBlock {
  int64_t kernel, width, col, bias;
};

TfBlock tf_block(const CellSpec& c, const Layout& l, int64_t g) {
  const int64_t rows = l.D + l.H, GW = l.gates * l.H;
  if (c.kind != CellKind::kGRU) {  // kernel [D + H, G*H] (or Keras' two, contiguous), bias
    const int64_t col = (l.gates == 4 ? kTfLstmGate[g] : g) * l.H;
    return {0, GW, col, rows * GW + col};
  }
  // gates/kernel [D + H, 2H] (r, u), gates/bias [2H], candidate/kernel [D + H, H], candidate/bias [H].
  const int64_t candidate = rows * 2 * l.H + 2 * l.H;
  if (g == 2) return {candidate, l.H, 0, candidate + rows * l.H};
  const int64_t col = kTfGruGate[g] * l.H;
  return {0, 2 * l.H, col, rows * 2 * l.H + col};
}

/// Calls f(tf_index, recurrent, keras_index) for every kernel entry; recurrent: the Keras entry is
/// recurrent_kernel's (TF rows D..D + H - 1), else kernel's.
template <typename F>
void for_each_kernel_entry(const CellSpec& c, const Layout& l, F&& f) {
  const int64_t GW = l.gates * l.H;
  for (int64_t g = 0; g < l.gates; ++g) {
    const TfBlock b = tf_block(c, l, g);
    for (int64_t r = 0; r < l.D + l.H; ++r) {
      const bool recurrent = r >= l.D;
      const int64_t from = (recurrent ? r - l.D : r) * GW + g * l.H, to = b.kernel + r * b.width + b.col;
      for (int64_t h = 0; h < l.H; ++h) f(to + h, recurrent, from + h);
    }
  }
}

/// Calls f(tf_index, keras_index, forget) for every bias entry (both rows of the reset-after GRU's);
/// forget: the LSTM's f gate, whose TF bias is Keras' minus forget_bias.
template <typename F>
void for_each_bias_entry(const CellSpec& c, const Layout& l, F&& f) {
  const int64_t GW = l.gates * l.H;
  for (int64_t g = 0; g < l.gates; ++g) {
    const TfBlock b = tf_block(c, l, g);
    for (int64_t h = 0; h < l.H; ++h) {
      f(b.bias + h, g * l.H + h, is_forget_row(l, g * l.H + h));
      if (l.two_biases) f(b.bias + GW + h, GW + g * l.H + h, false);
    }
  }
}

}  // namespace

template <typename T>
Status tf_to_cudnn(const CellSpec& cell, int64_t D, const T* K, const T* b, const T* proj,
                   const CudnnLayerWeights<T>& out) {
  Layout l;
  Status st = check_cell(cell, D, K, b, &l);
  if (!st) return st;
  DYNRNN_TRY(check_cudnn_pointers(l, out.w_ih, out.w_hh, out.b_ih, out.b_hh, out.w_hr, proj, "tf_projection"));
  const int64_t GW = l.gates * l.H;
  for (int64_t r = 0; r < GW; ++r) {
    const int64_t col = tf_column(l, r);
    for (int64_t d = 0; d < l.D; ++d) out.w_ih[r * l.D + d] = K[d * GW + col];
    for (int64_t k = 0; k < l.Hs; ++k) out.w_hh[r * l.Hs + k] = K[(l.D + k) * GW + col];
    using A = compute_t<T>;
    out.b_ih[r] = is_forget_row(l, r) ? T(A(b[col]) + static_cast<A>(cell.forget_bias)) : b[col];
    out.b_hh[r] = l.two_biases ? b[GW + col] : T(A(0));
  }
  for (int64_t p = 0; p < l.P; ++p) {
    for (int64_t h = 0; h < l.H; ++h) out.w_hr[p * l.H + h] = proj[h * l.P + p];
  }
  return Status::ok();
}

template <typename T>
Status cudnn_to_tf(const CellSpec& cell, int64_t D, const CudnnLayerWeights<const T>& in, T* K, T* b, T* proj) {
  Layout l;
  Status st = check_cell(cell, D, K, b, &l);
  if (!st) return st;
  DYNRNN_TRY(check_cudnn_pointers(l, in.w_ih, in.w_hh, in.b_ih, in.b_hh, in.w_hr, proj, "tf_projection"));
  const int64_t GW = l.gates * l.H;
  for (int64_t r = 0; r < GW; ++r) {
    const int64_t col = tf_column(l, r);
    for (int64_t d = 0; d < l.D; ++d) K[d * GW + col] = in.w_ih[r * l.D + d];
    for (int64_t k = 0; k < l.Hs; ++k) K[(l.D + k) * GW + col] = in.w_hh[r * l.Hs + k];
    if (l.two_biases) {
      b[col] = in.b_ih[r];
      b[GW + col] = in.b_hh[r];
      continue;
    }
    using A = compute_t<T>;
    const A sum = A(in.b_ih[r]) + A(in.b_hh[r]);
    b[col] = is_forget_row(l, r) ? sum - static_cast<A>(cell.forget_bias) : sum;
  }
  for (int64_t p = 0; p < l.P; ++p) {
    for (int64_t h = 0; h < l.H; ++h) proj[h * l.P + p] = in.w_hr[p * l.H + h];
  }
  return Status::ok();
}

template <typename T>
Status keras_to_tf(const CellSpec& cell, int64_t D, const KerasLayerWeights<const T>& in, T* tf) {
  Layout l;
  DYNRNN_TRY(check_keras(cell, D, in.kernel, in.recurrent_kernel, tf, &l));
  for_each_kernel_entry(
      cell, l, [&](int64_t t, bool recurrent, int64_t k) { tf[t] = (recurrent ? in.recurrent_kernel : in.kernel)[k]; });
  using A = compute_t<T>;
  for_each_bias_entry(cell, l, [&](int64_t t, int64_t k, bool forget) {
    const T b = in.bias ? in.bias[k] : T(A(0));  // use_bias=False: Keras' biases are zeros
    tf[t] = forget ? T(A(b) - static_cast<A>(cell.forget_bias)) : b;
  });
  return Status::ok();
}

template <typename T>
Status tf_to_keras(const CellSpec& cell, int64_t D, const T* tf, const KerasLayerWeights<T>& out) {
  Layout l;
  DYNRNN_TRY(check_keras(cell, D, out.kernel, out.recurrent_kernel, tf, &l));
  for_each_kernel_entry(cell, l, [&](int64_t t, bool recurrent, int64_t k) {
    (recurrent ? out.recurrent_kernel : out.kernel)[k] = tf[t];
  });
  if (!out.bias) return Status::ok();  // use_bias=False: the TF biases are dropped
  using A = compute_t<T>;
  for_each_bias_entry(cell, l, [&](int64_t t, int64_t k, bool forget) {
    out.bias[k] = forget ? T(A(tf[t]) + static_cast<A>(cell.forget_bias)) : tf[t];
  });
  return Status::ok();
}

#define DYNRNN_INSTANTIATE(T)                                                                                          \
  template Status tf_to_cudnn<T>(const CellSpec&, int64_t, const T*, const T*, const T*, const CudnnLayerWeights<T>&); \
  template Status cudnn_to_tf<T>(const CellSpec&, int64_t, const CudnnLayerWeights<const T>&, T*, T*, T*);             \
  template Status keras_to_tf<T>(const CellSpec&, int64_t, const KerasLayerWeights<const T>&, T*);                     \
  template Status tf_to_keras<T>(const CellSpec&, int64_t, const T*, const KerasLayerWeights<T>&);
DYNRNN_FOR_EACH_ELEMENT_TYPE(DYNRNN_INSTANTIATE)
#undef DYNRNN_INSTANTIATE

}  // namespace dynrnn

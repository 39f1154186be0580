#include <string>

#include "dynrnn/weights.h"
#include "host/element_types.h"
#include "host/status_macros.h"

namespace dynrnn {
namespace {

// cuDNN LSTM gate g (i, f, g, o) is TF gate kTfLstmGate[g] (i, j, f, o); cuDNN GRU gate g (r, z, n)
// is Keras gate kKerasGruGate[g] (z, r, h).
constexpr int kTfLstmGate[4] = {0, 2, 1, 3};
constexpr int kKerasGruGate[3] = {1, 0, 2};

struct Layout {
  int64_t gates, H, D, Hs, P;
  bool two_biases;  ///< reset-after GRU: TF's bias [2, 3H] is cuDNN's b_ih and b_hh
};

Status check_cell(const CellSpec& c, int64_t D, const void* kernel, const void* bias, Layout* l) {
  const int kind = static_cast<int>(c.kind);
  if (kind < 0 || kind > static_cast<int>(CellKind::kGRUResetAfter)) {
    return Status(StatusCode::kInvalidValue, "cell.kind is " + std::to_string(kind) + "; expected a CellKind (0..4)");
  }
  const int act = static_cast<int>(c.activation);
  if (act < 0 || act > static_cast<int>(Activation::kRelu)) {
    return Status(StatusCode::kInvalidValue,
                  "cell.activation is " + std::to_string(act) + "; expected kTanh (0) or kRelu (1)");
  }
  if (c.kind == CellKind::kGRU) {
    return Status(StatusCode::kNotSupported,
                  "cell.kind is kGRU: TF's GRUCell applies the reset gate before the candidate matmul, which "
                  "cuDNN/PyTorch GRUs (reset after) cannot express; kGRUResetAfter (Keras' GRUCell) converts");
  }
  if (c.num_units <= 0 || D <= 0) {
    return Status(StatusCode::kInvalidValue, "cell.num_units is " + std::to_string(c.num_units) +
                                                 " and input_size is " + std::to_string(D) + "; expected both > 0");
  }
  const char* none = "; expected none: there is no cuDNN/PyTorch equivalent";
  if (c.use_peepholes) return Status(StatusCode::kNotSupported, std::string("cell.use_peepholes is true") + none);
  if (c.cell_clip) return Status(StatusCode::kNotSupported, "cell.cell_clip is " + std::to_string(*c.cell_clip) + none);
  if (c.proj_clip) return Status(StatusCode::kNotSupported, "cell.proj_clip is " + std::to_string(*c.proj_clip) + none);
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

/// Names the first missing cuDNN-layout pointer (and the TF projection when num_proj needs it).
Status check_cudnn_pointers(const Layout& l, const void* w_ih, const void* w_hh, const void* b_ih, const void* b_hh,
                            const void* w_hr, const void* proj, const char* proj_name) {
  const struct {
    const char* name;
    const void* ptr;
    bool needed;
  } args[] = {{"w_ih", w_ih, true}, {"w_hh", w_hh, true},    {"b_ih", b_ih, true},
              {"b_hh", b_hh, true}, {"w_hr", w_hr, l.P > 0}, {proj_name, proj, l.P > 0}};
  for (const auto& a : args) {
    if (a.needed && !a.ptr) {
      return Status(StatusCode::kInvalidValue, std::string(a.name) + " is null; expected a buffer" +
                                                   (l.P > 0 ? " (num_proj is " + std::to_string(l.P) + ")" : ""));
    }
  }
  return Status::ok();
}

/// TF column of cuDNN row r (gate-major rows).
int64_t tf_column(const Layout& l, int64_t r) {
  const int64_t g = r / l.H, h = r % l.H;
  return (l.gates == 4 ? kTfLstmGate[g] : (l.gates == 3 ? kKerasGruGate[g] : 0)) * l.H + h;
}

bool is_forget_row(const Layout& l, int64_t r) {
  return l.gates == 4 && r / l.H == 1;
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

#define DYNRNN_INSTANTIATE(T)                                                                                          \
  template Status tf_to_cudnn<T>(const CellSpec&, int64_t, const T*, const T*, const T*, const CudnnLayerWeights<T>&); \
  template Status cudnn_to_tf<T>(const CellSpec&, int64_t, const CudnnLayerWeights<const T>&, T*, T*, T*);
DYNRNN_FOR_EACH_ELEMENT_TYPE(DYNRNN_INSTANTIATE)
#undef DYNRNN_INSTANTIATE

}  // namespace dynrnn

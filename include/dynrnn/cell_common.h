// dynrnn/cell_common.h — what every pointwise stage of every cell shares (part of cell_math.h): the
// activations and clips as TF computes them, the map from a step to each row's time position and
// whether it still runs, views of [T, B, width] sequences, and the masked store of a step's new h
// (DropoutWrapper's state mask included) and its gradient.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "dynrnn/dropout_mask.h"
#include "dynrnn/half_types.h"
#include "dynrnn/host_device.h"
#include "dynrnn/spec.h"

namespace dynrnn {
namespace cell {

/// True for the types cell math computes in (never a 16-bit storage type; load into compute_t first).
template <typename T>
constexpr bool kIsComputeType = std::is_same<T, compute_t<T>>::value;

template <typename T>
DYNRNN_HD T sigmoid(T z) {
  static_assert(kIsComputeType<T>, "compute in compute_t<T>");
  using std::exp;
  return T(1) / (T(1) + exp(-z));
}

template <typename T>
DYNRNN_HD T activate(Activation act, T z) {
  static_assert(kIsComputeType<T>, "compute in compute_t<T>");
  using std::tanh;
  return act == Activation::kTanh ? tanh(z) : (z < T(0) ? T(0) : z);  // relu(NaN) = NaN, as TF's Relu
}

/// Derivative of the activation written from its output y, as TF's TanhGrad and ReluGrad do.
template <typename T>
DYNRNN_HD T activate_grad(Activation act, T y) {
  static_assert(kIsComputeType<T>, "compute in compute_t<T>");
  return act == Activation::kTanh ? T(1) - y * y : (y > T(0) ? T(1) : T(0));
}

/// TF's clip_by_value: maximum(minimum(v, hi), lo); NaN stays NaN, as TF's Minimum and Maximum.
template <typename T>
DYNRNN_HD T clip(T v, T bound) {
  static_assert(kIsComputeType<T>, "compute in compute_t<T>");
  return v > bound ? bound : (v < -bound ? -bound : v);
}

/// The gradient of clip passes where -bound <= v <= bound (inclusive, as TF's Minimum/Maximum grads).
template <typename T>
DYNRNN_HD bool clip_passes(T v, T bound) {
  static_assert(kIsComputeType<T>, "compute in compute_t<T>");
  return v <= bound && v >= -bound;
}

/// A pre-activation as its stored element type holds it. Forward computes a step from this value, so
/// that it is the very value backward (and recompute) reads back: with 16-bit storage, the gradient
/// is then the gradient of the function forward computed.
template <typename T>
DYNRNN_HD compute_t<T> preactivation(compute_t<T> z) {
  return compute_t<T>(T(z));
}

/// A recurrent GEMM result as a stage reads it: only rows still running read it, ended rows read 0.
/// Executors may leave the GEMM rows of ended rows unwritten (Executor::recurrent_steps' running
/// rows, the persistent kernels' ended tiles); what an ended row computes from it is discarded.
template <typename T>
DYNRNN_HD compute_t<T> running_row_value(bool running, const T& v) {
  return running ? compute_t<T>(v) : compute_t<T>(0);
}

/// Entry `e` after `p` of a per-step field (entries of rows x width elements, one per step of a
/// chunk); null stays null. The stages' at_step() use it.
template <typename U>
DYNRNN_HD U* later_entry(U* p, int64_t e, int64_t rows, int64_t width) {
  return p ? p + e * rows * width : p;
}

/// Which rows are still running at step `step`, and which time position each row reads and writes.
/// reverse = the backward direction of a bidirectional RNN at its stack's input and output, where
/// TF applies ReverseSequence: row b at step s uses time L_b - 1 - s while s < L_b, else s.
struct StepMap {
  const int32_t* seq_len = nullptr;  ///< [B] or null (every row runs all max_time steps)
  int64_t step = 0;
  int64_t max_time = 0;

  DYNRNN_HD int64_t length(int64_t b) const {
    if (seq_len == nullptr) return max_time;
    int64_t len = seq_len[b];
    return len < 0 ? 0 : (len > max_time ? max_time : len);
  }
  DYNRNN_HD bool valid(int64_t b) const { return step < length(b); }
  /// Row r of a chunk stage of rows_per_step rows per step that starts at this step: the map of its
  /// step (its batch row is r % rows_per_step).
  DYNRNN_HD StepMap chunk_row(int64_t r, int64_t rows_per_step) const {
    return {seq_len, step + r / rows_per_step, max_time};
  }
  DYNRNN_HD int64_t time(int64_t b, bool reverse) const {
    if (!reverse) return step;
    int64_t len = length(b);
    return step < len ? len - 1 - step : step;
  }
};

/// A [T, B, width] or [B, T, width] sequence, addressed by (time, row) through element strides.
/// A view of a chunk of steps starting at time t_offset holds only those steps. With `rows`, batch
/// row b of the computation is row rows[b] of the sequence (a caller's buffer while the batch runs
/// sorted by length).
template <typename T>
struct SeqView {
  T* data = nullptr;  ///< null: nothing to read (zeros) or write
  int64_t stride_t = 0;
  int64_t stride_b = 0;
  bool reverse = false;
  int64_t t_offset = 0;
  const int32_t* rows = nullptr;  ///< [B] or null (row b is row b)

  DYNRNN_HD T* at(const StepMap& m, int64_t b) const {
    return data + (m.time(b, reverse) - t_offset) * stride_t + (rows ? rows[b] : b) * stride_b;
  }
  /// The same view, read-only.
  DYNRNN_HD SeqView<const T> as_const() const { return {data, stride_t, stride_b, reverse, t_offset, rows}; }
};

/// DropoutWrapper's state_keep_prob: the new h that the next step reads, and the final state, is
/// h / keep * mask at a running row (TF drops the new state inside the cell call, before
/// dynamic_rnn's copy-through; an LSTM's c is never dropped); the output stays h. Backward, the next
/// state's gradient reaches h times mask / keep. Off: the identity, bit for bit.
template <typename A>
struct StateDropout {
  bool on = false;
  dropout::Mask<A> mask;

  DYNRNN_HD A value(A h, const StepMap& m, int64_t b, int64_t j) const {
    return on ? h / mask.keep * mask.at(m.step, b, j) : h;
  }
  DYNRNN_HD A grad(A g, const StepMap& m, int64_t b, int64_t j) const {
    return on ? g * mask.at(m.step, b, j) / mask.keep : g;
  }
};

/// The masked store of a step's new h, element (b, j) at i = b * width + j: the state h_out (h through
/// the state mask at a running row, the previous state copied through at a finished one) and the
/// output y (h, or 0 past the row's length; y.data null: no output here).
template <typename T>
DYNRNN_HD void store_h(compute_t<T> h, bool running, const StateDropout<compute_t<T>>& sd, const StepMap& m, int64_t b,
                       int64_t j, int64_t i, const T* h_prev, T* h_out, const SeqView<T>& y) {
  h_out[i] = running ? T(sd.value(h, m, b, j)) : h_prev[i];
  if (y.data) y.at(m, b)[j] = running ? T(h) : T(compute_t<T>(0));
}

/// The gradient reaching a running row's new h, element (b, j): the next state's (through the state
/// mask) plus the output's (dy.data null: none).
template <typename T>
DYNRNN_HD compute_t<T> h_grad(const StateDropout<compute_t<T>>& sd, const StepMap& m, compute_t<T> dh_next,
                              const SeqView<const T>& dy, int64_t b, int64_t j) {
  using A = compute_t<T>;
  return sd.grad(dh_next, m, b, j) + (dy.data ? A(dy.at(m, b)[j]) : A(0));
}

}  // namespace cell
}  // namespace dynrnn

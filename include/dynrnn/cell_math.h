// dynrnn/cell_math.h — the per-element math of every cell, forward and backward, shared by the CPU
// executor and the CUDA kernels (and callable from users' CUDA code).
//
// Each *Params struct is the complete, plain-old-data contract of one pointwise stage of one time
// step: pointers, row strides and flags. `apply(b, j)` computes element j of batch row b; an
// executor calls it for every b < batch and j < cols, in any order and in parallel (no element
// reads what another element of the same stage writes). Masking by sequence_length happens here,
// with TensorFlow's rules: a row past its length gets zero outputs, copies its state through, and
// in backward gets zero pre-activation gradients and passes the state gradient through.
//
// T is the element type of the buffers; arithmetic happens in A = compute_t<T> (float for the 16-bit
// storage types), so a 16-bit stage rounds only where it stores.
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

/// Copies steps map.step .. map.step + batch / rows_per_step - 1 between two sequence views: a caller
/// sequence (any layout, reversed for the backward direction) and a step-ordered chunk buffer
/// [steps, B, cols]. Gathering a chunk of inputs lets one GEMM project them (and form dW_x);
/// scattering a chunk of input gradients puts them at the caller's positions.
template <typename T>
struct SeqCopyParams {
  StepMap map;                  ///< seq_len, max_time, and step = the chunk's first step
  int64_t batch = 0, cols = 0;  ///< rows (steps * B), width
  int64_t rows_per_step = 0;    ///< B
  SeqView<const T> src;
  SeqView<T> dst;

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    const StepMap m = map.chunk_row(r, rows_per_step);
    const int64_t b = r % rows_per_step;
    dst.at(m, b)[j] = src.at(m, b)[j];
  }
};

/// dst[r * ld + j] = a[r * ld + j] + b[r * ld + j], rounded once: the second direction's input
/// gradient added to the first's (a = dst), and a residual layer's output chunk (input + h).
template <typename T>
struct SumParams {
  using A = compute_t<T>;
  int64_t batch = 0, cols = 0;
  int64_t ld = 0;
  const T* a = nullptr;
  const T* b = nullptr;
  T* dst = nullptr;

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    const int64_t i = r * ld + j;
    dst[i] = T(A(a[i]) + A(b[i]));
  }
};

// ResidualWrapper: a layer's output is its input plus its cell's output h (SumParams for the layers
// below the top).

/// The top layer: its outputs at running rows (the cell stage wrote h; the others stay 0) gain its
/// input, or in backward its input gradient gains the output gradient at running rows (TF's select
/// passes none of a finished row's). input, grad_input: the chunk in step order, [steps * B, cols].
template <typename T>
struct ResidualSeqParams {
  using A = compute_t<T>;
  StepMap map;                  ///< seq_len, max_time, and step = the chunk's first step
  int64_t batch = 0, cols = 0;  ///< rows (steps * B), width
  int64_t rows_per_step = 0;    ///< B
  // Forward:
  const T* input = nullptr;
  SeqView<T> outputs;
  // Backward (grad_outputs.data may be null: nothing to add):
  SeqView<const T> grad_outputs;
  T* grad_input = nullptr;

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    const StepMap m = map.chunk_row(r, rows_per_step);
    const int64_t b = r % rows_per_step;
    if (!m.valid(b)) return;
    const int64_t i = r * cols + j;
    if (input) {
      T& y = outputs.at(m, b)[j];
      y = T(A(y) + A(input[i]));
    } else if (grad_outputs.data) {
      grad_input[i] = T(A(grad_input[i]) + A(grad_outputs.at(m, b)[j]));
    }
  }
};

/// The running sums — the LSTM cell state, the state gradients dh and dc, and the weight-gradient
/// accumulators — live in the compute type (float for 16-bit storage); these convert [rows, cols]
/// buffers between the caller's element type and it.
template <typename T>
struct WidenParams {
  using A = compute_t<T>;
  int64_t batch = 0, cols = 0;
  const T* src = nullptr;
  A* dst = nullptr;
  const int32_t* src_rows = nullptr;  ///< row r reads src row src_rows[r] (a gather), or null

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    dst[r * cols + j] = A(src[(src_rows ? src_rows[r] : r) * cols + j]);
  }
};

template <typename T>
struct NarrowParams {
  using A = compute_t<T>;
  int64_t batch = 0, cols = 0;
  const A* src = nullptr;
  T* dst = nullptr;
  bool accumulate = false;  ///< dst += src (rounded once), for accumulated weight gradients
  /// A state (or state gradient) that passed through a running sum in A: rows that run no step
  /// (invalid at `map`, step 0) take `through`'s bits instead, the value TF copies through, since
  /// narrowing would turn a 16-bit NaN's sign and payload into the canonical NaN. Null: none.
  const T* through = nullptr;
  StepMap map;
  const int32_t* dst_rows = nullptr;  ///< row r goes to dst (and reads through) row dst_rows[r] (a scatter), or null

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    const int64_t i = (dst_rows ? dst_rows[r] : r) * cols + j;
    if (through != nullptr && !map.valid(r)) {
      dst[i] = through[i];
      return;
    }
    const A v = src[r * cols + j];
    dst[i] = T(accumulate ? A(dst[i]) + v : v);
  }
};

/// dst row (dst_rows ? dst_rows[r] : r) = src row (src_rows ? src_rows[r] : r), bit for bit: states
/// into and out of a batch that runs sorted by length.
template <typename T>
struct PermuteRowsParams {
  int64_t batch = 0, cols = 0;
  const T* src = nullptr;
  T* dst = nullptr;
  const int32_t* src_rows = nullptr;
  const int32_t* dst_rows = nullptr;

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    dst[(dst_rows ? dst_rows[r] : r) * cols + j] = src[(src_rows ? src_rows[r] : r) * cols + j];
  }
};

// ---------------------------------------------------------------------------------------------
// BasicRNNCell: h' = act(x Kx + h Kh + b)

template <typename T>
struct RnnForwardParams {
  using A = compute_t<T>;
  StepMap map;
  int64_t batch = 0, cols = 0;  ///< B, H
  Activation act = Activation::kTanh;
  SeqView<const T> gx;         ///< input projection, width H
  const T* gh = nullptr;       ///< [B, H] recurrent GEMM result
  const T* bias = nullptr;     ///< [H]
  const T* h_prev = nullptr;   ///< [B, H]
  T* h_out = nullptr;          ///< [B, H]
  SeqView<T> y;                ///< outputs, width H (null below the top layer)
  StateDropout<A> state_drop;  ///< DropoutWrapper state_keep_prob (off by default)
  T* z_save = nullptr;         ///< [B, H] pre-activation (training) or null

  /// The same stage e steps later in its chunk: map.step advances, and so does every per-step field
  /// (the GEMM result it reads is the same buffer each step).
  DYNRNN_HD RnnForwardParams at_step(int64_t e) const {
    RnnForwardParams p = *this;
    p.map.step += e;
    p.h_prev = later_entry(h_prev, e, batch, cols);
    p.h_out = later_entry(h_out, e, batch, cols);
    p.z_save = later_entry(z_save, e, batch, cols);
    return p;
  }

  DYNRNN_HD void apply(int64_t b, int64_t j) const {
    const int64_t i = b * cols + j;
    const bool v = map.valid(b);
    A z = preactivation<T>(gx.at(map, b)[j] + running_row_value(v, gh[i]) + bias[j]);
    if (z_save) z_save[i] = z;
    A h = activate(act, z);
    store_h(h, v, state_drop, map, b, j, i, h_prev, h_out, y);
  }
};

template <typename T>
struct RnnBackwardParams {
  using A = compute_t<T>;
  StepMap map;
  int64_t batch = 0, cols = 0;
  Activation act = Activation::kTanh;
  const T* z = nullptr;        ///< [B, H] saved pre-activation
  SeqView<const T> dy;         ///< upstream output gradient (data may be null = zero)
  StateDropout<A> state_drop;  ///< DropoutWrapper state_keep_prob (off by default)
  const A* dh_next = nullptr;  ///< [B, H] gradient of the state after this step
  A* dh_prev = nullptr;        ///< [B, H] out: pass-through (finished rows) or 0; the GEMM adds dz Kh^T
  T* dz = nullptr;             ///< [B, H] out, step order

  /// The stage of step map.step + e of the same chunk (backward walks e downwards): per-step fields
  /// advance by e entries; the running state gradients are this step's ping-pong buffers.
  DYNRNN_HD RnnBackwardParams at_step(int64_t e, const A* next, A* prev) const {
    RnnBackwardParams p = *this;
    p.map.step += e;
    p.z = later_entry(z, e, batch, cols);
    p.dz = later_entry(dz, e, batch, cols);
    p.dh_next = next;
    p.dh_prev = prev;
    return p;
  }

  DYNRNN_HD void apply(int64_t b, int64_t j) const {
    const int64_t i = b * cols + j;
    A g = A(0);
    if (map.valid(b)) {
      A dh = h_grad(state_drop, map, dh_next[i], dy, b, j);
      g = dh * activate_grad(act, activate(act, A(z[i])));
      dh_prev[i] = A(0);
    } else {
      dh_prev[i] = dh_next[i];
    }
    dz[i] = g;
  }
};

// ---------------------------------------------------------------------------------------------
// BasicLSTMCell / LSTMCell, gate column order i, j, f, o.

/// The constants of an LSTM layer that every LSTM stage needs.
template <typename T>
struct LstmConfig {
  Activation act = Activation::kTanh;
  compute_t<T> forget_bias = 1;
  bool has_cell_clip = false;
  compute_t<T> cell_clip = 0;
  const T* w_f = nullptr;  ///< [H] peepholes (all three or none)
  const T* w_i = nullptr;
  const T* w_o = nullptr;
};

template <typename A>
struct LstmGates {
  A si, g, sf, c_raw, c, so, a;  ///< sigma(i^), act(j), sigma(f^), c before/after clip, sigma(o^), act(c)
};

/// Recomputes the forward of one LSTM unit from its pre-activations (the same arithmetic in
/// forward and backward, so backward sees bit-identical values).
template <typename T, typename A = compute_t<T>>
DYNRNN_HD LstmGates<A> lstm_gates(const LstmConfig<T>& k, typename ComputeType<T>::type zi,
                                  typename ComputeType<T>::type zj, typename ComputeType<T>::type zf,
                                  typename ComputeType<T>::type zo, typename ComputeType<T>::type c_prev, int64_t j) {
  LstmGates<A> s;
  A f_hat = zf + k.forget_bias;
  A i_hat = zi;
  if (k.w_f) {
    f_hat = f_hat + A(k.w_f[j]) * c_prev;
    i_hat = i_hat + A(k.w_i[j]) * c_prev;
  }
  s.sf = sigmoid(f_hat);
  s.si = sigmoid(i_hat);
  s.g = activate(k.act, zj);
  s.c_raw = s.sf * c_prev + s.si * s.g;
  s.c = k.has_cell_clip ? clip(s.c_raw, k.cell_clip) : s.c_raw;
  A o_hat = k.w_o ? zo + A(k.w_o[j]) * s.c : zo;
  s.so = sigmoid(o_hat);
  s.a = activate(k.act, s.c);
  return s;
}

template <typename T>
struct LstmForwardParams {
  using A = compute_t<T>;
  StepMap map;
  int64_t batch = 0, cols = 0;  ///< B, H
  LstmConfig<T> cfg;
  bool project = false;        ///< num_proj: write m_raw; the projection stage masks h and y
  SeqView<const T> gx;         ///< input projection, width 4H
  const T* gh = nullptr;       ///< [B, 4H] recurrent GEMM result
  const T* bias = nullptr;     ///< [4H]
  const A* c_prev = nullptr;   ///< [B, H] (c is kept in the compute type)
  const T* h_prev = nullptr;   ///< [B, H] (no projection)
  A* c_out = nullptr;          ///< [B, H]
  T* h_out = nullptr;          ///< [B, H] (no projection)
  SeqView<T> y;                ///< outputs, width H (no projection)
  StateDropout<A> state_drop;  ///< DropoutWrapper state_keep_prob (off by default)
  T* m_raw = nullptr;          ///< [B, H] projection input (projection only), unmasked
  T* z_save = nullptr;         ///< [B, 4H] pre-activations (training) or null

  /// The same stage e steps later in its chunk: map.step advances, and so does every per-step field
  /// (the GEMM result it reads is the same buffer each step).
  DYNRNN_HD LstmForwardParams at_step(int64_t e) const {
    LstmForwardParams p = *this;
    p.map.step += e;
    p.c_prev = later_entry(c_prev, e, batch, cols);
    p.c_out = later_entry(c_out, e, batch, cols);
    p.h_prev = later_entry(h_prev, e, batch, cols);
    p.h_out = later_entry(h_out, e, batch, cols);
    p.m_raw = later_entry(m_raw, e, batch, cols);
    p.z_save = later_entry(z_save, e, batch, 4 * cols);
    return p;
  }

  DYNRNN_HD void apply(int64_t b, int64_t j) const {
    const int64_t H = cols;
    const T* x4 = gx.at(map, b);
    const T* h4 = gh + b * 4 * H;
    const bool v = map.valid(b);
    A zi = preactivation<T>(x4[j] + running_row_value(v, h4[j]) + bias[j]);
    A zj = preactivation<T>(x4[H + j] + running_row_value(v, h4[H + j]) + bias[H + j]);
    A zf = preactivation<T>(x4[2 * H + j] + running_row_value(v, h4[2 * H + j]) + bias[2 * H + j]);
    A zo = preactivation<T>(x4[3 * H + j] + running_row_value(v, h4[3 * H + j]) + bias[3 * H + j]);
    if (z_save) {
      T* zs = z_save + b * 4 * H;
      zs[j] = zi;
      zs[H + j] = zj;
      zs[2 * H + j] = zf;
      zs[3 * H + j] = zo;
    }
    const int64_t i = b * H + j;
    A cp = c_prev[i];
    LstmGates<A> s = lstm_gates(cfg, zi, zj, zf, zo, cp, j);
    A m = s.so * s.a;
    c_out[i] = v ? s.c : cp;
    if (project) {
      m_raw[i] = m;
    } else {
      store_h(m, v, state_drop, map, b, j, i, h_prev, h_out, y);
    }
  }
};

template <typename T>
struct LstmBackwardParams {
  using A = compute_t<T>;
  StepMap map;
  int64_t batch = 0, cols = 0;
  LstmConfig<T> cfg;
  bool project = false;        ///< the gradient of m_raw comes from dm_raw
  const T* z = nullptr;        ///< [B, 4H] saved pre-activations
  const A* c_prev = nullptr;   ///< [B, H]
  SeqView<const T> dy;         ///< no projection: upstream output gradient (data may be null)
  StateDropout<A> state_drop;  ///< DropoutWrapper state_keep_prob (off by default)
  const A* dh_next = nullptr;  ///< no projection: [B, H] gradient of h after this step
  A* dh_prev = nullptr;        ///< no projection: [B, H] out, pass-through or 0 (the GEMM adds dz Kh^T)
  const T* dm_raw = nullptr;   ///< projection: [B, H] gradient of m_raw (zero on finished rows)
  A* dc = nullptr;             ///< [B, H] in: gradient of c after this step; out: before it
  T* dz = nullptr;             ///< [B, 4H] out, step order
  T* dpeep = nullptr;          ///< [B, 3H] out per-row peephole gradients (f, i, o) or null

  /// The stage of step map.step + e of the same chunk (backward walks e downwards): per-step fields
  /// advance by e entries; the running state gradients are this step's ping-pong buffers.
  /// (With a projection the state gradient is the projection stage's, and dm_raw is its GEMM's.)
  DYNRNN_HD LstmBackwardParams at_step(int64_t e, const A* next, A* prev) const {
    LstmBackwardParams p = *this;
    p.map.step += e;
    p.z = later_entry(z, e, batch, 4 * cols);
    p.c_prev = later_entry(c_prev, e, batch, cols);
    p.dz = later_entry(dz, e, batch, 4 * cols);
    p.dpeep = later_entry(dpeep, e, batch, 3 * cols);
    if (!project) {
      p.dh_next = next;
      p.dh_prev = prev;
    }
    return p;
  }

  DYNRNN_HD void apply(int64_t b, int64_t j) const {
    const int64_t H = cols;
    const int64_t i = b * H + j;
    A di = A(0), dj = A(0), df = A(0), dout = A(0);
    A pf = A(0), pi = A(0), po = A(0);
    if (map.valid(b)) {
      const T* z4 = z + b * 4 * H;
      A cp = c_prev[i];
      LstmGates<A> s = lstm_gates(cfg, z4[j], z4[H + j], z4[2 * H + j], z4[3 * H + j], cp, j);
      A dm;
      if (project) {
        dm = dm_raw[i];
      } else {
        dm = h_grad(state_drop, map, dh_next[i], dy, b, j);
        dh_prev[i] = A(0);
      }
      dout = dm * s.a * (s.so * (A(1) - s.so));
      A dcv = dc[i] + dm * s.so * activate_grad(cfg.act, s.a);
      if (cfg.w_o) dcv = dcv + dout * cfg.w_o[j];
      A dc_raw = (cfg.has_cell_clip && !clip_passes(s.c_raw, cfg.cell_clip)) ? A(0) : dcv;
      df = dc_raw * cp * (s.sf * (A(1) - s.sf));
      di = dc_raw * s.g * (s.si * (A(1) - s.si));
      dj = dc_raw * s.si * activate_grad(cfg.act, s.g);
      A dcp = dc_raw * s.sf;
      if (cfg.w_f) {
        dcp = dcp + df * cfg.w_f[j] + di * cfg.w_i[j];
        pf = df * cp;
        pi = di * cp;
        po = dout * s.c;
      }
      dc[i] = dcp;
    } else if (!project) {
      dh_prev[i] = dh_next[i];  // finished row: state gradient passes through; dc is left as is
    }
    T* d4 = dz + b * 4 * H;
    d4[j] = di;
    d4[H + j] = dj;
    d4[2 * H + j] = df;
    d4[3 * H + j] = dout;
    if (dpeep) {
      T* p3 = dpeep + b * 3 * H;
      p3[j] = pf;
      p3[H + j] = pi;
      p3[2 * H + j] = po;
    }
  }
};

/// LSTMCell num_proj: m = clip(m_raw @ W_proj) — this stage takes the GEMM result m_p and masks.
template <typename T>
struct ProjForwardParams {
  using A = compute_t<T>;
  StepMap map;
  int64_t batch = 0, cols = 0;  ///< B, P
  bool has_proj_clip = false;
  compute_t<T> proj_clip = 0;
  const T* m_p = nullptr;      ///< [B, P] projection GEMM result
  const T* h_prev = nullptr;   ///< [B, P]
  T* h_out = nullptr;          ///< [B, P]
  SeqView<T> y;                ///< outputs, width P
  StateDropout<A> state_drop;  ///< DropoutWrapper state_keep_prob (off by default)

  /// The same stage e steps later in its chunk (the projection result m_p is a per-step field too).
  DYNRNN_HD ProjForwardParams at_step(int64_t e) const {
    ProjForwardParams p = *this;
    p.map.step += e;
    p.m_p = later_entry(m_p, e, batch, cols);
    p.h_prev = later_entry(h_prev, e, batch, cols);
    p.h_out = later_entry(h_out, e, batch, cols);
    return p;
  }

  DYNRNN_HD void apply(int64_t b, int64_t k) const {
    const int64_t i = b * cols + k;
    const bool v = map.valid(b);
    const A mp = running_row_value(v, m_p[i]);
    A m = has_proj_clip ? clip(mp, proj_clip) : mp;
    store_h(m, v, state_drop, map, b, k, i, h_prev, h_out, y);
  }
};

template <typename T>
struct ProjBackwardParams {
  using A = compute_t<T>;
  StepMap map;
  int64_t batch = 0, cols = 0;  ///< B, P
  bool has_proj_clip = false;
  compute_t<T> proj_clip = 0;
  const T* m_p = nullptr;      ///< [B, P] saved projection result (before the clip)
  SeqView<const T> dy;         ///< upstream output gradient (data may be null)
  StateDropout<A> state_drop;  ///< DropoutWrapper state_keep_prob (off by default)
  const A* dh_next = nullptr;  ///< [B, P]
  A* dh_prev = nullptr;        ///< [B, P] out: pass-through or 0 (the GEMM adds dz Kh^T)
  T* dm_p = nullptr;           ///< [B, P] out: gradient of m_p (0 on finished rows)

  /// The stage of step map.step + e of the same chunk (backward walks e downwards): per-step fields
  /// advance by e entries; the running state gradients are this step's ping-pong buffers.
  DYNRNN_HD ProjBackwardParams at_step(int64_t e, const A* next, A* prev) const {
    ProjBackwardParams p = *this;
    p.map.step += e;
    p.m_p = later_entry(m_p, e, batch, cols);
    p.dm_p = later_entry(dm_p, e, batch, cols);
    p.dh_next = next;
    p.dh_prev = prev;
    return p;
  }

  DYNRNN_HD void apply(int64_t b, int64_t k) const {
    const int64_t i = b * cols + k;
    A g = A(0);
    if (map.valid(b)) {
      A dm = h_grad(state_drop, map, dh_next[i], dy, b, k);
      g = (has_proj_clip && !clip_passes(A(m_p[i]), proj_clip)) ? A(0) : dm;
      dh_prev[i] = A(0);
    } else {
      dh_prev[i] = dh_next[i];
    }
    dm_p[i] = g;
  }
};

// ---------------------------------------------------------------------------------------------
// The update step of both GRU forms: h' = u h + (1 - u) c, with u the update gate and c the
// activated candidate.

template <typename A>
DYNRNN_HD A gru_update(A u, A h_prev, A c) {
  return u * h_prev + (A(1) - u) * c;
}

/// Its backward from dh', the gradient of h': h's direct share (the recurrent GEMMs add the rest),
/// and the gradients of the candidate's and of u's pre-activations.
template <typename A>
struct GruUpdateGrads {
  A dh_prev, dc, du;
};

template <typename A>
DYNRNN_HD GruUpdateGrads<A> gru_update_grads(Activation act, A dh, A u, A h_prev, A c) {
  return {dh * u, dh * (A(1) - u) * activate_grad(act, c), (dh * h_prev - dh * c) * (u * (A(1) - u))};
}

// ---------------------------------------------------------------------------------------------
// GRUCell (TF form): r, u = sigma([x, h] Wg + bg); c = act([x, r*h] Wc + bc); h' = u h + (1 - u) c.
// Stage "gates" produces r*h for the candidate GEMM; stage "candidate" finishes the step.

template <typename T>
struct GruGatesForwardParams {
  using A = compute_t<T>;
  StepMap map;
  int64_t batch = 0, cols = 0;  ///< B, H
  SeqView<const T> gx;          ///< input projection of the gates, width 2H (r | u)
  const T* gh = nullptr;        ///< [B, 2H]
  const T* bias = nullptr;      ///< [2H]
  const T* h_prev = nullptr;    ///< [B, H]
  T* zg = nullptr;              ///< [B, 2H] out: gate pre-activations (kept for the candidate stage)
  T* rh = nullptr;              ///< [B, H] out: r * h

  /// The same stage e steps later in its chunk: map.step advances, and so does every per-step field
  /// (the GEMM result it reads is the same buffer each step).
  DYNRNN_HD GruGatesForwardParams at_step(int64_t e) const {
    GruGatesForwardParams p = *this;
    p.map.step += e;
    p.h_prev = later_entry(h_prev, e, batch, cols);
    p.zg = later_entry(zg, e, batch, 2 * cols);
    p.rh = later_entry(rh, e, batch, cols);
    return p;
  }

  DYNRNN_HD void apply(int64_t b, int64_t j) const {
    const int64_t H = cols;
    const T* x2 = gx.at(map, b);
    const T* h2 = gh + b * 2 * H;
    const bool v = map.valid(b);
    A zr = preactivation<T>(x2[j] + running_row_value(v, h2[j]) + bias[j]);
    A zu = preactivation<T>(x2[H + j] + running_row_value(v, h2[H + j]) + bias[H + j]);
    zg[b * 2 * H + j] = zr;
    zg[b * 2 * H + H + j] = zu;
    rh[b * H + j] = sigmoid(zr) * h_prev[b * H + j];
  }
};

template <typename T>
struct GruCandidateForwardParams {
  using A = compute_t<T>;
  StepMap map;
  int64_t batch = 0, cols = 0;
  Activation act = Activation::kTanh;
  SeqView<const T> gx;         ///< input projection of the candidate, width H
  const T* gc = nullptr;       ///< [B, H] (r*h) Wc_h
  const T* bias = nullptr;     ///< [H]
  const T* zg = nullptr;       ///< [B, 2H]
  const T* h_prev = nullptr;   ///< [B, H]
  T* h_out = nullptr;          ///< [B, H]
  SeqView<T> y;                ///< outputs, width H
  StateDropout<A> state_drop;  ///< DropoutWrapper state_keep_prob (off by default)
  T* zc_save = nullptr;        ///< [B, H] candidate pre-activation (training) or null

  /// The same stage e steps later in its chunk: map.step advances, and so does every per-step field
  /// (the GEMM result it reads is the same buffer each step).
  DYNRNN_HD GruCandidateForwardParams at_step(int64_t e) const {
    GruCandidateForwardParams p = *this;
    p.map.step += e;
    p.zg = later_entry(zg, e, batch, 2 * cols);
    p.h_prev = later_entry(h_prev, e, batch, cols);
    p.h_out = later_entry(h_out, e, batch, cols);
    p.zc_save = later_entry(zc_save, e, batch, cols);
    return p;
  }

  DYNRNN_HD void apply(int64_t b, int64_t j) const {
    const int64_t H = cols;
    const int64_t i = b * H + j;
    const bool v = map.valid(b);
    A zc = preactivation<T>(gx.at(map, b)[j] + running_row_value(v, gc[i]) + bias[j]);
    if (zc_save) zc_save[i] = zc;
    A c = activate(act, zc);
    A u = sigmoid(A(zg[b * 2 * H + H + j]));
    A h = gru_update(u, A(h_prev[i]), c);
    store_h(h, v, state_drop, map, b, j, i, h_prev, h_out, y);
  }
};

template <typename T>
struct GruCandidateBackwardParams {
  using A = compute_t<T>;
  StepMap map;
  int64_t batch = 0, cols = 0;
  Activation act = Activation::kTanh;
  const T* zg = nullptr;      ///< [B, 2H] saved
  const T* zc = nullptr;      ///< [B, H] saved
  const T* h_prev = nullptr;  ///< [B, H]
  SeqView<const T> dy;
  StateDropout<A> state_drop;  ///< DropoutWrapper state_keep_prob (off by default)
  const A* dh_next = nullptr;  ///< [B, H]
  A* dh_prev = nullptr;        ///< [B, H] out: pass-through, or dh' * u (the gates stage and a GEMM add more)
  T* dzc = nullptr;            ///< [B, H] out
  T* dzg = nullptr;            ///< [B, 2H] out: writes the u half

  /// The stage of step map.step + e of the same chunk (backward walks e downwards): per-step fields
  /// advance by e entries; the running state gradients are this step's ping-pong buffers.
  DYNRNN_HD GruCandidateBackwardParams at_step(int64_t e, const A* next, A* prev) const {
    GruCandidateBackwardParams p = *this;
    p.map.step += e;
    p.zg = later_entry(zg, e, batch, 2 * cols);
    p.zc = later_entry(zc, e, batch, cols);
    p.h_prev = later_entry(h_prev, e, batch, cols);
    p.dzc = later_entry(dzc, e, batch, cols);
    p.dzg = later_entry(dzg, e, batch, 2 * cols);
    p.dh_next = next;
    p.dh_prev = prev;
    return p;
  }

  DYNRNN_HD void apply(int64_t b, int64_t j) const {
    const int64_t H = cols;
    const int64_t i = b * H + j;
    A gc = A(0), gu = A(0);
    if (map.valid(b)) {
      A dh = h_grad(state_drop, map, dh_next[i], dy, b, j);
      A u = sigmoid(A(zg[b * 2 * H + H + j]));
      const GruUpdateGrads<A> g = gru_update_grads(act, dh, u, A(h_prev[i]), activate(act, A(zc[i])));
      dh_prev[i] = g.dh_prev;
      gc = g.dc;
      gu = g.du;
    } else {
      dh_prev[i] = dh_next[i];
    }
    dzc[i] = gc;
    dzg[b * 2 * H + H + j] = gu;
  }
};

template <typename T>
struct GruGatesBackwardParams {
  using A = compute_t<T>;
  StepMap map;
  int64_t batch = 0, cols = 0;
  const T* zg = nullptr;      ///< [B, 2H] saved
  const T* h_prev = nullptr;  ///< [B, H]
  const T* drh = nullptr;     ///< [B, H] gradient of r*h (dzc Wc_h^T)
  A* dh_prev = nullptr;       ///< [B, H] in/out: adds d(r*h) * r
  T* dzg = nullptr;           ///< [B, 2H] out: writes the r half

  /// The stage of step map.step + e of the same chunk (backward walks e downwards): per-step fields
  /// advance by e entries; the running state gradients are this step's ping-pong buffers.
  DYNRNN_HD GruGatesBackwardParams at_step(int64_t e, const A* /*next*/, A* prev) const {
    GruGatesBackwardParams p = *this;
    p.map.step += e;
    p.zg = later_entry(zg, e, batch, 2 * cols);
    p.h_prev = later_entry(h_prev, e, batch, cols);
    p.dzg = later_entry(dzg, e, batch, 2 * cols);
    p.dh_prev = prev;
    return p;
  }

  DYNRNN_HD void apply(int64_t b, int64_t j) const {
    const int64_t H = cols;
    const int64_t i = b * H + j;
    A gr = A(0);
    if (map.valid(b)) {
      A r = sigmoid(A(zg[b * 2 * H + j]));
      A d = drh[i];
      dh_prev[i] = dh_prev[i] + d * r;
      gr = (d * h_prev[i]) * (r * (A(1) - r));
    }
    dzg[b * 2 * H + j] = gr;
  }
};

// ---------------------------------------------------------------------------------------------
// Reset-after GRU (Keras GRUCell(reset_after=True), cuDNN's and PyTorch's GRU), gate columns z, r, h:
//   z = sigma(x Wz + b_iz + h Rz + b_rz), r = sigma(x Wr + b_ir + h Rr + b_rr),
//   n = h Rh + b_rh, h~ = act(x Wh + b_ih + r * n), h' = z h + (1 - z) h~.
// One recurrent GEMM [B, 3H] per step and one stage. Saved per step: the pre-activations
// (z^, r^, h~^) and n, the recurrent term that the reset gate scales.

/// The pre-activations of one unit from its input and recurrent GEMM results (without biases):
/// forward and recompute share this arithmetic, so recompute regenerates forward's values.
template <typename T>
struct GruResetAfterPreacts {
  using A = compute_t<T>;
  A z, r, h, n;  ///< z^, r^, h~^ (as stored: preactivation<T>), and n (likewise)

  /// x3, h3: the unit's gate columns (z, r, h) of the two GEMM results at j, j + H, j + 2H; bias [2, 3H].
  DYNRNN_HD GruResetAfterPreacts(const T* x3, A hz, A hr, A hn, const T* bias, int64_t H, int64_t j) {
    const T* bi = bias;
    const T* br = bias + 3 * H;
    z = preactivation<T>((A(x3[j]) + A(bi[j])) + (hz + A(br[j])));
    r = preactivation<T>((A(x3[H + j]) + A(bi[H + j])) + (hr + A(br[H + j])));
    n = preactivation<T>(hn + A(br[2 * H + j]));
    h = preactivation<T>((A(x3[2 * H + j]) + A(bi[2 * H + j])) + sigmoid(r) * n);
  }
};

template <typename T>
struct GruResetAfterForwardParams {
  using A = compute_t<T>;
  StepMap map;
  int64_t batch = 0, cols = 0;  ///< B, H
  Activation act = Activation::kTanh;
  SeqView<const T> gx;         ///< input projection x [Wz Wr Wh], width 3H
  const T* gh = nullptr;       ///< [B, 3H] recurrent GEMM result h [Rz Rr Rh]
  const T* bias = nullptr;     ///< [2, 3H]: input row, recurrent row
  const T* h_prev = nullptr;   ///< [B, H]
  T* h_out = nullptr;          ///< [B, H]
  SeqView<T> y;                ///< outputs, width H
  StateDropout<A> state_drop;  ///< DropoutWrapper state_keep_prob (off by default)
  T* z_save = nullptr;         ///< [B, 3H] pre-activations z^, r^, h~^ (training) or null
  T* n_save = nullptr;         ///< [B, H] n = h Rh + b_rh (training) or null

  /// The same stage e steps later in its chunk: map.step advances, and so does every per-step field
  /// (the GEMM result it reads is the same buffer each step).
  DYNRNN_HD GruResetAfterForwardParams at_step(int64_t e) const {
    GruResetAfterForwardParams p = *this;
    p.map.step += e;
    p.h_prev = later_entry(h_prev, e, batch, cols);
    p.h_out = later_entry(h_out, e, batch, cols);
    p.z_save = later_entry(z_save, e, batch, 3 * cols);
    p.n_save = later_entry(n_save, e, batch, cols);
    return p;
  }

  DYNRNN_HD void apply(int64_t b, int64_t j) const {
    const int64_t H = cols;
    const int64_t i = b * H + j;
    const T* h3 = gh + b * 3 * H;
    const bool v = map.valid(b);
    const GruResetAfterPreacts<T> s(gx.at(map, b), running_row_value(v, h3[j]), running_row_value(v, h3[H + j]),
                                    running_row_value(v, h3[2 * H + j]), bias, H, j);
    if (z_save) {
      T* z3 = z_save + b * 3 * H;
      z3[j] = s.z;
      z3[H + j] = s.r;
      z3[2 * H + j] = s.h;
      n_save[i] = s.n;
    }
    const A h = gru_update(sigmoid(s.z), A(h_prev[i]), activate(act, s.h));
    store_h(h, v, state_drop, map, b, j, i, h_prev, h_out, y);
  }
};

template <typename T>
struct GruResetAfterBackwardParams {
  using A = compute_t<T>;
  StepMap map;
  int64_t batch = 0, cols = 0;
  Activation act = Activation::kTanh;
  const T* z = nullptr;       ///< [B, 3H] saved z^, r^, h~^
  const T* n = nullptr;       ///< [B, H] saved n
  const T* h_prev = nullptr;  ///< [B, H]
  SeqView<const T> dy;
  StateDropout<A> state_drop;  ///< DropoutWrapper state_keep_prob (off by default)
  const A* dh_next = nullptr;  ///< [B, H]
  A* dh_prev = nullptr;        ///< [B, H] out: pass-through, or dh' * z (the GEMM adds dz R^T)
  T* dz = nullptr;             ///< [B, 3H] out: gradients of z^, r^ and n (the recurrent GEMM's result)
  T* dzh = nullptr;            ///< [B, H] out: gradient of h~^ (the input side's third gate)

  /// The stage of step map.step + e of the same chunk (backward walks e downwards): per-step fields
  /// advance by e entries; the running state gradients are this step's ping-pong buffers.
  DYNRNN_HD GruResetAfterBackwardParams at_step(int64_t e, const A* next, A* prev) const {
    GruResetAfterBackwardParams p = *this;
    p.map.step += e;
    p.z = later_entry(z, e, batch, 3 * cols);
    p.n = later_entry(n, e, batch, cols);
    p.h_prev = later_entry(h_prev, e, batch, cols);
    p.dz = later_entry(dz, e, batch, 3 * cols);
    p.dzh = later_entry(dzh, e, batch, cols);
    p.dh_next = next;
    p.dh_prev = prev;
    return p;
  }

  DYNRNN_HD void apply(int64_t b, int64_t j) const {
    const int64_t H = cols;
    const int64_t i = b * H + j;
    A gz = A(0), gr = A(0), gn = A(0), gh = A(0);
    if (map.valid(b)) {
      const T* z3 = z + b * 3 * H;
      const A dh = h_grad(state_drop, map, dh_next[i], dy, b, j);
      const A r = sigmoid(A(z3[H + j]));
      const GruUpdateGrads<A> g =
          gru_update_grads(act, dh, sigmoid(A(z3[j])), A(h_prev[i]), activate(act, A(z3[2 * H + j])));
      dh_prev[i] = g.dh_prev;
      gh = g.dc;
      gz = g.du;
      gn = gh * r;
      gr = (gh * A(n[i])) * (r * (A(1) - r));
    } else {
      dh_prev[i] = dh_next[i];
    }
    T* d3 = dz + b * 3 * H;
    d3[j] = gz;
    d3[H + j] = gr;
    d3[2 * H + j] = gn;
    dzh[i] = gh;
  }
};

// ---------------------------------------------------------------------------------------------
// Recompute (RnnSpec::recompute): backward regenerates a chunk's saved fields from its states with
// the very arithmetic of the forward stages, rows = steps * B at once.

/// z = gx + gh + bias: a pre-activation from its input and recurrent GEMM results.
template <typename T>
struct PreactivationParams {
  using A = compute_t<T>;
  int64_t batch = 0, cols = 0;
  const T* gx = nullptr;    ///< [rows, cols]
  const T* gh = nullptr;    ///< [rows, cols]
  const T* bias = nullptr;  ///< [cols]
  T* z = nullptr;           ///< [rows, cols]

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    const int64_t i = r * cols + j;
    z[i] = gx[i] + gh[i] + bias[j];
  }
};

/// Reset-after GRU: the saved pre-activations and n from a chunk's two GEMM results [rows, 3H].
template <typename T>
struct GruResetAfterRegenParams {
  using A = compute_t<T>;
  int64_t batch = 0, cols = 0;  ///< rows, H
  const T* gx = nullptr;        ///< [rows, 3H] x W
  const T* gh = nullptr;        ///< [rows, 3H] h R
  const T* bias = nullptr;      ///< [2, 3H]
  T* z = nullptr;               ///< [rows, 3H]
  T* n = nullptr;               ///< [rows, H]

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    const int64_t H = cols;
    const T* h3 = gh + r * 3 * H;
    const GruResetAfterPreacts<T> s(gx + r * 3 * H, A(h3[j]), A(h3[H + j]), A(h3[2 * H + j]), bias, H, j);
    T* z3 = z + r * 3 * H;
    z3[j] = s.z;
    z3[H + j] = s.r;
    z3[2 * H + j] = s.h;
    n[r * H + j] = s.n;
  }
};

/// GRU: r * h from the gate pre-activations.
template <typename T>
struct GruResetParams {
  using A = compute_t<T>;
  int64_t batch = 0, cols = 0;  ///< rows, H
  const T* zg = nullptr;        ///< [rows, 2H]
  const T* h_prev = nullptr;    ///< [rows, H]
  T* rh = nullptr;              ///< [rows, H]

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    rh[r * cols + j] = sigmoid(A(zg[r * 2 * cols + j])) * h_prev[r * cols + j];
  }
};

/// LSTM with projection: m_raw = sigma(o^) * act(c) from the pre-activations and c_prev.
template <typename T>
struct LstmOutputParams {
  using A = compute_t<T>;
  int64_t batch = 0, cols = 0;  ///< rows, H
  LstmConfig<T> cfg;
  const T* z = nullptr;       ///< [rows, 4H]
  const A* c_prev = nullptr;  ///< [rows, H]
  T* m_raw = nullptr;         ///< [rows, H]

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    const int64_t H = cols;
    const T* z4 = z + r * 4 * H;
    LstmGates<A> s = lstm_gates(cfg, z4[j], z4[H + j], z4[2 * H + j], z4[3 * H + j], c_prev[r * H + j], j);
    m_raw[r * H + j] = s.so * s.a;
  }
};

}  // namespace cell
}  // namespace dynrnn

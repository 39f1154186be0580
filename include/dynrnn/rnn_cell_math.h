// dynrnn/rnn_cell_math.h — BasicRNNCell forward and backward stages (part of cell_math.h).
#pragma once

#include <cstdint>

#include "dynrnn/cell_common.h"

namespace dynrnn {
namespace cell {

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

}  // namespace cell
}  // namespace dynrnn

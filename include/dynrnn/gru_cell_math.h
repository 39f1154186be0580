// dynrnn/gru_cell_math.h — TF's GRUCell (two stages per step) and Keras' reset-after GRUCell (one),
// forward and backward (part of cell_math.h).
#pragma once

#include <cstdint>

#include "dynrnn/cell_common.h"

namespace dynrnn {
namespace cell {

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

}  // namespace cell
}  // namespace dynrnn

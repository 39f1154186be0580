// dynrnn/lstm_cell_math.h — BasicLSTMCell and LSTMCell forward and backward stages, and LSTMCell's
// projection (part of cell_math.h).
#pragma once

#include <cstdint>

#include "dynrnn/cell_common.h"

namespace dynrnn {
namespace cell {

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

}  // namespace cell
}  // namespace dynrnn

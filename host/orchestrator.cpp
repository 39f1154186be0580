#include "host/orchestrator.h"

#include "host/status_macros.h"

namespace dynrnn {

template <typename T>
Status Orchestrator<T>::forward(const ForwardCall<T>& c) {
  workspace_ = c.workspace;
  reserve_ = c.reserve;
  time_major_ = c.time_major;
  const int64_t T_ = p_.max_time, B = p_.batch, lb = c.loop_bound;
  if (B == 0) return Status::ok();
  for (int d = 0; d < m_.num_directions(); ++d) {
    const int top = static_cast<int>(m_.dirs[d].size()) - 1;
    for (const LayerModel& l : m_.dirs[d]) {
      const LayerPlan& lp = p_.dirs[d][l.layer];
      const bool first = l.layer == 0;
      const int64_t Din = l.in_width, GW = l.gate_width, H = l.units, O = l.out_width;
      // Batch-major input rows are interleaved over time, so every row is projected; step-ordered
      // rows stop at the loop bound.
      const T* in = first ? c.x : at(p_.dirs[d][l.layer - 1].y);
      const int64_t in_rows = (first && !time_major_) ? T_ * B : lb * B;
      DYNRNN_TRY(ex_.gemm(in_rows, GW, Din, T(1), {in, Din, false}, {c.weights + l.kernel, GW, false}, T(0),
                          at(lp.gx), GW));
      if (l.is_gru) {
        DYNRNN_TRY(ex_.gemm(in_rows, H, Din, T(1), {in, Din, false}, {c.weights + l.cand_kernel, H, false}, T(0),
                            at(lp.gxc), H));
      }
      const bool reverse = d == 1;
      cell::SeqView<const T> gx = first ? user_view<const T>(at(lp.gx), GW, reverse) : step_view<const T>(at(lp.gx), GW);
      cell::SeqView<const T> gxc =
          first ? user_view<const T>(at(lp.gxc), H, reverse) : step_view<const T>(at(lp.gxc), H);
      cell::SeqView<T> y;
      if (l.layer == top) {
        y = user_view(c.outputs[d], O, reverse);
        // Steps past the loop bound never run; their outputs are zeros, as TF's TensorArray reads them.
        if (lb < T_) DYNRNN_TRY(ex_.fill_zero(c.outputs[d], T_ * B, O, O));
      } else {
        y = step_view(at(lp.y), O);
      }
      const T* init = c.initial_state;
      if (init) {
        DYNRNN_TRY(ex_.copy(at(lp.hseq, 0), init + B * l.state_col_h, B * O));
        if (l.is_lstm) DYNRNN_TRY(ex_.copy(at(lp.cseq, 0), init + B * l.state_col_c, B * H));
      } else {
        DYNRNN_TRY(ex_.fill_zero(at(lp.hseq, 0), B, O, O));
        if (l.is_lstm) DYNRNN_TRY(ex_.fill_zero(at(lp.cseq, 0), B, H, H));
      }
      for (int64_t s = 0; s < lb; ++s) {
        DYNRNN_TRY(forward_step(c, l, lp, s, gx, gxc, y));
      }
      if (c.final_state) {
        DYNRNN_TRY(ex_.copy(c.final_state + B * l.state_col_h, at(lp.hseq, lb), B * O));
        if (l.is_lstm) DYNRNN_TRY(ex_.copy(c.final_state + B * l.state_col_c, at(lp.cseq, lb), B * H));
      }
    }
  }
  return Status::ok();
}

template <typename T>
Status Orchestrator<T>::forward_step(const ForwardCall<T>& c, const LayerModel& l, const LayerPlan& lp, int64_t s,
                                     cell::SeqView<const T> gx, cell::SeqView<const T> gxc, cell::SeqView<T> y) {
  const int64_t B = p_.batch, Din = l.in_width, GW = l.gate_width, H = l.units, O = l.out_width;
  const T* W = c.weights;
  const bool training = p_.training;
  cell::StepMap map{c.seq_len, s, p_.max_time};
  T* hp = at(lp.hseq, s);
  T* hn = at(lp.hseq, s + 1);
  T* gh = at(lp.gh);
  DYNRNN_TRY(ex_.gemm(B, GW, O, T(1), {hp, O, false}, {W + l.kernel + Din * GW, GW, false}, T(0), gh, GW));
  if (l.is_gru) {
    cell::GruGatesForwardParams<T> g;
    g.map = map;
    g.batch = B;
    g.cols = H;
    g.gx = gx;
    g.gh = gh;
    g.bias = W + l.bias;
    g.h_prev = hp;
    g.zg = at(lp.z, s);
    g.rh = at(lp.rh, s);
    DYNRNN_TRY(ex_.pointwise(g));
    T* gc = at(lp.ghc);
    DYNRNN_TRY(ex_.gemm(B, H, H, T(1), {g.rh, H, false}, {W + l.cand_kernel + Din * H, H, false}, T(0), gc, H));
    cell::GruCandidateForwardParams<T> k;
    k.map = map;
    k.batch = B;
    k.cols = H;
    k.act = l.cell.activation;
    k.gx = gxc;
    k.gc = gc;
    k.bias = W + l.cand_bias;
    k.zg = g.zg;
    k.h_prev = hp;
    k.h_out = hn;
    k.y = y;
    k.zc_save = training ? at(lp.zc, s) : nullptr;
    return ex_.pointwise(k);
  }
  if (!l.is_lstm) {
    cell::RnnForwardParams<T> k;
    k.map = map;
    k.batch = B;
    k.cols = H;
    k.act = l.cell.activation;
    k.gx = gx;
    k.gh = gh;
    k.bias = W + l.bias;
    k.h_prev = hp;
    k.h_out = hn;
    k.y = y;
    k.z_save = training ? at(lp.z, s) : nullptr;
    return ex_.pointwise(k);
  }
  cell::LstmForwardParams<T> k;
  k.map = map;
  k.batch = B;
  k.cols = H;
  k.act = l.cell.activation;
  k.forget_bias = static_cast<T>(l.cell.forget_bias);
  k.has_cell_clip = l.cell.cell_clip.has_value();
  k.cell_clip = static_cast<T>(l.cell.cell_clip.value_or(0.0));
  k.project = l.project;
  k.gx = gx;
  k.gh = gh;
  k.bias = W + l.bias;
  if (l.peepholes) {
    k.w_f = W + l.peephole;
    k.w_i = k.w_f + H;
    k.w_o = k.w_f + 2 * H;
  }
  k.c_prev = at(lp.cseq, s);
  k.c_out = at(lp.cseq, s + 1);
  k.h_prev = hp;
  k.h_out = hn;
  k.y = y;
  k.m_raw = at(lp.mraw, s);
  k.z_save = training ? at(lp.z, s) : nullptr;
  DYNRNN_TRY(ex_.pointwise(k));
  if (!l.project) return Status::ok();
  T* mp = at(lp.mp, s);
  DYNRNN_TRY(ex_.gemm(B, O, H, T(1), {k.m_raw, H, false}, {W + l.projection, O, false}, T(0), mp, O));
  cell::ProjForwardParams<T> pk;
  pk.map = map;
  pk.batch = B;
  pk.cols = O;
  pk.has_proj_clip = l.cell.proj_clip.has_value();
  pk.proj_clip = static_cast<T>(l.cell.proj_clip.value_or(0.0));
  pk.m_p = mp;
  pk.h_prev = hp;
  pk.h_out = hn;
  pk.y = y;
  return ex_.pointwise(pk);
}

template <typename T>
Status Orchestrator<T>::backward(const BackwardCall<T>& c) {
  workspace_ = c.workspace;
  reserve_ = const_cast<char*>(c.reserve);  // backward only reads reserve regions
  time_major_ = c.time_major;
  const int64_t T_ = p_.max_time, B = p_.batch, lb = c.loop_bound;
  const T* W = c.weights;
  T* G = c.grad_weights;
  const bool acc = c.accumulate_grad_weights;
  const T beta_w = acc ? T(1) : T(0);
  for (int d = 0; d < m_.num_directions(); ++d) {
    const int top = static_cast<int>(m_.dirs[d].size()) - 1;
    const bool reverse = d == 1;
    for (int li = top; li >= 0; --li) {
      const LayerModel& l = m_.dirs[d][li];
      const LayerPlan& lp = p_.dirs[d][li];
      const bool first = li == 0;
      const int64_t Din = l.in_width, GW = l.gate_width, H = l.units, O = l.out_width;
      const T* in = first ? c.x : at(p_.dirs[d][li - 1].y);
      const int64_t in_rows = (first && !time_major_) ? T_ * B : lb * B;
      cell::SeqView<const T> dy;
      if (li == top) {
        if (c.grad_outputs[d]) dy = user_view(c.grad_outputs[d], O, reverse);
      } else {
        dy = step_view<const T>(at(p_.dy[d][li % 2]), O);
      }
      T* dh[2] = {at(lp.dh, 0), at(lp.dh, 1)};
      T* dc = at(lp.dc);
      if (B > 0) {
        if (c.grad_final_state) {
          DYNRNN_TRY(ex_.copy(dh[0], c.grad_final_state + B * l.state_col_h, B * O));
          if (l.is_lstm) DYNRNN_TRY(ex_.copy(dc, c.grad_final_state + B * l.state_col_c, B * H));
        } else {
          DYNRNN_TRY(ex_.fill_zero(dh[0], B, O, O));
          if (l.is_lstm) DYNRNN_TRY(ex_.fill_zero(dc, B, H, H));
        }
      }
      const bool dual = lp.dz_x.present();
      if (dual && lb < T_ && B > 0) {
        DYNRNN_TRY(ex_.fill_zero(at(lp.dz_x), T_ * B, GW, GW));
        if (l.is_gru) DYNRNN_TRY(ex_.fill_zero(at(lp.dzc_x), T_ * B, H, H));
      }
      int cur = 0;
      for (int64_t s = lb - 1; s >= 0; --s) {
        DYNRNN_TRY(backward_step(c, l, lp, s, dy, dh[cur], dh[1 - cur]));
        cur = 1 - cur;
      }
      if (c.grad_initial_state && B > 0) {
        DYNRNN_TRY(ex_.copy(c.grad_initial_state + B * l.state_col_h, dh[cur], B * O));
        if (l.is_lstm) DYNRNN_TRY(ex_.copy(c.grad_initial_state + B * l.state_col_c, dc, B * H));
      }
      // The gradients at the input's positions: the dual copy, or the step-ordered one when they coincide.
      const T* dzx = dual ? at(lp.dz_x) : at(lp.dz);
      const T* dzcx = dual ? at(lp.dzc_x) : at(lp.dzc);
      const int64_t steps = lb * B;
      if (G) {
        DYNRNN_TRY(ex_.gemm(Din, GW, in_rows, T(1), {in, Din, true}, {dzx, GW, false}, beta_w, G + l.kernel, GW));
        DYNRNN_TRY(ex_.gemm(O, GW, steps, T(1), {at(lp.hseq, 0), O, true}, {at(lp.dz), GW, false}, beta_w,
                            G + l.kernel + Din * GW, GW));
        DYNRNN_TRY(ex_.column_sum(steps, GW, at(lp.dz), acc, G + l.bias));
        if (l.project) {
          DYNRNN_TRY(ex_.gemm(H, O, steps, T(1), {at(lp.mraw, 0), H, true}, {at(lp.dmp), O, false}, beta_w,
                              G + l.projection, O));
        }
        if (l.peepholes) DYNRNN_TRY(ex_.column_sum(steps, 3 * H, at(lp.dpeep), acc, G + l.peephole));
        if (l.is_gru) {
          DYNRNN_TRY(ex_.gemm(Din, H, in_rows, T(1), {in, Din, true}, {dzcx, H, false}, beta_w, G + l.cand_kernel, H));
          DYNRNN_TRY(ex_.gemm(H, H, steps, T(1), {at(lp.rh, 0), H, true}, {at(lp.dzc), H, false}, beta_w,
                              G + l.cand_kernel + Din * H, H));
          DYNRNN_TRY(ex_.column_sum(steps, H, at(lp.dzc), acc, G + l.cand_bias));
        }
      }
      // Gradient of this layer's input: the caller's grad_inputs (both directions add into it) or
      // the upstream of the layer below.
      T* din = first ? c.grad_inputs : at(p_.dy[d][(li - 1) % 2]);
      if (!din) continue;
      T beta_in = T(0);
      if (first && d == 1) beta_in = T(1);
      if (first && d == 0 && in_rows < T_ * B) {
        DYNRNN_TRY(ex_.fill_zero(din + in_rows * Din, T_ * B - in_rows, Din, Din));
      }
      DYNRNN_TRY(ex_.gemm(in_rows, Din, GW, T(1), {dzx, GW, false}, {W + l.kernel, GW, true}, beta_in, din, Din));
      if (l.is_gru) {
        DYNRNN_TRY(ex_.gemm(in_rows, Din, H, T(1), {dzcx, H, false}, {W + l.cand_kernel, H, true}, T(1), din, Din));
      }
    }
  }
  return Status::ok();
}

template <typename T>
Status Orchestrator<T>::backward_step(const BackwardCall<T>& c, const LayerModel& l, const LayerPlan& lp, int64_t s,
                                      cell::SeqView<const T> dy, T* dh_next, T* dh_prev) {
  const int64_t B = p_.batch, Din = l.in_width, GW = l.gate_width, H = l.units, O = l.out_width;
  const T* W = c.weights;
  const bool reverse = l.direction == 1;
  cell::StepMap map{c.seq_len, s, p_.max_time};
  const T* hp = at(lp.hseq, s);
  T* dz = at(lp.dz, s);
  cell::SeqView<T> dz_x;
  if (lp.dz_x.present()) dz_x = user_view(at(lp.dz_x), GW, reverse);
  const T* Kh = W + l.kernel + Din * GW;
  if (l.is_gru) {
    cell::GruCandidateBackwardParams<T> k;
    k.map = map;
    k.batch = B;
    k.cols = H;
    k.act = l.cell.activation;
    k.zg = at(lp.z, s);
    k.zc = at(lp.zc, s);
    k.h_prev = hp;
    k.dy = dy;
    k.dh_next = dh_next;
    k.dh_prev = dh_prev;
    k.dzc = at(lp.dzc, s);
    if (lp.dzc_x.present()) k.dzc_x = user_view(at(lp.dzc_x), H, reverse);
    k.dzg = dz;
    k.dzg_x = dz_x;
    DYNRNN_TRY(ex_.pointwise(k));
    T* drh = at(lp.drh);
    DYNRNN_TRY(ex_.gemm(B, H, H, T(1), {k.dzc, H, false}, {W + l.cand_kernel + Din * H, H, true}, T(0), drh, H));
    cell::GruGatesBackwardParams<T> g;
    g.map = map;
    g.batch = B;
    g.cols = H;
    g.zg = k.zg;
    g.h_prev = hp;
    g.drh = drh;
    g.dh_prev = dh_prev;
    g.dzg = dz;
    g.dzg_x = dz_x;
    DYNRNN_TRY(ex_.pointwise(g));
  } else if (!l.is_lstm) {
    cell::RnnBackwardParams<T> k;
    k.map = map;
    k.batch = B;
    k.cols = H;
    k.act = l.cell.activation;
    k.z = at(lp.z, s);
    k.dy = dy;
    k.dh_next = dh_next;
    k.dh_prev = dh_prev;
    k.dz = dz;
    k.dz_x = dz_x;
    DYNRNN_TRY(ex_.pointwise(k));
  } else {
    cell::LstmBackwardParams<T> k;
    k.map = map;
    k.batch = B;
    k.cols = H;
    k.act = l.cell.activation;
    k.forget_bias = static_cast<T>(l.cell.forget_bias);
    k.has_cell_clip = l.cell.cell_clip.has_value();
    k.cell_clip = static_cast<T>(l.cell.cell_clip.value_or(0.0));
    k.project = l.project;
    k.z = at(lp.z, s);
    k.c_prev = at(lp.cseq, s);
    if (l.peepholes) {
      k.w_f = W + l.peephole;
      k.w_i = k.w_f + H;
      k.w_o = k.w_f + 2 * H;
    }
    k.dc = at(lp.dc);
    k.dz = dz;
    k.dz_x = dz_x;
    k.dpeep = at(lp.dpeep, s);
    if (l.project) {
      cell::ProjBackwardParams<T> pk;
      pk.map = map;
      pk.batch = B;
      pk.cols = O;
      pk.has_proj_clip = l.cell.proj_clip.has_value();
      pk.proj_clip = static_cast<T>(l.cell.proj_clip.value_or(0.0));
      pk.m_p = at(lp.mp, s);
      pk.dy = dy;
      pk.dh_next = dh_next;
      pk.dh_prev = dh_prev;
      pk.dm_p = at(lp.dmp, s);
      DYNRNN_TRY(ex_.pointwise(pk));
      T* dmraw = at(lp.dmraw);
      DYNRNN_TRY(ex_.gemm(B, H, O, T(1), {pk.dm_p, O, false}, {W + l.projection, O, true}, T(0), dmraw, H));
      k.dm_raw = dmraw;
    } else {
      k.dy = dy;
      k.dh_next = dh_next;
      k.dh_prev = dh_prev;
    }
    DYNRNN_TRY(ex_.pointwise(k));
  }
  // dh_prev += dz Kh^T (GRU: the gates' share; its candidate share came through d(r*h)).
  return ex_.gemm(B, O, GW, T(1), {dz, GW, false}, {Kh, GW, true}, T(1), dh_prev, O);
}

template class Orchestrator<float>;
template class Orchestrator<double>;

}  // namespace dynrnn

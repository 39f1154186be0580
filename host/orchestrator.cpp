#include "host/orchestrator.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "host/length_order.h"
#include "host/status_macros.h"

namespace dynrnn {

namespace {

/// The constants of an LSTM layer's stages.
template <typename T>
cell::LstmConfig<T> lstm_config(const LayerModel& l, const T* weights) {
  cell::LstmConfig<T> k;
  k.act = l.cell.activation;
  k.forget_bias = static_cast<compute_t<T>>(l.cell.forget_bias);
  k.has_cell_clip = l.cell.cell_clip.has_value();
  k.cell_clip = static_cast<compute_t<T>>(l.cell.cell_clip.value_or(0.0));
  if (l.peepholes) {
    k.w_f = weights + l.peephole;
    k.w_i = k.w_f + l.units;
    k.w_o = k.w_f + 2 * l.units;
  }
  return k;
}

/// A cell stage's parameters with its step map and extent set.
template <typename P>
P stage_params(const cell::StepMap& map, int64_t batch, int64_t cols) {
  P p;
  p.map = map;
  p.batch = batch;
  p.cols = cols;
  return p;
}

}  // namespace

template <typename T>
typename Orchestrator<T>::Slot Orchestrator<T>::slot(const LayerModel& l, int64_t chunk, bool backward) const {
  const LayerPlan& lp = plan(l);
  T* base = backward && !p_.resident(chunk, n_chunks_) ? at(lp.staging, chunk) : at(lp.ring, chunk);
  const ChunkSlot& other = backward ? lp.regen : lp.scratch;
  T* other_base = at(backward ? lp.rscratch : lp.fscratch);
  auto field = [&](int64_t kept, int64_t scratch) {
    return kept >= 0 ? base + kept : (scratch >= 0 ? other_base + scratch : nullptr);
  };
  const ChunkSlot& s = lp.slot;
  return {base,
          field(s.hs, other.hs),
          wide(field(s.cs, other.cs)),
          field(s.z, other.z),
          field(s.zc, other.zc),
          field(s.rh, other.rh),
          field(s.mraw, other.mraw),
          field(s.mp, other.mp),
          field(s.ys, other.ys)};
}

template <typename T>
Status Orchestrator<T>::copy_state(const LayerModel& l, T* dst, const T* src) {
  const int64_t B = p_.batch;
  const int64_t cols[2] = {l.state_col_h, l.state_col_c};
  const int64_t widths[2] = {l.out_width, l.is_lstm ? l.units : 0};
  for (int i = 0; i < 2; ++i) {
    if (widths[i] == 0) continue;
    if (src) {
      DYNRNN_TRY(ex_.copy(dst + B * cols[i], src + B * cols[i], B * widths[i]));
    } else {
      DYNRNN_TRY(ex_.fill_zero(dst + B * cols[i], B, widths[i], widths[i]));
    }
  }
  return Status::ok();
}

template <typename T>
Status Orchestrator<T>::copy_steps(cell::SeqView<const T> src, cell::SeqView<T> dst, int64_t first_step, int64_t steps,
                                   int64_t width) {
  cell::SeqCopyParams<T> p;
  p.map = cell::StepMap{seq_len_, first_step, p_.max_time};
  p.batch = steps * p_.batch;
  p.cols = width;
  p.rows_per_step = p_.batch;
  p.src = src;
  p.dst = dst;
  return ex_.pointwise(p);
}

template <typename T>
Status Orchestrator<T>::forward(const ForwardCall<T>& c) {
  workspace_ = c.workspace;
  reserve_ = c.reserve;
  dropout_seed_ = c.dropout_seed;
  dropout_seed_at_ = c.dropout_seed_at;
  time_major_ = c.time_major;
  loop_bound_ = c.loop_bound;
  n_chunks_ = p_.chunks_for(c.loop_bound);
  const int64_t T_ = p_.max_time, B = p_.batch, lb = c.loop_bound;
  if (B == 0) return Status::ok();
  DYNRNN_TRY(order_batch(c.seq_len, c.host_seq_len, p_.fwd_rows, p_.fwd_sorted_len));
  for (int d = 0; d < m_.num_directions(); ++d) {
    for (const LayerModel& l : m_.dirs[d]) {
      const LayerPlan& lp = plan(l);
      const int64_t H = l.units, O = l.out_width;
      if (rows_ && lp.proj_queue != lp.queue) {  // the projections' queue gathers rows in the run's order
        DYNRNN_TRY(ex_.set_queue(lp.proj_queue));
        DYNRNN_TRY(ex_.wait(p_.ev_sorted));
      }
      DYNRNN_TRY(ex_.set_queue(lp.queue));
      if (rows_) DYNRNN_TRY(ex_.wait(p_.ev_sorted));
      // Steps past the loop bound never run; their outputs are zeros, as TF's TensorArray reads them.
      if (!above(l) && lb < T_) DYNRNN_TRY(ex_.fill_zero(c.outputs[d], T_ * B, O, c.outputs_ld[d]));
      if (n_chunks_ == 0) {
        // No step runs: the final state is the initial state.
        if (c.final_state) DYNRNN_TRY(copy_state(l, c.final_state, c.initial_state));
        continue;
      }
      const Slot first = slot(l, 0);
      if (c.initial_state) {
        DYNRNN_TRY(reorder_state(first.hs, c.initial_state + B * l.state_col_h, O, false));
        if (l.is_lstm) DYNRNN_TRY(widen(first.cs, c.initial_state + B * l.state_col_c, H));
      } else {
        DYNRNN_TRY(ex_.fill_zero(first.hs, B, O, O));
        if (l.is_lstm) DYNRNN_TRY(zero_wide(first.cs, H));
      }
    }
  }
  // The wavefront: chunk by chunk, every layer of every direction.
  for (int64_t ch = 0; ch < n_chunks_; ++ch) {
    for (int d = 0; d < m_.num_directions(); ++d) {
      for (const LayerModel& l : m_.dirs[d]) DYNRNN_TRY(forward_chunk(c, l, ch));
    }
  }
  if (c.final_state && n_chunks_ > 0) {
    const int64_t n_last = lb - (n_chunks_ - 1) * p_.chunk;
    for (int d = 0; d < m_.num_directions(); ++d) {
      for (const LayerModel& l : m_.dirs[d]) {
        const Slot last = slot(l, n_chunks_ - 1);
        DYNRNN_TRY(ex_.set_queue(plan(l).queue));
        DYNRNN_TRY(
            reorder_state(c.final_state + B * l.state_col_h, entry(last.hs, n_last, l.out_width), l.out_width, true));
        if (l.is_lstm) {
          const T* init_c = c.initial_state ? c.initial_state + B * l.state_col_c : nullptr;
          DYNRNN_TRY(narrow_state(c.final_state + B * l.state_col_c, entry(last.cs, n_last, l.units), init_c, l.units));
        }
      }
    }
  }
  return ex_.set_queue(0);
}

template <typename T>
Status Orchestrator<T>::forward_chunk(const ForwardCall<T>& c, const LayerModel& l, int64_t ch) {
  const LayerPlan& lp = plan(l);
  const int64_t B = p_.batch, Din = l.in_width, GW = l.gate_width, H = l.units, O = l.out_width, K = p_.chunk;
  const int64_t s0 = ch * K, s1 = std::min(s0 + K, loop_bound_), n = s1 - s0;
  const int64_t R = p_.ring;
  const bool reverse = l.direction == 1;
  const Slot S = slot(l, ch);
  // The chunk's input projection: on the layer's queue before its steps, or (pipeline_projections) on
  // its own queue into slot ps of two, where it runs beside the previous chunk's steps.
  const bool pipelined = lp.proj_queue != lp.queue;
  const int64_t ps = ch % lp.gx.slots;
  DYNRNN_TRY(ex_.set_queue(lp.proj_queue));
  if (pipelined && ch >= 2) DYNRNN_TRY(ex_.wait(lp.ev_proj_free + static_cast<int>(ps)));
  // This chunk's inputs: the states the layer below produced in the same chunk (rows of finished
  // batch entries carry copied-through states instead of zeros: they only feed steps whose results
  // are discarded, and their gradients are exactly zero), or the caller's x, gathered into step
  // order unless it is already (time-major, forward direction).
  const T* in = c.x + s0 * B * Din;
  const LayerModel* lo = below(l);
  if (lo) {
    DYNRNN_TRY(ex_.wait(plan(*lo).ev_fwd_done));
    in = layer_output(*lo, ch, false);
  } else if (gathers_input(l)) {
    in = at(lp.xg, ps);
    DYNRNN_TRY(copy_steps(user_view(c.x, Din, reverse), chunk_view(at(lp.xg, ps), Din, s0), s0, n, Din));
  }
  // DropoutWrapper: the cell reads its input through the input mask (a residual adds the undropped one).
  const T* cell_in = in;
  if (l.input_dropout) {
    cell_in = at(lp.xd);
    DYNRNN_TRY(apply_dropout(l, dropout::Site::kInput, chunk_view<const T>(in, Din, s0), chunk_view(at(lp.xd), Din, s0),
                             s0, n, Din, false, false));
  }
  DYNRNN_TRY(ex_.gemm(n * B, GW, Din, A(1), {cell_in, Din, false}, {c.weights + l.kernel, GW, false}, A(0),
                      at(lp.gx, ps), GW));
  if (l.is_gru) {
    DYNRNN_TRY(ex_.gemm(n * B, H, Din, A(1), {cell_in, Din, false}, {c.weights + l.cand_kernel, H, false}, A(0),
                        at(lp.gxc, ps), H));
  }
  // A residual layer reads its input once more after its steps.
  if (lo && !l.residual) DYNRNN_TRY(ex_.record(lp.ev_fwd_read));
  if (pipelined) {
    DYNRNN_TRY(ex_.record(lp.ev_proj_ready + static_cast<int>(ps)));
    DYNRNN_TRY(ex_.set_queue(lp.queue));
    DYNRNN_TRY(ex_.wait(lp.ev_proj_ready + static_cast<int>(ps)));
  }
  if (ch >= R) {
    // The slot still holds chunk ch - R: it must be on the host and read by the layer above.
    if (p_.swap) DYNRNN_TRY(ex_.wait(lp.ev_saved + static_cast<int>((ch - R) % p_.save_events)));
    if (above(l)) DYNRNN_TRY(ex_.wait(plan(*above(l)).ev_fwd_read));
  }
  const cell::SeqView<const T> gx = chunk_view<const T>(at(lp.gx, ps), GW, s0);
  const cell::SeqView<const T> gxc = chunk_view<const T>(at(lp.gxc, ps), H, s0);
  if (ch > 0) {
    // Carry the state across the chunk boundary (chunk ch - 1 is still in the ring: R >= 2).
    const Slot prev = slot(l, ch - 1);
    DYNRNN_TRY(ex_.copy(S.hs, entry(prev.hs, K, O), B * O));
    if (l.is_lstm) DYNRNN_TRY(copy_wide(S.cs, entry(prev.cs, K, H), H));
  }
  // The top layer writes the caller's outputs; one whose state is dropped writes its undropped output
  // for the layer above.
  cell::SeqView<T> y = user_view(c.outputs[l.direction], O, reverse, c.outputs_ld[l.direction]);
  if (above(l)) y = l.state_dropout ? chunk_view(S.ys, O, s0) : cell::SeqView<T>{};
  DYNRNN_TRY(ex_.recurrent_steps(recurrent_steps(c, l, S, s0, n, gx, gxc, y)));
  DYNRNN_TRY(wrap_outputs(l, S, s0, n, in, y));
  if (lo && l.residual) DYNRNN_TRY(ex_.record(lp.ev_fwd_read));
  if (pipelined) DYNRNN_TRY(ex_.record(lp.ev_proj_free + static_cast<int>(ps)));
  DYNRNN_TRY(ex_.record(lp.ev_fwd_done));
  if (!p_.resident(ch, n_chunks_)) {
    DYNRNN_TRY(ex_.set_queue(p_.copy_queue));
    DYNRNN_TRY(ex_.wait(lp.ev_fwd_done));
    DYNRNN_TRY(ex_.copy_to_host(host_chunk(l, c.host, ch), S.base, lp.slot.elems));
    DYNRNN_TRY(ex_.record(lp.ev_saved + static_cast<int>(ch % p_.save_events)));
  }
  return Status::ok();
}

template <typename T>
RecurrentSteps<T> Orchestrator<T>::recurrent_steps(const ForwardCall<T>& c, const LayerModel& l, const Slot& slot,
                                                   int64_t s0, int64_t n, cell::SeqView<const T> gx,
                                                   cell::SeqView<const T> gxc, cell::SeqView<T> y) const {
  const LayerPlan& lp = plan(l);
  const int64_t B = p_.batch, Din = l.in_width, GW = l.gate_width, H = l.units, O = l.out_width;
  const T* W = c.weights;
  const cell::StepMap map{seq_len_, s0, p_.max_time};
  RecurrentSteps<T> r(chunk_steps(s0, n));
  RecurrentStage<T>& s1 = r.stage[0];
  s1.in = slot.hs;
  s1.in_step = B * O;
  s1.k = O;
  s1.w = W + l.kernel + Din * GW;
  s1.out = at(lp.gh);
  const cell::StateDropout<A> sd = state_dropout(l);
  if (l.is_gru) {
    s1.gates = 2;
    auto g = stage_params<cell::GruGatesForwardParams<T>>(map, B, H);
    g.gx = gx;
    g.gh = s1.out;
    g.bias = W + l.bias;
    g.h_prev = slot.hs;
    g.zg = slot.z;
    g.rh = slot.rh;
    s1.op = g;
    RecurrentStage<T>& s2 = r.stage[1];
    r.stages = 2;
    s2.in = slot.rh;
    s2.in_step = B * H;
    s2.k = H;
    s2.w = W + l.cand_kernel + Din * H;
    s2.out = at(lp.ghc);
    auto k = stage_params<cell::GruCandidateForwardParams<T>>(map, B, H);
    k.act = l.cell.activation;
    k.gx = gxc;
    k.gc = s2.out;
    k.bias = W + l.cand_bias;
    k.zg = slot.z;
    k.h_prev = slot.hs;
    k.h_out = entry(slot.hs, 1, O);
    k.y = y;
    k.state_drop = sd;
    k.zc_save = slot.zc;
    s2.op = k;
    return r;
  }
  if (!l.is_lstm) {
    // One stage from h to h: BasicRNNCell, or the reset-after GRU (three gates, and it saves n).
    auto set = [&](auto k) {
      k.act = l.cell.activation;
      k.gx = gx;
      k.gh = s1.out;
      k.bias = W + l.bias;
      k.h_prev = slot.hs;
      k.h_out = entry(slot.hs, 1, O);
      k.y = y;
      k.state_drop = sd;
      k.z_save = slot.z;
      return k;
    };
    if (l.reset_after) {
      s1.gates = 3;
      auto k = set(stage_params<cell::GruResetAfterForwardParams<T>>(map, B, H));
      k.n_save = slot.zc;
      s1.op = k;
    } else {
      s1.op = set(stage_params<cell::RnnForwardParams<T>>(map, B, H));
    }
    return r;
  }
  s1.gates = 4;
  auto k = stage_params<cell::LstmForwardParams<T>>(map, B, H);
  k.cfg = lstm_config(l, W);
  k.project = l.project;
  k.gx = gx;
  k.gh = s1.out;
  k.bias = W + l.bias;
  k.c_prev = slot.cs;
  k.c_out = entry(slot.cs, 1, H);
  if (l.project) {
    k.m_raw = slot.mraw;
  } else {
    k.h_prev = slot.hs;
    k.h_out = entry(slot.hs, 1, O);
    k.y = y;
    k.state_drop = sd;
  }
  k.z_save = slot.z;
  s1.op = k;
  if (!l.project) return r;
  RecurrentStage<T>& s2 = r.stage[1];
  r.stages = 2;
  s2.in = slot.mraw;
  s2.in_step = B * H;
  s2.k = H;
  s2.w = W + l.projection;
  s2.out = slot.mp;
  s2.out_step = B * O;
  auto pk = stage_params<cell::ProjForwardParams<T>>(map, B, O);
  pk.has_proj_clip = l.cell.proj_clip.has_value();
  pk.proj_clip = static_cast<compute_t<T>>(l.cell.proj_clip.value_or(0.0));
  pk.m_p = slot.mp;
  pk.h_prev = slot.hs;
  pk.h_out = entry(slot.hs, 1, O);
  pk.y = y;
  pk.state_drop = sd;
  s2.op = pk;
  return r;
}

template <typename T>
Status Orchestrator<T>::backward(const BackwardCall<T>& c) {
  workspace_ = c.workspace;
  reserve_ = const_cast<char*>(c.reserve);  // backward only reads the reserve
  dropout_seed_ = c.dropout_seed;
  dropout_seed_at_ = c.dropout_seed_at;
  time_major_ = c.time_major;
  loop_bound_ = c.loop_bound;
  n_chunks_ = p_.chunks_for(c.loop_bound);
  const int64_t T_ = p_.max_time, B = p_.batch;
  if (B == 0 || n_chunks_ == 0) {
    // Nothing to walk (an empty batch costs O(1) whatever T is): the weight gradients are zero, and
    // the initial state's gradient is the final state's (both empty when B = 0).
    for (int d = 0; d < m_.num_directions(); ++d) {
      for (const LayerModel& l : m_.dirs[d]) {
        const LayerPlan& lp = plan(l);
        const int64_t D = l.in_width;
        DYNRNN_TRY(ex_.set_queue(lp.queue));
        if (c.grad_weights && !c.accumulate_grad_weights) {
          const int64_t count = l.param_end - l.param_begin;
          DYNRNN_TRY(ex_.fill_zero(c.grad_weights + l.param_begin, 1, count, count));
        }
        if (l.layer == 0 && d == 0 && c.grad_inputs) DYNRNN_TRY(ex_.fill_zero(c.grad_inputs, T_ * B, D, D));
        if (c.grad_initial_state) DYNRNN_TRY(copy_state(l, c.grad_initial_state, c.grad_final_state));
      }
    }
    return ex_.set_queue(0);
  }
  DYNRNN_TRY(order_batch(c.seq_len, c.host_seq_len, p_.bwd_rows, p_.bwd_sorted_len));
  for (int d = 0; d < m_.num_directions(); ++d) {
    dh_cur_[d].assign(m_.dirs[d].size(), 0);
    for (const LayerModel& l : m_.dirs[d]) {
      const LayerPlan& lp = plan(l);
      const int64_t H = l.units, O = l.out_width;
      DYNRNN_TRY(ex_.set_queue(lp.queue));
      if (rows_) DYNRNN_TRY(ex_.wait(p_.ev_sorted));
      A* dh = wide(at(lp.dh, 0));
      if (c.grad_final_state) {
        DYNRNN_TRY(widen(dh, c.grad_final_state + B * l.state_col_h, O));
        if (l.is_lstm) DYNRNN_TRY(widen(wide(at(lp.dc)), c.grad_final_state + B * l.state_col_c, H));
      } else {
        DYNRNN_TRY(zero_wide(dh, O));
        if (l.is_lstm) DYNRNN_TRY(zero_wide(wide(at(lp.dc)), H));
      }
      if (l.layer == 0 && d == 0 && c.grad_inputs && loop_bound_ < T_) {
        // Input positions past the loop bound get no gradient from any chunk (the steps before it
        // write every position before it, reversed or not).
        const Block b = positions(loop_bound_, T_, l.in_width);
        DYNRNN_TRY(ex_.fill_zero(c.grad_inputs + b.offset, b.rows, b.cols, b.ld));
      }
    }
  }
  for (int64_t ch = n_chunks_ - 1; ch >= 0; --ch) {
    // Prefetch: bring the next chunk back from the host into the staging slot that chunk ch + 1
    // used, once this layer is done with it (and so the layer above, which read it first: this
    // layer's chunk waited for the layer above's).
    const int64_t load = ch - 1;
    if (load >= 0 && !p_.resident(load, n_chunks_)) {
      DYNRNN_TRY(ex_.set_queue(p_.copy_queue));
      for (int d = 0; d < m_.num_directions(); ++d) {
        for (const LayerModel& l : m_.dirs[d]) {
          const LayerPlan& lp = plan(l);
          DYNRNN_TRY(ex_.wait(lp.ev_bwd_done));
          DYNRNN_TRY(ex_.copy_to_device(at(lp.staging, load), host_chunk(l, c.host, load), lp.slot.elems));
          DYNRNN_TRY(ex_.record(lp.ev_loaded + static_cast<int>(load % 2)));
        }
      }
    }
    for (int d = 0; d < m_.num_directions(); ++d) {
      for (int li = static_cast<int>(m_.dirs[d].size()) - 1; li >= 0; --li) {
        DYNRNN_TRY(backward_chunk(c, m_.dirs[d][li], ch));
      }
    }
  }
  for (int d = 0; d < m_.num_directions(); ++d) {
    for (const LayerModel& l : m_.dirs[d]) {
      const LayerPlan& lp = plan(l);
      DYNRNN_TRY(ex_.set_queue(lp.queue));
      if (l.layer == 0) DYNRNN_TRY(backward_layer0_inputs(c, l));
      DYNRNN_TRY(finish_grad_weights(c, l));
      if (c.grad_initial_state && B > 0) {
        const T* fin = c.grad_final_state;
        DYNRNN_TRY(narrow_state(c.grad_initial_state + B * l.state_col_h, wide(at(lp.dh, dh_cur_[d][l.layer])),
                                fin ? fin + B * l.state_col_h : nullptr, l.out_width));
        if (l.is_lstm) {
          DYNRNN_TRY(narrow_state(c.grad_initial_state + B * l.state_col_c, wide(at(lp.dc)),
                                  fin ? fin + B * l.state_col_c : nullptr, l.units));
        }
      }
    }
  }
  return ex_.set_queue(0);
}

template <typename T>
Status Orchestrator<T>::backward_chunk(const BackwardCall<T>& c, const LayerModel& l, int64_t ch) {
  const LayerPlan& lp = plan(l);
  const int64_t B = p_.batch, Din = l.in_width, GW = l.gate_width, H = l.units, O = l.out_width, K = p_.chunk;
  const int64_t s0 = ch * K, s1 = std::min(s0 + K, loop_bound_), n = s1 - s0;
  const int staging_index = static_cast<int>(ch % 2);
  const LayerModel* up = above(l);
  const LayerModel* lo = below(l);
  const Slot S = slot(l, ch, /*backward=*/true);
  DYNRNN_TRY(ex_.set_queue(lp.queue));
  if (!p_.resident(ch, n_chunks_)) {
    DYNRNN_TRY(ex_.wait(lp.ev_loaded + staging_index));
    if (lo) DYNRNN_TRY(ex_.wait(plan(*lo).ev_loaded + staging_index));
  }
  cell::SeqView<const T> dy;
  if (up) {
    // The layer above wrote the gradient of this chunk's outputs into its dy_in.
    DYNRNN_TRY(ex_.wait(plan(*up).ev_bwd_done));
    dy = chunk_view<const T>(at(plan(*up).dy_in, ch), O, s0);
  } else {
    dy = user_view(c.grad_outputs[l.direction], O, l.direction == 1, c.grad_outputs_ld[l.direction]);
  }
  // DropoutWrapper: the cell's output gradient is the layer's through the output mask.
  cell::SeqView<const T> cell_dy = dy;
  if (l.output_dropout && dy.data) {
    cell_dy = chunk_view<const T>(at(lp.dyd), O, s0);
    DYNRNN_TRY(apply_dropout(l, dropout::Site::kOutput, dy, chunk_view(at(lp.dyd), O, s0), s0, n, O, !up, true));
  }
  const T* in = lo ? layer_output(*lo, ch, /*backward=*/true) : c.x + s0 * B * Din;
  if (gathers_input(l)) {  // layer 0 at the caller's positions: gather the chunk as forward did
    const bool reverse = l.direction == 1;
    DYNRNN_TRY(copy_steps(user_view(c.x, Din, reverse), chunk_view(at(lp.bxg), Din, s0), s0, n, Din));
    in = at(lp.bxg);
  }
  if (l.input_dropout) {  // the cell's input as forward formed it, from the same masks
    DYNRNN_TRY(apply_dropout(l, dropout::Site::kInput, chunk_view<const T>(in, Din, s0),
                             chunk_view(at(lp.bxd), Din, s0), s0, n, Din, false, false));
    in = at(lp.bxd);
  }
  if (lp.rscratch.present()) DYNRNN_TRY(regenerate(c, l, ch, S, in));
  DYNRNN_TRY(ex_.recurrent_backward_steps(recurrent_backward_steps(c, l, S, s0, n, cell_dy)));
  int& cur = dh_cur_[l.direction][l.layer];
  cur = static_cast<int>((cur + n) % 2);  // each step swapped the running gradient's buffers
  // Weight gradients of this chunk; the first chunk backward visits (the last) starts the sums.
  const T* dz = at(lp.dz);
  const T* dzc = at(lp.dzc);
  // dz feeds the input side too, except a reset-after GRU's third gate: its input side's is h~^ (dzc),
  // its recurrent side's n.
  const int64_t dz_x_cols = l.reset_after ? 2 * H : GW;
  DYNRNN_TRY(with_grad_weights(c, l, [&](auto* g, bool accumulate) -> Status {
    const bool acc = accumulate || ch != n_chunks_ - 1;
    const A beta = acc ? 1 : 0;
    const int64_t rows = n * B, p0 = l.param_begin;
    DYNRNN_TRY(ex_.gemm_to(Din, dz_x_cols, rows, {in, Din, true}, {dz, GW, false}, beta, g + (l.kernel - p0), GW));
    DYNRNN_TRY(ex_.sum_to(rows, dz_x_cols, {dz, GW, false}, acc, g + (l.bias - p0)));
    if (l.reset_after) {
      DYNRNN_TRY(ex_.gemm_to(Din, H, rows, {in, Din, true}, {dzc, H, false}, beta, g + (l.kernel - p0 + 2 * H), GW));
      DYNRNN_TRY(ex_.sum_to(rows, H, {dzc, H, false}, acc, g + (l.bias - p0 + 2 * H)));
      DYNRNN_TRY(ex_.sum_to(rows, GW, {dz, GW, false}, acc, g + (l.bias - p0 + GW)));
    }
    if (l.is_gru) {
      DYNRNN_TRY(ex_.gemm_to(Din, H, rows, {in, Din, true}, {dzc, H, false}, beta, g + (l.cand_kernel - p0), H));
    }
    DYNRNN_TRY(ex_.gemm_to(O, GW, rows, {S.hs, O, true}, {dz, GW, false}, beta, g + (l.kernel - p0 + Din * GW), GW));
    if (l.project) {
      DYNRNN_TRY(ex_.gemm_to(H, O, rows, {S.mraw, H, true}, {at(lp.dmp), O, false}, beta, g + (l.projection - p0), O));
    }
    if (l.peepholes) DYNRNN_TRY(ex_.sum_to(rows, 3 * H, {at(lp.dpeep), 3 * H, false}, acc, g + (l.peephole - p0)));
    if (l.is_gru) {
      DYNRNN_TRY(
          ex_.gemm_to(H, H, rows, {S.rh, H, true}, {dzc, H, false}, beta, g + (l.cand_kernel - p0 + Din * H), H));
      DYNRNN_TRY(ex_.sum_to(rows, H, {dzc, H, false}, acc, g + (l.cand_bias - p0)));
    }
    return Status::ok();
  }));
  // Gradient of this chunk's inputs: the upstream of the layer below, or the caller's grad_inputs
  // (layer 0: in step order, or in dxg and then scattered to the caller's positions).
  T* din = nullptr;
  if (lo) {
    // dy_in slot ch % 2 last held chunk ch + 2, which the layer below has finished with.
    DYNRNN_TRY(ex_.wait(plan(*lo).ev_bwd_done));
    din = at(lp.dy_in, ch);
  } else if (c.grad_inputs) {
    din = gathers_input(l) ? at(lp.dxg) : c.grad_inputs + s0 * B * Din;
  }
  if (din) {
    const T* W = c.weights;
    DYNRNN_TRY(ex_.gemm(n * B, Din, dz_x_cols, A(1), {dz, GW, false}, {W + l.kernel, GW, true}, A(0), din, Din));
    if (l.is_gru) {
      DYNRNN_TRY(ex_.gemm(n * B, Din, H, A(1), {dzc, H, false}, {W + l.cand_kernel, H, true}, A(1), din, Din));
    }
    if (l.reset_after) {
      DYNRNN_TRY(ex_.gemm(n * B, Din, H, A(1), {dzc, H, false}, {W + l.kernel + 2 * H, GW, true}, A(1), din, Din));
    }
    if (l.input_dropout) {
      DYNRNN_TRY(apply_dropout(l, dropout::Site::kInput, chunk_view<const T>(din, Din, s0), chunk_view(din, Din, s0),
                               s0, n, Din, false, true));
    }
    if (l.residual) DYNRNN_TRY(residual_backward(l, s0, n, dy, din));
  }
  if (!lo && c.grad_inputs && gathers_input(l)) {
    // The backward stack of a bidirectional RNN scatters into its own dx_bw, which is added last.
    T* dx = lp.dx_bw.present() ? at(lp.dx_bw) : c.grad_inputs;
    DYNRNN_TRY(copy_steps(chunk_view<const T>(din, Din, s0), user_view(dx, Din, l.direction == 1), s0, n, Din));
  }
  return ex_.record(lp.ev_bwd_done);
}

template <typename T>
Status Orchestrator<T>::regenerate(const BackwardCall<T>& c, const LayerModel& l, int64_t ch, const Slot& S,
                                   const T* in) {
  const LayerPlan& lp = plan(l);
  const int64_t B = p_.batch, Din = l.in_width, GW = l.gate_width, H = l.units, O = l.out_width;
  const int64_t s0 = ch * p_.chunk, steps = std::min(s0 + p_.chunk, loop_bound_) - s0, rows = steps * B;
  const T* W = c.weights;
  // The chunk's pre-activations: one GEMM for its inputs and one for the states before each step.
  DYNRNN_TRY(ex_.gemm(rows, GW, Din, A(1), {in, Din, false}, {W + l.kernel, GW, false}, A(0), at(lp.rgx), GW));
  DYNRNN_TRY(ex_.gemm(rows, GW, O, A(1), {S.hs, O, false}, {W + l.kernel + Din * GW, GW, false}, A(0), at(lp.rgh), GW));
  if (l.reset_after) {
    DYNRNN_TRY(
        ex_.pointwise(cell::GruResetAfterRegenParams<T>{rows, H, at(lp.rgx), at(lp.rgh), W + l.bias, S.z, S.zc}));
    return Status::ok();
  }
  DYNRNN_TRY(ex_.pointwise(cell::PreactivationParams<T>{rows, GW, at(lp.rgx), at(lp.rgh), W + l.bias, S.z}));
  if (l.is_gru) {
    DYNRNN_TRY(ex_.pointwise(cell::GruResetParams<T>{rows, H, S.z, S.hs, S.rh}));
    DYNRNN_TRY(ex_.gemm(rows, H, Din, A(1), {in, Din, false}, {W + l.cand_kernel, H, false}, A(0), at(lp.rgxc), H));
    DYNRNN_TRY(
        ex_.gemm(rows, H, H, A(1), {S.rh, H, false}, {W + l.cand_kernel + Din * H, H, false}, A(0), at(lp.rghc), H));
    DYNRNN_TRY(ex_.pointwise(cell::PreactivationParams<T>{rows, H, at(lp.rgxc), at(lp.rghc), W + l.cand_bias, S.zc}));
  }
  if (l.project) {
    cell::LstmOutputParams<T> k;
    k.batch = rows;
    k.cols = H;
    k.cfg = lstm_config(l, W);
    k.z = S.z;
    k.c_prev = S.cs;
    k.m_raw = S.mraw;
    DYNRNN_TRY(ex_.pointwise(k));
    DYNRNN_TRY(ex_.gemm(rows, O, H, A(1), {S.mraw, H, false}, {W + l.projection, O, false}, A(0), S.mp, O));
  }
  return Status::ok();
}

template <typename T>
Status Orchestrator<T>::backward_layer0_inputs(const BackwardCall<T>& c, const LayerModel& l) {
  const LayerPlan& lp = plan(l);
  if (l.direction == 0 && m_.num_directions() == 2) return ex_.record(p_.ev_grad_inputs);
  if (!c.grad_inputs || !lp.dx_bw.present()) return Status::ok();
  // The backward stack's input gradient joins the forward stack's once that one is complete. Only
  // positions before the loop bound hold values (the forward stack zeroed the rest).
  DYNRNN_TRY(ex_.wait(p_.ev_grad_inputs));
  const Block b = positions(0, loop_bound_, l.in_width);
  T* dx = c.grad_inputs + b.offset;
  return ex_.pointwise(cell::SumParams<T>{b.rows, b.cols, b.ld, dx, at(lp.dx_bw) + b.offset, dx});
}

template <typename T>
Status Orchestrator<T>::narrow_state(T* dst, const A* src, const T* through, int64_t width) {
  if constexpr (std::is_same<A, T>::value) {
    return reorder_state(dst, src, width, true);  // a copy keeps every bit
  } else {
    cell::NarrowParams<T> n;
    n.batch = p_.batch;
    n.cols = width;
    n.src = src;
    n.dst = dst;
    n.through = through;
    n.map = cell::StepMap{seq_len_, 0, p_.max_time};
    n.dst_rows = rows_;
    return ex_.pointwise(n);
  }
}

template <typename T>
Status Orchestrator<T>::wrap_outputs(const LayerModel& l, const Slot& slot, int64_t s0, int64_t n, const T* in,
                                     cell::SeqView<T> y) {
  const int64_t B = p_.batch, O = l.out_width;
  if (above(l)) {
    const T* h = l.state_dropout ? slot.ys : entry(slot.hs, 1, O);
    if (l.output_dropout) {
      DYNRNN_TRY(apply_dropout(l, dropout::Site::kOutput, chunk_view(h, O, s0), chunk_view(slot.ys, O, s0), s0, n, O,
                               false, false));
      h = slot.ys;
    }
    if (!l.residual) return Status::ok();
    return ex_.pointwise(cell::SumParams<T>{n * B, O, O, in, h, slot.ys});
  }
  if (!y.data) return Status::ok();
  if (l.output_dropout) {
    DYNRNN_TRY(apply_dropout(l, dropout::Site::kOutput, y.as_const(), y, s0, n, O, true, false));
  }
  if (!l.residual) return Status::ok();
  cell::ResidualSeqParams<T> p;
  p.map = cell::StepMap{seq_len_, s0, p_.max_time};
  p.batch = n * B;
  p.cols = O;
  p.rows_per_step = B;
  p.input = in;
  p.outputs = y;
  return ex_.pointwise(p);
}

template <typename T>
Status Orchestrator<T>::apply_dropout(const LayerModel& l, dropout::Site site, cell::SeqView<const T> src,
                                      cell::SeqView<T> dst, int64_t s0, int64_t n, int64_t width, bool caller,
                                      bool gradient) {
  dropout::DropoutParams<T> p;
  p.map = cell::StepMap{caller ? seq_len_ : nullptr, s0, p_.max_time};
  p.batch = n * p_.batch;
  p.cols = width;
  p.rows_per_step = p_.batch;
  p.src = src;
  p.dst = dst;
  p.mask = mask(l, site);
  p.gradient = gradient;
  return ex_.pointwise(p);
}

template <typename T>
dropout::Mask<compute_t<T>> Orchestrator<T>::mask(const LayerModel& l, dropout::Site site) const {
  dropout::Mask<A> m;
  m.seed = dropout_seed_;
  m.seed_at = dropout_seed_at_;
  m.stream = dropout::stream(l.direction, l.stack_layer, site);
  m.keep = A(site == dropout::Site::kInput    ? l.input_keep
             : site == dropout::Site::kOutput ? l.output_keep
                                              : l.state_keep);
  m.variational = l.cell.variational_recurrent;
  m.rows = rows_;
  return m;
}

template <typename T>
cell::StateDropout<compute_t<T>> Orchestrator<T>::state_dropout(const LayerModel& l) const {
  cell::StateDropout<A> d;
  d.on = l.state_dropout;
  if (d.on) d.mask = mask(l, dropout::Site::kState);
  return d;
}

template <typename T>
Status Orchestrator<T>::residual_backward(const LayerModel& l, int64_t s0, int64_t n, cell::SeqView<const T> dy,
                                          T* din) {
  if (!dy.data) return Status::ok();
  cell::ResidualSeqParams<T> p;
  p.map = cell::StepMap{seq_len_, s0, p_.max_time};
  p.batch = n * p_.batch;
  p.cols = l.in_width;
  p.rows_per_step = p_.batch;
  p.grad_outputs = dy;
  p.grad_input = din;
  return ex_.pointwise(p);
}

template <typename T>
Status Orchestrator<T>::order_batch(const int32_t* seq_len, const int32_t* host_seq_len, const Region& rows,
                                    const Region& sorted_len) {
  const int64_t B = p_.batch, T_ = p_.max_time;
  rows_ = nullptr;
  seq_len_ = seq_len;
  // Row numbers are int32, as the lengths are.
  if (!host_seq_len || B < 2 || B > INT32_MAX || n_chunks_ == 0 || in_length_order(host_seq_len, B, T_)) {
    running_ = RunningRows(host_seq_len, B, T_);
    return Status::ok();
  }
  // The same order on the host (for the steps' rows) and, from the same lengths, in backend memory.
  const std::vector<int32_t> order = length_order(host_seq_len, B, T_);
  std::vector<int32_t> sorted(order.size());
  for (size_t k = 0; k < order.size(); ++k) sorted[k] = host_seq_len[order[k]];
  running_ = RunningRows(sorted.data(), B, T_);
  int32_t* r = reinterpret_cast<int32_t*>(at(rows));
  int32_t* len = reinterpret_cast<int32_t*>(at(sorted_len));
  DYNRNN_TRY(ex_.set_queue(0));
  DYNRNN_TRY(ex_.order_by_length(seq_len, B, T_, r, len));
  DYNRNN_TRY(ex_.record(p_.ev_sorted));
  rows_ = r;
  seq_len_ = len;
  return Status::ok();
}

template <typename T>
Status Orchestrator<T>::finish_grad_weights(const BackwardCall<T>& c, const LayerModel& l) {
  if constexpr (!std::is_same<A, T>::value) {
    if (!c.grad_weights || !plan(l).dw.present()) return Status::ok();
    cell::NarrowParams<T> n;
    n.batch = 1;
    n.cols = l.param_end - l.param_begin;
    n.src = wide(at(plan(l).dw));
    n.dst = c.grad_weights + l.param_begin;
    n.accumulate = c.accumulate_grad_weights;
    return ex_.pointwise(n);
  }
  return Status::ok();
}

template <typename T>
RecurrentBackwardSteps<T> Orchestrator<T>::recurrent_backward_steps(const BackwardCall<T>& c, const LayerModel& l,
                                                                    const Slot& slot, int64_t s0, int64_t n,
                                                                    cell::SeqView<const T> dy) const {
  const LayerPlan& lp = plan(l);
  const int64_t B = p_.batch, Din = l.in_width, GW = l.gate_width, H = l.units, O = l.out_width;
  const T* W = c.weights;
  const cell::StepMap map{seq_len_, s0, p_.max_time};
  T* dz = at(lp.dz);
  RecurrentBackwardSteps<T> r(chunk_steps(s0, n));
  const cell::StateDropout<A> sd = state_dropout(l);
  r.dh[0] = wide(at(lp.dh, 0));
  r.dh[1] = wide(at(lp.dh, 1));
  r.first = dh_cur_[l.direction][l.layer];
  // The last stage: dh_prev += dz Kh^T (GRU: the gates' share; its candidate share came through d(r*h)).
  RecurrentBackwardStage<T>& last = r.stage[l.is_gru || l.project ? 1 : 0];
  last.in = dz;
  last.in_step = B * GW;
  last.m = GW;
  last.w = W + l.kernel + Din * GW;
  last.n = O;
  if (l.is_gru) {
    r.stages = 2;
    auto k = stage_params<cell::GruCandidateBackwardParams<T>>(map, B, H);
    k.act = l.cell.activation;
    k.zg = slot.z;
    k.zc = slot.zc;
    k.h_prev = slot.hs;
    k.dy = dy;
    k.state_drop = sd;
    k.dzc = at(lp.dzc);
    k.dzg = dz;
    RecurrentBackwardStage<T>& s1 = r.stage[0];
    s1.op = k;
    s1.in = k.dzc;
    s1.in_step = B * H;
    s1.m = H;
    s1.w = W + l.cand_kernel + Din * H;
    s1.n = H;
    s1.out = at(lp.drh);
    auto g = stage_params<cell::GruGatesBackwardParams<T>>(map, B, H);
    g.zg = slot.z;
    g.h_prev = slot.hs;
    g.drh = s1.out;
    g.dzg = dz;
    last.op = g;
    return r;
  }
  if (l.reset_after) {
    auto k = stage_params<cell::GruResetAfterBackwardParams<T>>(map, B, H);
    k.act = l.cell.activation;
    k.z = slot.z;
    k.n = slot.zc;
    k.h_prev = slot.hs;
    k.dy = dy;
    k.state_drop = sd;
    k.dz = dz;
    k.dzh = at(lp.dzc);
    last.op = k;
    return r;
  }
  if (!l.is_lstm) {
    auto k = stage_params<cell::RnnBackwardParams<T>>(map, B, H);
    k.act = l.cell.activation;
    k.z = slot.z;
    k.dy = dy;
    k.state_drop = sd;
    k.dz = dz;
    last.op = k;
    return r;
  }
  auto k = stage_params<cell::LstmBackwardParams<T>>(map, B, H);
  k.cfg = lstm_config(l, W);
  k.project = l.project;
  k.z = slot.z;
  k.c_prev = slot.cs;
  k.dc = wide(at(lp.dc));
  k.dz = dz;
  k.dpeep = at(lp.dpeep);
  if (l.project) {
    r.stages = 2;
    auto pk = stage_params<cell::ProjBackwardParams<T>>(map, B, O);
    pk.has_proj_clip = l.cell.proj_clip.has_value();
    pk.proj_clip = static_cast<compute_t<T>>(l.cell.proj_clip.value_or(0.0));
    pk.m_p = slot.mp;
    pk.dy = dy;
    pk.state_drop = sd;
    pk.dm_p = at(lp.dmp);
    RecurrentBackwardStage<T>& s1 = r.stage[0];
    s1.op = pk;
    s1.in = pk.dm_p;
    s1.in_step = B * O;
    s1.m = O;
    s1.w = W + l.projection;
    s1.n = H;
    s1.out = at(lp.dmraw);
    k.dm_raw = s1.out;
  } else {
    k.dy = dy;
    k.state_drop = sd;
  }
  last.op = k;
  return r;
}

#define DYNRNN_INSTANTIATE(T) template class Orchestrator<T>;
DYNRNN_FOR_EACH_ELEMENT_TYPE(DYNRNN_INSTANTIATE)
#undef DYNRNN_INSTANTIATE

}  // namespace dynrnn

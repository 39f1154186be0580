#include "bench/naive_baseline.h"

#include <algorithm>
#include <string>

#include "bench/precision_types.h"
#include "bench/runner_buffers.h"

namespace bench {

std::vector<NaiveLayer> naive_layers(const Problem& p, int direction) {
  std::vector<NaiveLayer> layers(static_cast<size_t>(p.shape.layers));
  for (int l = 0; l < p.shape.layers; ++l) {
    NaiveLayer& L = layers[static_cast<size_t>(l)];
    L.cell = p.shape.cell;
    L.H = p.shape.H;
    // A stacked layer above the first reads both directions of the layer below.
    L.in = l == 0 ? p.shape.I : (p.stacked() ? 2 : 1) * p.shape.H;
    L.kernel = L.bias = -1;
  }
  for (const dynrnn::ParamInfo& info : p.params) {
    if (info.direction != direction) continue;
    NaiveLayer& L = layers.at(static_cast<size_t>(info.layer));
    if (info.local_name == "kernel" || info.local_name == "gates/kernel")
      L.kernel = info.offset;
    else if (info.local_name == "recurrent_kernel")
      L.rec_kernel = info.offset;
    else if (info.local_name == "bias" || info.local_name == "gates/bias")
      L.bias = info.offset;
    else if (info.local_name == "candidate/kernel")
      L.cand_kernel = info.offset;
    else if (info.local_name == "candidate/bias")
      L.cand_bias = info.offset;
    else
      throw BenchError("naive baseline: unexpected parameter " + info.name);
  }
  for (const dynrnn::StateLeaf& leaf : p.state) {
    if (leaf.direction != direction) continue;
    NaiveLayer& L = layers.at(static_cast<size_t>(leaf.layer));
    if (leaf.is_cell)
      L.col_c = leaf.column_offset;
    else
      L.col_h = leaf.column_offset;
  }
  for (const NaiveLayer& L : layers) {
    if (L.kernel < 0 || L.bias < 0 || (L.cell == Cell::kGru && (L.cand_kernel < 0 || L.cand_bias < 0)) ||
        (L.cell == Cell::kGruResetAfter && L.rec_kernel < 0) || (L.cell == Cell::kLstm && L.col_c < 0)) {
      throw BenchError("naive baseline: incomplete weight table or state layout");
    }
  }
  return layers;
}

namespace {

int64_t gate_cols(Cell c, int64_t H) {
  return cell_gates(c) * H;
}  // act columns (GRU: r, u, c; reset-after GRU: z, r, hh)

/// Width of a saved xh row: [x_t, h], or x_t alone for the reset-after GRU (its GEMMs read x_t and h
/// separately, and h is kept in h_state anyway).
int64_t xh_cols(const NaiveLayer& L) {
  return L.cell == Cell::kGruResetAfter ? L.in : L.in + L.H;
}

UnaryOp act_op(Cell c) {
  return c == Cell::kRnnRelu ? UnaryOp::kRelu : UnaryOp::kTanh;
}
BinaryOp act_grad(Cell c) {
  return c == Cell::kRnnRelu ? BinaryOp::kReluGrad : BinaryOp::kTanhGrad;
}

}  // namespace

template <typename T>
NaiveRnn<T>::NaiveRnn(const Problem& p, bool training, NaiveOps<T>* ops, Arena* arena, const int32_t* lengths_ops)
    : p_(p),
      ops_(ops),
      len_(lengths_ops),
      training_(training),
      T_(p.shape.T),
      B_(p.shape.B),
      H_(p.shape.H),
      I_(p.shape.I),
      t_loop_(p.t_loop) {
  const int64_t B = B_, H = H_;
  const int64_t steps = training ? T_ : 1;
  const int64_t states = training ? T_ + 1 : 2;
  for (int d = 0; d < p.directions(); ++d) {
    Direction& dir = dir_[d];
    dir.layers = naive_layers(p, d);
    for (const NaiveLayer& L : dir.layers) {
      LayerBuffers b;
      const int64_t W = xh_cols(L), GH = gate_cols(L.cell, H);
      const bool lstm = L.cell == Cell::kLstm, gru = L.cell == Cell::kGru, gru_ra = L.cell == Cell::kGruResetAfter;
      // The reset-after GRU keeps x_t only for backward's dW (inference reads the input in place).
      if (!gru_ra || training) b.xh = arena->alloc<T>(steps * B * W);
      if (gru) b.xrh = arena->alloc<T>(steps * B * W);
      if (gru_ra) b.gh = arena->alloc<T>(steps * B * GH);
      b.act = arena->alloc<T>(steps * B * GH);
      if (lstm) b.tc = arena->alloc<T>(steps * B * H);
      if (lstm) b.c_state = arena->alloc<T>(states * B * H);
      b.h_state = arena->alloc<T>(states * B * H);
      b.z = arena->alloc<T>(B * GH);
      if (gru) {
        b.zc = arena->alloc<T>(B * H);
        b.rh = arena->alloc<T>(B * H);
      }
      b.t1 = arena->alloc<T>(B * H);
      b.t2 = arena->alloc<T>(B * H);
      b.t3 = arena->alloc<T>(B * H);
      b.c_new = arena->alloc<T>(B * H);
      b.h_new = arena->alloc<T>(B * H);
      if (training) {
        for (T** q : {&b.dh, &b.dc, &b.dhn, &b.dcn, &b.pass_h, &b.pass_c, &b.g1, &b.g2, &b.g3, &b.g4}) {
          *q = arena->alloc<T>(B * H);
        }
        b.dz = arena->alloc<T>(B * GH);
        if (!gru_ra) b.dxh = arena->alloc<T>(B * W);
        if (gru_ra) {
          b.dgh = arena->alloc<T>(B * GH);
          b.din = arena->alloc<T>(B * L.in);
        }
        if (gru) {
          b.dzc = arena->alloc<T>(B * H);
          b.dxrh = arena->alloc<T>(B * W);
          b.din = arena->alloc<T>(B * L.in);
        }
      }
      dir.buf.push_back(b);
    }
    if (d == 1) {
      // Stacked, the backward direction of every layer reverses that layer's input.
      const int64_t in_max = p.stacked() && p.shape.layers > 1 ? std::max(I_, 2 * H) : I_;
      dir.x_rev = arena->alloc<T>(T_ * B * in_max);
      dir.y_rev = arena->alloc<T>(T_ * B * H);
      if (training) {
        dir.dy_rev = arena->alloc<T>(T_ * B * H);
        dir.dx_rev = arena->alloc<T>(T_ * B * in_max);
        dir.dx_tmp = arena->alloc<T>(T_ * B * in_max);
      }
    }
  }
  if (p.stacked()) {
    const int64_t rows = T_ * B;
    stack_.y_fw = arena->alloc<T>(rows * H);
    stack_.y_bw = arena->alloc<T>(rows * H);
    // Layer l writes y_cat[l % 2] while it reads y_cat[(l - 1) % 2]; the top layer writes the outputs.
    for (int k = 0; k < std::min(p.shape.layers - 1, 2); ++k) stack_.y_cat[k] = arena->alloc<T>(rows * 2 * H);
    if (training) {
      stack_.dy_fw = arena->alloc<T>(rows * H);
      stack_.dy_bw = arena->alloc<T>(rows * H);
      if (p.shape.layers > 1) stack_.d_cat = arena->alloc<T>(rows * 2 * H);
    }
  }
}

template <typename T>
void NaiveRnn<T>::forward(const T* x, const T* weights, T* out_fw, T* out_bw, T* final_state, bool training) {
  if (training && !training_) throw BenchError("naive baseline was set up for inference only");
  weights_ = weights;
  if (p_.stacked()) {
    forward_stacked(x, weights, out_fw, final_state);
  } else {
    forward_direction(dir_[0], 0, dir_[0].layers.size(), x, I_, weights, out_fw, final_state);
    if (p_.shape.bidirectional) {
      Direction& d = dir_[1];
      ops_->reverse_sequence(T_, B_, I_, len_, x, d.x_rev);
      forward_direction(d, 0, d.layers.size(), d.x_rev, I_, weights, d.y_rev, final_state);
      ops_->reverse_sequence(T_, B_, H_, len_, d.y_rev, out_bw);
    }
  }
  forward_trained_ = training;
}

template <typename T>
void NaiveRnn<T>::forward_stacked(const T* x, const T* w, T* out, T* final_state) {
  const int64_t rows = T_ * B_, H = H_;
  const size_t layers = dir_[0].layers.size();
  Direction& bw = dir_[1];
  const T* in = x;
  int64_t width = I_;
  for (size_t l = 0; l < layers; ++l) {
    // bidirectional_dynamic_rnn(cell_fw[l], cell_bw[l], in): the backward cell reads the input
    // reversed per sequence and its outputs are reversed back; then concat([fw, bw], 2).
    T* y = l + 1 == layers ? out : stack_.y_cat[l % 2];
    forward_direction(dir_[0], l, l + 1, in, width, w, stack_.y_fw, final_state);
    ops_->reverse_sequence(T_, B_, width, len_, in, bw.x_rev);
    forward_direction(bw, l, l + 1, bw.x_rev, width, w, bw.y_rev, final_state);
    ops_->reverse_sequence(T_, B_, H, len_, bw.y_rev, stack_.y_bw);
    ops_->concat(rows, stack_.y_fw, H, H, stack_.y_bw, H, H, y);
    in = y;
    width = 2 * H;
  }
}

template <typename T>
void NaiveRnn<T>::forward_direction(Direction& d, size_t l0, size_t l1, const T* x, int64_t x_width, const T* w, T* y,
                                    T* final_state) {
  const int64_t B = B_, H = H_;
  for (size_t l = l0; l < l1; ++l) {
    LayerBuffers& b = d.buf[l];
    ops_->fill_zero(b.h_state + state_off(0), B * H);
    if (b.c_state) ops_->fill_zero(b.c_state + state_off(0), B * H);
  }
  for (int64_t t = 0; t < t_loop_; ++t) {
    const T* in = x + t * B * x_width;
    int64_t ld = x_width;
    for (size_t l = l0; l < l1; ++l) {
      const bool top = l + 1 == l1;
      in = forward_step(d.layers[l], d.buf[l], t, in, ld, w, y + t * B * H, top);
      ld = H;
    }
  }
  // TF's output TensorArray holds zeros past the loop bound.
  if (t_loop_ < T_) ops_->fill_zero(y + t_loop_ * B * H, (T_ - t_loop_) * B * H);
  for (size_t l = l0; l < l1; ++l) {
    const NaiveLayer& L = d.layers[l];
    LayerBuffers& b = d.buf[l];
    ops_->copy(B, H, b.h_state + state_off(t_loop_), H, final_state + B * L.col_h, H);
    if (L.col_c >= 0) ops_->copy(B, H, b.c_state + state_off(t_loop_), H, final_state + B * L.col_c, H);
  }
}

template <typename T>
const T* NaiveRnn<T>::forward_step(const NaiveLayer& L, LayerBuffers& b, int64_t t, const T* in, int64_t ld_in,
                                   const T* w, T* y_t, bool top) {
  NaiveOps<T>& o = *ops_;
  const int64_t B = B_, H = L.H, W = xh_cols(L), GH = gate_cols(L.cell, H);
  const bool masked = len_ != nullptr;
  T* xh = step_ptr(b.xh, t, B * W);
  T* act = step_ptr(b.act, t, B * GH);
  const T* hp = b.h_state + state_off(t);
  T* hs = b.h_state + state_off(t + 1);
  if (L.cell != Cell::kGruResetAfter)
    o.concat(B, in, ld_in, L.in, hp, H, H, xh);
  else if (training_)
    o.copy(B, L.in, in, ld_in, xh, L.in);  // x_t for backward's dW (TF's while loop saves it too)
  T* h_new = masked ? b.h_new : hs;

  if (L.cell == Cell::kLstm) {
    const T* cp = b.c_state + state_off(t);
    T* cs = b.c_state + state_off(t + 1);
    o.gemm(false, false, B, 4 * H, W, xh, W, w + L.kernel, 4 * H, T(0), b.z, 4 * H);
    o.bias_add(B, 4 * H, b.z, 4 * H, w + L.bias, b.z, 4 * H);
    T* si = act;
    T* tj = act + H;
    T* sf = act + 2 * H;
    T* so = act + 3 * H;
    o.unary(UnaryOp::kSigmoid, B, H, b.z, 4 * H, si, 4 * H);
    o.unary(act_op(L.cell), B, H, b.z + H, 4 * H, tj, 4 * H);
    o.add_scalar(B, H, b.z + 2 * H, 4 * H, T(kForgetBias), b.t1, H);
    o.unary(UnaryOp::kSigmoid, B, H, b.t1, H, sf, 4 * H);
    o.unary(UnaryOp::kSigmoid, B, H, b.z + 3 * H, 4 * H, so, 4 * H);
    o.binary(BinaryOp::kMul, B, H, cp, H, sf, 4 * H, b.t2, H);
    o.binary(BinaryOp::kMul, B, H, si, 4 * H, tj, 4 * H, b.t3, H);
    T* c_new = masked ? b.c_new : cs;
    o.binary(BinaryOp::kAdd, B, H, b.t2, H, b.t3, H, c_new, H);
    T* tc = step_ptr(b.tc, t, B * H);
    o.unary(act_op(L.cell), B, H, c_new, H, tc, H);
    o.binary(BinaryOp::kMul, B, H, tc, H, so, 4 * H, h_new, H);
    if (masked) o.select(B, H, len_, t, c_new, H, cp, H, cs, H);
  } else if (L.cell == Cell::kGru) {
    T* r = act;
    T* u = act + H;
    T* c = act + 2 * H;
    o.gemm(false, false, B, 2 * H, W, xh, W, w + L.kernel, 2 * H, T(0), b.z, 2 * H);
    o.bias_add(B, 2 * H, b.z, 2 * H, w + L.bias, b.z, 2 * H);
    o.unary(UnaryOp::kSigmoid, B, 2 * H, b.z, 2 * H, r, 3 * H);
    o.binary(BinaryOp::kMul, B, H, r, 3 * H, hp, H, b.rh, H);
    T* xrh = step_ptr(b.xrh, t, B * W);
    o.concat(B, in, ld_in, L.in, b.rh, H, H, xrh);
    o.gemm(false, false, B, H, W, xrh, W, w + L.cand_kernel, H, T(0), b.zc, H);
    o.bias_add(B, H, b.zc, H, w + L.cand_bias, b.zc, H);
    o.unary(act_op(L.cell), B, H, b.zc, H, c, 3 * H);
    o.binary(BinaryOp::kMul, B, H, u, 3 * H, hp, H, b.t1, H);
    o.unary(UnaryOp::kOneMinus, B, H, u, 3 * H, b.t2, H);
    o.binary(BinaryOp::kMul, B, H, b.t2, H, c, 3 * H, b.t3, H);
    o.binary(BinaryOp::kAdd, B, H, b.t1, H, b.t3, H, h_new, H);
  } else if (L.cell == Cell::kGruResetAfter) {
    // Keras GRUCell(reset_after=True): gx = x K + b[0], gh = h R + b[1] (columns z, r, h);
    // z, r = sigmoid(gx + gh); hh = act(gx_h + r * gh_h); h' = z * h + (1 - z) * hh.
    T* z = act;
    T* r = act + H;
    T* hh = act + 2 * H;
    T* gh = step_ptr(b.gh, t, B * 3 * H);
    o.gemm(false, false, B, 3 * H, L.in, in, ld_in, w + L.kernel, 3 * H, T(0), b.z, 3 * H);
    o.bias_add(B, 3 * H, b.z, 3 * H, w + L.bias, b.z, 3 * H);
    o.gemm(false, false, B, 3 * H, H, hp, H, w + L.rec_kernel, 3 * H, T(0), gh, 3 * H);
    o.bias_add(B, 3 * H, gh, 3 * H, w + L.bias + 3 * H, gh, 3 * H);
    o.binary(BinaryOp::kAdd, B, 2 * H, b.z, 3 * H, gh, 3 * H, b.z, 3 * H);
    o.unary(UnaryOp::kSigmoid, B, 2 * H, b.z, 3 * H, z, 3 * H);  // z and r
    o.binary(BinaryOp::kMul, B, H, r, 3 * H, gh + 2 * H, 3 * H, b.t1, H);
    o.binary(BinaryOp::kAdd, B, H, b.z + 2 * H, 3 * H, b.t1, H, b.t2, H);
    o.unary(act_op(L.cell), B, H, b.t2, H, hh, 3 * H);
    o.binary(BinaryOp::kMul, B, H, z, 3 * H, hp, H, b.t1, H);
    o.unary(UnaryOp::kOneMinus, B, H, z, 3 * H, b.t2, H);
    o.binary(BinaryOp::kMul, B, H, b.t2, H, hh, 3 * H, b.t3, H);
    o.binary(BinaryOp::kAdd, B, H, b.t1, H, b.t3, H, h_new, H);
  } else {
    o.gemm(false, false, B, H, W, xh, W, w + L.kernel, H, T(0), b.z, H);
    o.bias_add(B, H, b.z, H, w + L.bias, b.z, H);
    // Training with masking keeps the unmasked h per step in `act` for ReluGrad/TanhGrad.
    if (masked) h_new = act;
    o.unary(act_op(L.cell), B, H, b.z, H, h_new, H);
  }
  if (masked) o.select(B, H, len_, t, h_new, H, hp, H, hs, H);
  if (top) {
    if (masked)
      o.select(B, H, len_, t, h_new, H, nullptr, H, y_t, H);
    else
      o.copy(B, H, h_new, H, y_t, H);
  }
  return h_new;
}

template <typename T>
void NaiveRnn<T>::backward(const T* dy_fw, const T* dy_bw, T* dx, T* dinit, T* dw) {
  if (!training_ || !forward_trained_) throw BenchError("naive baseline: backward needs a training forward first");
  const T* w = weights_;
  ops_->fill_zero(dw, p_.param_count);
  if (p_.stacked()) {
    backward_stacked(dy_fw, w, dx, dinit, dw);
    return;
  }
  backward_direction(dir_[0], 0, dir_[0].layers.size(), dy_fw, w, dx, I_, dinit, dw);
  if (p_.shape.bidirectional) {
    Direction& d = dir_[1];
    ops_->reverse_sequence(T_, B_, H_, len_, dy_bw, d.dy_rev);
    backward_direction(d, 0, d.layers.size(), d.dy_rev, w, d.dx_rev, I_, dinit, dw);
    ops_->reverse_sequence(T_, B_, I_, len_, d.dx_rev, d.dx_tmp);
    ops_->binary(BinaryOp::kAdd, T_ * B_, I_, dx, I_, d.dx_tmp, I_, dx, I_);
  }
}

template <typename T>
void NaiveRnn<T>::backward_stacked(const T* dy, const T* w, T* dx, T* dinit, T* dw) {
  const int64_t rows = T_ * B_, H = H_;
  const size_t layers = dir_[0].layers.size();
  Direction& bw = dir_[1];
  // The gradient of layer l's outputs: the caller's for the top layer, else the one layer l + 1 left.
  const T* d_out = dy;
  for (size_t l = layers; l-- > 0;) {
    const int64_t width = l == 0 ? I_ : 2 * H;
    // concat's gradient: the two directions' slices.
    ops_->copy(rows, H, d_out, 2 * H, stack_.dy_fw, H);
    ops_->copy(rows, H, d_out + H, 2 * H, stack_.dy_bw, H);
    // d_cat is read (just above) before it is overwritten with the gradient of this layer's input.
    T* d_in = l == 0 ? dx : stack_.d_cat;
    backward_direction(dir_[0], l, l + 1, stack_.dy_fw, w, d_in, width, dinit, dw);
    ops_->reverse_sequence(T_, B_, H, len_, stack_.dy_bw, bw.dy_rev);
    backward_direction(bw, l, l + 1, bw.dy_rev, w, bw.dx_rev, width, dinit, dw);
    ops_->reverse_sequence(T_, B_, width, len_, bw.dx_rev, bw.dx_tmp);
    ops_->binary(BinaryOp::kAdd, rows, width, d_in, width, bw.dx_tmp, width, d_in, width);
    d_out = d_in;
  }
}

template <typename T>
void NaiveRnn<T>::backward_direction(Direction& d, size_t l0, size_t l1, const T* dy, const T* w, T* dx,
                                     int64_t dx_width, T* dinit, T* dw) {
  const int64_t B = B_, H = H_;
  for (size_t l = l0; l < l1; ++l) {
    ops_->fill_zero(d.buf[l].dh, B * H);
    ops_->fill_zero(d.buf[l].dc, B * H);
  }
  ops_->fill_zero(dx, T_ * B * dx_width);
  for (int64_t t = t_loop_ - 1; t >= 0; --t) {
    const T* above = dy + t * B * H;
    int64_t ld_above = H;
    for (size_t i = l1; i-- > l0;) {
      const bool top = i + 1 == l1;
      const T* d_in = nullptr;
      int64_t ld_d_in = 0;
      backward_step(d.layers[i], d.buf[i], t, above, ld_above, top, w, dw, i == l0 ? dx + t * B * dx_width : nullptr,
                    &d_in, &ld_d_in);
      above = d_in;
      ld_above = ld_d_in;
    }
  }
  for (size_t l = l0; l < l1; ++l) {
    const NaiveLayer& L = d.layers[l];
    ops_->copy(B, H, d.buf[l].dh, H, dinit + B * L.col_h, H);
    if (L.col_c >= 0) ops_->copy(B, H, d.buf[l].dc, H, dinit + B * L.col_c, H);
  }
}

template <typename T>
void NaiveRnn<T>::backward_step(const NaiveLayer& L, LayerBuffers& b, int64_t t, const T* from_above, int64_t ld_above,
                                bool top, const T* w, T* dw, T* dx_t, const T** d_in, int64_t* ld_d_in) {
  NaiveOps<T>& o = *ops_;
  const int64_t B = B_, H = L.H, W = xh_cols(L), GH = gate_cols(L.cell, H);
  const bool masked = len_ != nullptr;
  const T* xh = step_ptr(b.xh, t, B * W);
  const T* act = step_ptr(b.act, t, B * GH);
  const T* hp = b.h_state + state_off(t);

  // dL/d(cell output): the state path (select) plus the output path (top: select on dy).
  if (masked) {
    o.select(B, H, len_, t, b.dh, H, nullptr, H, b.dhn, H);
    o.select(B, H, len_, t, nullptr, H, b.dh, H, b.pass_h, H);
    if (top) {
      o.select(B, H, len_, t, from_above, ld_above, nullptr, H, b.g1, H);
      o.binary(BinaryOp::kAdd, B, H, b.dhn, H, b.g1, H, b.dhn, H);
    } else {
      o.binary(BinaryOp::kAdd, B, H, b.dhn, H, from_above, ld_above, b.dhn, H);
    }
  } else {
    o.binary(BinaryOp::kAdd, B, H, b.dh, H, from_above, ld_above, b.dhn, H);
  }

  if (L.cell == Cell::kLstm) {
    const T* cp = b.c_state + state_off(t);
    const T* si = act;
    const T* tj = act + H;
    const T* sf = act + 2 * H;
    const T* so = act + 3 * H;
    const T* tc = step_ptr(b.tc, t, B * H);
    const T* dcv = b.dc;
    if (masked) {
      o.select(B, H, len_, t, b.dc, H, nullptr, H, b.dcn, H);
      o.select(B, H, len_, t, nullptr, H, b.dc, H, b.pass_c, H);
      dcv = b.dcn;
    }
    o.binary(BinaryOp::kMul, B, H, b.dhn, H, so, 4 * H, b.g1, H);  // d act(c)
    o.binary(act_grad(L.cell), B, H, tc, H, b.g1, H, b.g2, H);     // d c from h
    o.binary(BinaryOp::kAdd, B, H, dcv, H, b.g2, H, b.g3, H);      // d c_new
    o.binary(BinaryOp::kMul, B, H, b.dhn, H, tc, H, b.g4, H);      // d sigma(o)
    o.binary(BinaryOp::kMul, B, H, b.g3, H, cp, H, b.g1, H);       // d sigma(f)
    o.binary(BinaryOp::kMul, B, H, b.g3, H, sf, 4 * H, b.g2, H);   // d c_prev
    o.binary(BinaryOp::kSigmoidGrad, B, H, sf, 4 * H, b.g1, H, b.dz + 2 * H, 4 * H);
    o.binary(BinaryOp::kSigmoidGrad, B, H, so, 4 * H, b.g4, H, b.dz + 3 * H, 4 * H);
    o.binary(BinaryOp::kMul, B, H, b.g3, H, tj, 4 * H, b.g1, H);  // d sigma(i)
    o.binary(BinaryOp::kMul, B, H, b.g3, H, si, 4 * H, b.g4, H);  // d act(j)
    o.binary(BinaryOp::kSigmoidGrad, B, H, si, 4 * H, b.g1, H, b.dz, 4 * H);
    o.binary(act_grad(L.cell), B, H, tj, 4 * H, b.g4, H, b.dz + H, 4 * H);
    o.column_sum_add(B, 4 * H, b.dz, 4 * H, dw + L.bias);
    o.gemm(true, false, W, 4 * H, B, xh, W, b.dz, 4 * H, T(1), dw + L.kernel, 4 * H);
    o.gemm(false, true, B, W, 4 * H, b.dz, 4 * H, w + L.kernel, 4 * H, T(0), b.dxh, W);
    if (masked) {
      o.binary(BinaryOp::kAdd, B, H, b.dxh + L.in, W, b.pass_h, H, b.dh, H);
      o.binary(BinaryOp::kAdd, B, H, b.g2, H, b.pass_c, H, b.dc, H);
    } else {
      o.copy(B, H, b.dxh + L.in, W, b.dh, H);
      o.copy(B, H, b.g2, H, b.dc, H);
    }
    if (dx_t) o.copy(B, L.in, b.dxh, W, dx_t, L.in);
    *d_in = b.dxh;
    *ld_d_in = W;
  } else if (L.cell == Cell::kGru) {
    const T* r = act;
    const T* u = act + H;
    const T* c = act + 2 * H;
    const T* xrh = step_ptr(b.xrh, t, B * W);
    o.binary(BinaryOp::kMul, B, H, b.dhn, H, u, 3 * H, b.g1, H);  // d h_prev through u * h
    o.binary(BinaryOp::kMul, B, H, b.dhn, H, hp, H, b.g2, H);
    o.binary(BinaryOp::kMul, B, H, b.dhn, H, c, 3 * H, b.g3, H);
    o.binary(BinaryOp::kSub, B, H, b.g2, H, b.g3, H, b.g4, H);  // d u
    o.unary(UnaryOp::kOneMinus, B, H, u, 3 * H, b.g2, H);
    o.binary(BinaryOp::kMul, B, H, b.dhn, H, b.g2, H, b.g3, H);  // d c
    o.binary(act_grad(L.cell), B, H, c, 3 * H, b.g3, H, b.dzc, H);
    o.column_sum_add(B, H, b.dzc, H, dw + L.cand_bias);
    o.gemm(true, false, W, H, B, xrh, W, b.dzc, H, T(1), dw + L.cand_kernel, H);
    o.gemm(false, true, B, W, H, b.dzc, H, w + L.cand_kernel, H, T(0), b.dxrh, W);
    o.binary(BinaryOp::kMul, B, H, b.dxrh + L.in, W, hp, H, b.g2, H);     // d r
    o.binary(BinaryOp::kMul, B, H, b.dxrh + L.in, W, r, 3 * H, b.g3, H);  // d h_prev through r * h
    o.binary(BinaryOp::kSigmoidGrad, B, H, r, 3 * H, b.g2, H, b.dz, 2 * H);
    o.binary(BinaryOp::kSigmoidGrad, B, H, u, 3 * H, b.g4, H, b.dz + H, 2 * H);
    o.column_sum_add(B, 2 * H, b.dz, 2 * H, dw + L.bias);
    o.gemm(true, false, W, 2 * H, B, xh, W, b.dz, 2 * H, T(1), dw + L.kernel, 2 * H);
    o.gemm(false, true, B, W, 2 * H, b.dz, 2 * H, w + L.kernel, 2 * H, T(0), b.dxh, W);
    T* in_grad = dx_t ? dx_t : b.din;
    o.binary(BinaryOp::kAdd, B, L.in, b.dxh, W, b.dxrh, W, in_grad, L.in);
    o.binary(BinaryOp::kAdd, B, H, b.dxh + L.in, W, b.g1, H, b.g2, H);
    if (masked) {
      o.binary(BinaryOp::kAdd, B, H, b.g2, H, b.g3, H, b.g4, H);
      o.binary(BinaryOp::kAdd, B, H, b.g4, H, b.pass_h, H, b.dh, H);
    } else {
      o.binary(BinaryOp::kAdd, B, H, b.g2, H, b.g3, H, b.dh, H);
    }
    *d_in = in_grad;
    *ld_d_in = L.in;
  } else if (L.cell == Cell::kGruResetAfter) {
    const T* z = act;
    const T* r = act + H;
    const T* hh = act + 2 * H;
    const T* gh = step_ptr(b.gh, t, B * 3 * H);
    T* dgx = b.dz;  // [B, 3H] d(x K + b[0]) = d(pre-activations), columns z, r, h
    o.binary(BinaryOp::kMul, B, H, b.dhn, H, z, 3 * H, b.g1, H);  // d h_prev through z * h
    o.binary(BinaryOp::kMul, B, H, b.dhn, H, hp, H, b.g2, H);
    o.binary(BinaryOp::kMul, B, H, b.dhn, H, hh, 3 * H, b.g3, H);
    o.binary(BinaryOp::kSub, B, H, b.g2, H, b.g3, H, b.g4, H);  // d z
    o.binary(BinaryOp::kSigmoidGrad, B, H, z, 3 * H, b.g4, H, dgx, 3 * H);
    o.unary(UnaryOp::kOneMinus, B, H, z, 3 * H, b.g2, H);
    o.binary(BinaryOp::kMul, B, H, b.dhn, H, b.g2, H, b.g3, H);  // d hh
    o.binary(act_grad(L.cell), B, H, hh, 3 * H, b.g3, H, dgx + 2 * H, 3 * H);
    o.binary(BinaryOp::kMul, B, H, dgx + 2 * H, 3 * H, gh + 2 * H, 3 * H, b.g2, H);  // d r
    o.binary(BinaryOp::kSigmoidGrad, B, H, r, 3 * H, b.g2, H, dgx + H, 3 * H);
    o.binary(BinaryOp::kMul, B, H, dgx + 2 * H, 3 * H, r, 3 * H, b.dgh + 2 * H, 3 * H);  // d gh_h
    o.copy(B, 2 * H, dgx, 3 * H, b.dgh, 3 * H);  // d gh_z, d gh_r (TF: the concat of split's gradients)
    o.column_sum_add(B, 3 * H, dgx, 3 * H, dw + L.bias);
    o.column_sum_add(B, 3 * H, b.dgh, 3 * H, dw + L.bias + 3 * H);
    o.gemm(true, false, L.in, 3 * H, B, xh, L.in, dgx, 3 * H, T(1), dw + L.kernel, 3 * H);
    o.gemm(true, false, H, 3 * H, B, hp, H, b.dgh, 3 * H, T(1), dw + L.rec_kernel, 3 * H);
    T* in_grad = dx_t ? dx_t : b.din;
    o.gemm(false, true, B, L.in, 3 * H, dgx, 3 * H, w + L.kernel, 3 * H, T(0), in_grad, L.in);
    o.gemm(false, true, B, H, 3 * H, b.dgh, 3 * H, w + L.rec_kernel, 3 * H, T(0), b.g2, H);
    if (masked) {
      o.binary(BinaryOp::kAdd, B, H, b.g2, H, b.g1, H, b.g3, H);
      o.binary(BinaryOp::kAdd, B, H, b.g3, H, b.pass_h, H, b.dh, H);
    } else {
      o.binary(BinaryOp::kAdd, B, H, b.g2, H, b.g1, H, b.dh, H);
    }
    *d_in = in_grad;
    *ld_d_in = L.in;
  } else {
    const T* h_new = masked ? act : b.h_state + state_off(t + 1);
    o.binary(act_grad(L.cell), B, H, h_new, H, b.dhn, H, b.dz, H);
    o.column_sum_add(B, H, b.dz, H, dw + L.bias);
    o.gemm(true, false, W, H, B, xh, W, b.dz, H, T(1), dw + L.kernel, H);
    o.gemm(false, true, B, W, H, b.dz, H, w + L.kernel, H, T(0), b.dxh, W);
    if (masked)
      o.binary(BinaryOp::kAdd, B, H, b.dxh + L.in, W, b.pass_h, H, b.dh, H);
    else
      o.copy(B, H, b.dxh + L.in, W, b.dh, H);
    if (dx_t) o.copy(B, L.in, b.dxh, W, dx_t, L.in);
    *d_in = b.dxh;
    *ld_d_in = W;
  }
}

#define BENCH_INSTANTIATE(T) template class NaiveRnn<T>;
DYNRNN_FOR_EACH_ELEMENT_TYPE(BENCH_INSTANTIATE)
#undef BENCH_INSTANTIATE

// ------------------------------------------------------------------------------------------------
// The runner: buffers for every input set, the stack, and the calls per mode.

namespace {

template <typename T>
class NaiveRunner final : public Runner {
 public:
  NaiveRunner(const Problem& p, Arena* arena, bool training, std::unique_ptr<NaiveOps<T>> ops)
      : p_(p), arena_(arena), training_(training), ops_(std::move(ops)), b_(p, arena, training) {
    const size_t before = arena->allocated();
    rnn_ = std::make_unique<NaiveRnn<T>>(p, training, ops_.get(), arena, b_.lengths);
    saved_bytes_ = arena->allocated() - before;
  }

  void run(Mode mode, int set) override {
    const Set& s = b_.set(set);
    switch (mode) {
      case Mode::kInference: rnn_->forward(s.x, b_.weights, b_.out_fw, b_.out_bw, b_.final_state, false); break;
      case Mode::kForward: rnn_->forward(s.x, b_.weights, b_.out_fw, b_.out_bw, b_.final_state, true); break;
      case Mode::kBackward: rnn_->backward(s.dy_fw, s.dy_bw, b_.dx, b_.dinit, b_.dw); break;
      case Mode::kTraining:
        rnn_->forward(s.x, b_.weights, b_.out_fw, b_.out_bw, b_.final_state, true);
        rnn_->backward(s.dy_fw, s.dy_bw, b_.dx, b_.dinit, b_.dw);
        break;
    }
  }

  HostResult fetch(bool grads) override { return b_.fetch(arena_, p_, grads); }

  /// The naive stack's own buffers (saved activations and temporaries).
  size_t reserve_bytes() const override { return saved_bytes_; }

 private:
  using Set = typename RunnerBuffers<T>::Set;
  const Problem& p_;
  Arena* arena_;
  bool training_;
  std::unique_ptr<NaiveOps<T>> ops_;
  std::unique_ptr<NaiveRnn<T>> rnn_;
  size_t saved_bytes_ = 0;
  RunnerBuffers<T> b_;
};

}  // namespace

template <typename T>
std::unique_ptr<Runner> make_naive_runner(const Problem& p, Arena* arena, bool training,
                                          std::unique_ptr<NaiveOps<T>> ops) {
  if (!ops) throw BenchError("naive baseline: no ops");
  return std::make_unique<NaiveRunner<T>>(p, arena, training, std::move(ops));
}

#define BENCH_INSTANTIATE(T) \
  template std::unique_ptr<Runner> make_naive_runner<T>(const Problem&, Arena*, bool, std::unique_ptr<NaiveOps<T>>);
DYNRNN_FOR_EACH_ELEMENT_TYPE(BENCH_INSTANTIATE)
#undef BENCH_INSTANTIATE

}  // namespace bench

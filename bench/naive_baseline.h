// bench/naive_baseline.h — the "naive" baseline: what tf.compat.v1.nn.dynamic_rnn does on a GPU,
// one small op at a time. Per step and layer: concat([x_t, h]) -> one GEMM with the full TF kernel
// -> BiasAdd -> a separate kernel for every activation, sum and product (TF's BasicLSTMCell /
// GRUCell / BasicRNNCell graphs) -> select-based masking of outputs and state when sequence_length
// is given (TF's _rnn_step). Keras' GRUCell(reset_after=True) cannot use one GEMM on [x, h] (the
// reset gate multiplies the recurrent candidate term alone): as Keras' graph, x_t @ kernel + bias[0]
// and h @ recurrent_kernel + bias[1], then the unfused gate ops. Backward walks the steps in reverse with the unfused
// gradient ops and accumulates dW and db per step, as TF's while-loop gradient does. No input-GEMM hoisting, no fusion,
// no graphs: the Appleyard starting point.
//
// A stacked shape (TF stack_bidirectional_dynamic_rnn) runs TF's graph of it: per layer, one
// bidirectional_dynamic_rnn (the forward cell over the layer's input, the backward cell over its
// ReverseSequence, the backward outputs reversed back) and a ConcatV2 of the two directions'
// outputs, the input of the next layer; backward splits the concatenated gradient, runs both
// directions' layer in reverse and adds the two input gradients (AddN), layer by layer down.
//
// The step logic is written once against NaiveOps; naive_ops_cpu.cpp runs it on the host (so the
// CPU path verifies the logic against dynrnn) and naive_kernels.cu runs it with CUDA kernels and
// cuBLAS.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "bench/arena.h"
#include "bench/problem.h"
#include "bench/types.h"

namespace bench {

enum class UnaryOp { kSigmoid, kTanh, kRelu, kOneMinus };
/// Binary ops y = f(a, b). The *Grad ops take a = the activation's output y, b = dL/dy (TF's
/// SigmoidGrad / TanhGrad / ReluGrad).
enum class BinaryOp { kAdd, kSub, kMul, kSigmoidGrad, kTanhGrad, kReluGrad };

/// The primitive ops; every matrix is row-major [rows, cols] with a row stride (ld). For the 16-bit
/// storage types every op loads, computes in float (dynrnn::compute_t<T>) and stores T, and GEMMs
/// accumulate in float32 -- one rounding per op, like a TF graph in that dtype. So the per-step
/// gradient sums (dW, db) accumulate in T, one rounding per step, as TF's while-loop gradient does.
template <typename T>
class NaiveOps {
 public:
  virtual ~NaiveOps() = default;
  /// C[m, n] = op(A)[m, k] * op(B)[k, n] + beta * C (op = transpose when ta / tb).
  virtual void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb,
                    T beta, T* c, int64_t ldc) = 0;
  virtual void unary(UnaryOp op, int64_t rows, int64_t cols, const T* x, int64_t ldx, T* y, int64_t ldy) = 0;
  virtual void binary(BinaryOp op, int64_t rows, int64_t cols, const T* a, int64_t lda, const T* b, int64_t ldb, T* y,
                      int64_t ldy) = 0;
  /// y = x + s
  virtual void add_scalar(int64_t rows, int64_t cols, const T* x, int64_t ldx, T s, T* y, int64_t ldy) = 0;
  /// y = x + bias (broadcast over rows)
  virtual void bias_add(int64_t rows, int64_t cols, const T* x, int64_t ldx, const T* bias, T* y, int64_t ldy) = 0;
  /// y[rows, wa + wb] = [a | b]
  virtual void concat(int64_t rows, const T* a, int64_t lda, int64_t wa, const T* b, int64_t ldb, int64_t wb, T* y) = 0;
  virtual void copy(int64_t rows, int64_t cols, const T* x, int64_t ldx, T* y, int64_t ldy) = 0;
  /// y[r] = (t < len[r]) ? a[r] : b[r]; a null or b null reads zeros. `len` is in the ops' memory.
  virtual void select(int64_t rows, int64_t cols, const int32_t* len, int64_t t, const T* a, int64_t lda, const T* b,
                      int64_t ldb, T* y, int64_t ldy) = 0;
  /// y[c] += sum_r x[r, c] (BiasAddGrad, accumulated into the weight gradient).
  virtual void column_sum_add(int64_t rows, int64_t cols, const T* x, int64_t ldx, T* y) = 0;
  /// TF ReverseSequence on a time-major [steps, batch, width] tensor: row b reverses its first
  /// len[b] steps (len null = every row has `steps`); y must not alias x.
  virtual void reverse_sequence(int64_t steps, int64_t batch, int64_t width, const int32_t* len, const T* x, T* y) = 0;
  virtual void fill_zero(T* y, int64_t count) = 0;
};

/// One layer of one direction, in terms of the flat TF weight table and state layout.
struct NaiveLayer {
  Cell cell = Cell::kLstm;
  int64_t in = 0, H = 0;
  int64_t kernel = 0, bias = 0;              ///< LSTM/RNN/reset-after GRU kernel, bias; GRU gates/kernel, gates/bias
  int64_t cand_kernel = -1, cand_bias = -1;  ///< GRU candidate/kernel, candidate/bias
  int64_t rec_kernel = -1;                   ///< reset-after GRU recurrent_kernel [H, 3H] (bias is [2, 3H])
  int64_t col_c = -1, col_h = 0;             ///< state leaf column offsets (c: LSTM only)
};

/// Builds the per-layer description from the problem's weight table and state layout.
std::vector<NaiveLayer> naive_layers(const Problem& p, int direction);

/// The per-step op graph for a whole (bidirectional) stack. Buffers come from the arena at
/// construction; forward/backward only enqueue ops.
template <typename T>
class NaiveRnn {
 public:
  /// `lengths_ops`: sequence lengths in the ops' memory, or null (no sequence_length: no masking).
  NaiveRnn(const Problem& p, bool training, NaiveOps<T>* ops, Arena* arena, const int32_t* lengths_ops);
  /// x [T, B, I]; outputs [T, B, H] per direction, or for a stacked shape both directions in
  /// out_fw [T, B, 2H] (out_bw unused); final_state: the flat state buffer. Zero initial state.
  void forward(const T* x, const T* weights, T* out_fw, T* out_bw, T* final_state, bool training);
  /// After a training forward: dy [T, B, H] (dy_bw for the backward stack; stacked: both directions
  /// in dy_fw [T, B, 2H]), zero final-state gradient; writes dx [T, B, I], dinit (flat state) and
  /// dw (flat TF table, overwritten).
  void backward(const T* dy_fw, const T* dy_bw, T* dx, T* dinit, T* dw);

 private:
  struct LayerBuffers {
    // Saved per step in training (stride one step), single buffers in inference.
    T* xh = nullptr;       ///< [B, in + H] concat([x_t, h]); reset-after GRU: [B, in] x_t (training only)
    T* xrh = nullptr;      ///< GRU: [B, in + H] concat([x_t, r * h])
    T* gh = nullptr;       ///< reset-after GRU: [B, 3H] h @ recurrent_kernel + bias[1]
    T* act = nullptr;      ///< LSTM [B, 4H] (sig i, act j, sig f, sig o); GRU [B, 3H] (r, u, c); reset-after
                           ///< GRU [B, 3H] (z, r, hh); RNN [B, H] (h)
    T* tc = nullptr;       ///< LSTM: [B, H] act(c_new)
    T* c_state = nullptr;  ///< LSTM: state c, [T+1, B, H] in training, 2 ping-pong buffers otherwise
    T* h_state = nullptr;  ///< state h, same
    // Per-step temporaries.
    T* z = nullptr;   ///< [B, G*H]
    T* zc = nullptr;  ///< GRU candidate pre-activation [B, H]
    T* rh = nullptr;  ///< GRU r * h
    T* t1 = nullptr;
    T* t2 = nullptr;
    T* t3 = nullptr;
    T* c_new = nullptr;
    T* h_new = nullptr;
    // Backward.
    T* dh = nullptr;   ///< carried dL/dh_state
    T* dc = nullptr;   ///< carried dL/dc_state
    T* dhn = nullptr;  ///< dL/d(cell output h)
    T* dcn = nullptr;
    T* pass_h = nullptr;
    T* pass_c = nullptr;
    T* g1 = nullptr;
    T* g2 = nullptr;
    T* g3 = nullptr;
    T* g4 = nullptr;
    T* dz = nullptr;    ///< [B, G*H] (GRU: gates [B, 2H]; reset-after GRU: d(x @ kernel + bias[0]))
    T* dgh = nullptr;   ///< reset-after GRU [B, 3H]: d(h @ recurrent_kernel + bias[1])
    T* dzc = nullptr;   ///< GRU [B, H]
    T* dxh = nullptr;   ///< [B, in + H]
    T* dxrh = nullptr;  ///< GRU [B, in + H]
    T* din = nullptr;   ///< GRU [B, in] summed input gradient
  };
  struct Direction {
    std::vector<NaiveLayer> layers;
    std::vector<LayerBuffers> buf;
    // Backward stack; stacked: of the current layer, whose input is [T, B, max(I, 2H)] wide.
    T* x_rev = nullptr;  ///< reverse_sequence(x)
    T* y_rev = nullptr;  ///< outputs before reversing
    T* dy_rev = nullptr;
    T* dx_rev = nullptr;
    T* dx_tmp = nullptr;
  };
  /// A stacked shape's layer-to-layer tensors.
  struct StackBuffers {
    T* y_fw = nullptr;                 ///< [T, B, H] the forward direction's outputs of a layer
    T* y_bw = nullptr;                 ///< [T, B, H] the backward direction's, reversed back
    T* y_cat[2] = {nullptr, nullptr};  ///< [T, B, 2H] concatenated outputs of layers below the top
    T* dy_fw = nullptr;                ///< [T, B, H] the split gradient of a layer's outputs
    T* dy_bw = nullptr;
    T* d_cat = nullptr;  ///< [T, B, 2H] gradient of a layer's input (the layer below's outputs)
  };

  /// Saved-per-step buffers: step t's slice in training, the single buffer otherwise.
  T* step_ptr(T* base, int64_t t, int64_t elems) const { return training_ ? base + t * elems : base; }
  /// State after t steps: [T+1] history in training, ping-pong otherwise.
  int64_t state_off(int64_t t) const { return (training_ ? t : (t & 1)) * B_ * H_; }

  /// Layers [l0, l1) of one direction over x [T, B, x_width] (the input of layer l0); the top
  /// one's outputs to y [T, B, H].
  void forward_direction(Direction& d, size_t l0, size_t l1, const T* x, int64_t x_width, const T* w, T* y,
                         T* final_state);
  /// Runs one layer's step; returns the layer's (unmasked) output h for the layer above (ld H).
  const T* forward_step(const NaiveLayer& L, LayerBuffers& b, int64_t t, const T* in, int64_t ld_in, const T* w, T* y_t,
                        bool top);
  /// The reverse of forward_direction: dy [T, B, H] of layer l1 - 1's outputs, dx [T, B, dx_width]
  /// the gradient of layer l0's input.
  void backward_direction(Direction& d, size_t l0, size_t l1, const T* dy, const T* w, T* dx, int64_t dx_width,
                          T* dinit, T* dw);
  /// stack_bidirectional_dynamic_rnn, layer by layer (see the file comment).
  void forward_stacked(const T* x, const T* w, T* out, T* final_state);
  void backward_stacked(const T* dy, const T* w, T* dx, T* dinit, T* dw);
  /// One layer's backward step. `dx_t` non-null (bottom layer): the input gradient is written
  /// there (ld = in); otherwise *d_in / *ld_d_in point at it for the layer below.
  void backward_step(const NaiveLayer& L, LayerBuffers& b, int64_t t, const T* from_above, int64_t ld_above, bool top,
                     const T* w, T* dw, T* dx_t, const T** d_in, int64_t* ld_d_in);

  const Problem& p_;
  NaiveOps<T>* ops_;
  const int32_t* len_;
  bool training_;
  bool forward_trained_ = false;
  int64_t T_, B_, H_, I_, t_loop_;
  Direction dir_[2];
  StackBuffers stack_;
  const T* weights_ = nullptr;
};

/// The naive baseline as a Runner over `ops`: host ops (CPU path) or CUDA ops (GPU path, see
/// naive_kernels.cu). T is the storage type of the row's precision (bench/precision_types.h).
template <typename T>
std::unique_ptr<Runner> make_naive_runner(const Problem& p, Arena* arena, bool training,
                                          std::unique_ptr<NaiveOps<T>> ops);

/// Host implementation of the ops.
template <typename T>
std::unique_ptr<NaiveOps<T>> make_cpu_naive_ops();

}  // namespace bench

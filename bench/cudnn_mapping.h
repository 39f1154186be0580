// bench/cudnn_mapping.h — TF weights <-> cuDNN's per-gate matrices (pure host code).
//
// cuDNN's LSTM gate order is i, f, g, o; TF's kernel columns are i, j, f, o (j = g). A TF kernel
// [in + H, G*H] becomes, per gate, W [H, in] (input rows transposed) and R [H, H] (recurrent rows
// transposed); cuDNN's bias pair is (b_W = TF bias + forget_bias on f, b_R = 0). Reset-after GRU
// (Keras GRUCell(reset_after=True), dynrnn's kGRUResetAfter): cuDNN's gates r, z, n are Keras'
// columns r, z, h (Keras order z, r, h), W from `kernel` [in, 3H] and R from `recurrent_kernel`
// [H, 3H], each transposed; b_W = bias row 0 and b_R = bias row 1, one to one (cuDNN's GRU is the
// same function: n = tanh(W_n x + b_Wn + r * (R_n h + b_Rn)), h' = (1 - z) n + z h). TF's GRUCell
// (reset before the matmul) has no cuDNN equivalent and is not mapped. Vanilla: W, R, b_W = b.
//
// Stacks: cuDNN's layer l > 0 reads D*H inputs (both directions concatenated, forward first).
// A stacked shape (TF stack_bidirectional_dynamic_rnn) is the same model: its layer l > 0 kernel
// has D*H input rows in the same order, so the mapping is one to one. TF's bidirectional_dynamic_rnn
// stacks are independent instead: direction d's columns [d*H, (d+1)*H) take TF's weights and the
// other direction's columns are zero, so cuDNN computes exactly TF's independent stacks (plus wasted
// zero blocks).
#pragma once

#include <cstdint>
#include <vector>

#include "bench/problem.h"

namespace bench {

/// One cuDNN matrix or bias vector (cudnnGetRNNWeightParams), located in the weight space.
struct CudnnParam {
  int pseudo_layer = 0;  ///< layer * D + direction
  int lin = 0;           ///< linLayerID: [0, G) input matrices, [G, 2G) recurrent (G = 4 LSTM, 3 GRU, 1 RNN)
  bool bias = false;
  int64_t rows = 0, cols = 0;  ///< matrix [rows, cols] row-major (bias: rows = H, cols = 1)
  int64_t offset = 0;          ///< elements from the start of the weight space
};

/// cuDNN gate-matrix count per direction and layer (linLayerIDs): LSTM 8, GRU 6, RNN 2.
int cudnn_lin_count(Cell c);
/// Input width of a cuDNN layer: I for layer 0, D*H above.
int64_t cudnn_layer_input(const Problem& p, int layer);

/// Writes the TF weights of `p` into `space` (a host image of the cuDNN weight space) at `m`.
/// Throws BenchError if m's shape is not what the mapping expects, BenchUnsupported for TF's GRU.
void tf_to_cudnn(const Problem& p, const CudnnParam& m, double* space);
/// Adds the gradient held at `m` in a host image of the cuDNN dweight space into dw_tf (TF layout).
/// Recurrent-side bias gradients are skipped (they duplicate the input-side ones), except for the
/// reset-after GRU, whose recurrent bias is a weight of its own (TF's bias row 1).
void cudnn_grad_to_tf(const Problem& p, const CudnnParam& m, const double* space, std::vector<double>* dw_tf);

/// cuDNN hy/cy [L*D, B, H] (pseudo layer = layer * D + direction) -> dynrnn's flat state [B * S].
/// cy may be null (no cell state).
std::vector<double> cudnn_states_to_flat(const Problem& p, const std::vector<double>& hy,
                                         const std::vector<double>* cy);
/// cuDNN y [T, B, D*H] -> outputs [T, B, H] per direction.
void cudnn_split_outputs(const Problem& p, const std::vector<double>& y, std::vector<double>* out_fw,
                         std::vector<double>* out_bw);
/// dy per direction [T, B, H] -> cuDNN dy [T, B, D*H].
std::vector<double> cudnn_join_outputs(const Problem& p, const std::vector<double>& dy_fw,
                                       const std::vector<double>& dy_bw);
/// Zeroes x-shaped [T, B, I] entries at t >= length (cuDNN leaves padding positions of dx as they are).
void zero_padding(const Problem& p, int64_t width, std::vector<double>* v);

}  // namespace bench

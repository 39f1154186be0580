// dynrnn/weights.h — conversion of one layer's weights between TensorFlow's layout and the layout
// of cuDNN and PyTorch (nn.LSTM / nn.RNN / nn.GRU), on host memory.
//
// TF:    kernel [D + Hs, G*H] (x @ K), gate columns i, j, f, o (LSTM); bias [G*H]; forget_bias is a
//        constant added to f at run time. Hs = num_proj (projection) or H. For kGRUResetAfter (Keras'
//        GRUCell) the kernel is `kernel` [D, 3H] followed by `recurrent_kernel` [H, 3H] (as dynrnn's
//        flat weights hold them), gate columns z, r, h, and the bias is [2, 3H] (input, recurrent).
// cuDNN/PyTorch: w_ih [G*H, D], w_hh [G*H, Hs] (W x), gate rows i, f, g, o (g = TF's j) or, for
//        GRU, r, z, n; two biases b_ih, b_hh. LSTM/RNN: their sum is the TF bias plus forget_bias on
//        the f rows. GRU: b_ih and b_hh are Keras' two bias rows. LSTM projection w_hr [P, H] = TF
//        projection/kernel transposed.
// Only cells that both sides can express convert, exactly (biases of LSTM/RNN up to the rounding of
// their sum): BasicRNNCell (tanh/relu), BasicLSTMCell, LSTMCell without peepholes, cell_clip or
// proj_clip, and the reset-after GRU. TF's GRUCell applies the reset gate before the candidate
// matmul, which cuDNN/PyTorch GRUs cannot express, so it returns kNotSupported.
//
// Instantiated for float, double, bfloat16 and float16 (half_types.h); bias sums run in compute_t<T>.
#pragma once

#include <cstdint>

#include "dynrnn/spec.h"
#include "dynrnn/status.h"

namespace dynrnn {

/// Pointers to one layer in cuDNN/PyTorch layout (host memory). w_hr is used only with num_proj.
template <typename T>
struct CudnnLayerWeights {
  T* w_ih = nullptr;  ///< [G*H, D]
  T* w_hh = nullptr;  ///< [G*H, Hs]
  T* b_ih = nullptr;  ///< [G*H]
  T* b_hh = nullptr;  ///< [G*H]
  T* w_hr = nullptr;  ///< [P, H] (LSTM projection only)
};

/// TF -> cuDNN/PyTorch. The whole bias sum (bias + forget_bias on f) goes to b_ih and b_hh is zeroed,
/// except for the reset-after GRU, whose two biases map one to one. tf_projection may be null without
/// num_proj.
template <typename T>
Status tf_to_cudnn(const CellSpec& cell, int64_t input_size, const T* tf_kernel, const T* tf_bias,
                   const T* tf_projection, const CudnnLayerWeights<T>& out);

/// cuDNN/PyTorch -> TF: kernel rows from w_ih^T and w_hh^T, bias = b_ih + b_hh minus forget_bias on f
/// (set cell.forget_bias = 0 to keep cuDNN's biases exactly, as TF's CudnnCompatibleLSTMCell does);
/// for the reset-after GRU, bias = [b_ih; b_hh].
template <typename T>
Status cudnn_to_tf(const CellSpec& cell, int64_t input_size, const CudnnLayerWeights<const T>& in, T* tf_kernel,
                   T* tf_bias, T* tf_projection);

}  // namespace dynrnn

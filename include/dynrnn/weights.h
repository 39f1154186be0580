// dynrnn/weights.h — conversion of one layer's weights between TensorFlow's layout and the layouts
// of cuDNN and PyTorch (nn.LSTM / nn.RNN / nn.GRU) and of Keras (tf.keras.layers.LSTM / GRU /
// SimpleRNN), on host memory.
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
// matmul, which cuDNN/PyTorch GRUs cannot express, so the cuDNN conversions return kNotSupported for
// it; Keras' GRU(reset_after=False) is that cell, and converts.
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

/// Pointers to one Keras recurrent layer's weights (host memory): tf.keras.layers.LSTM, GRU and
/// SimpleRNN, their cells, and each direction of a Bidirectional wrapper. Keras multiplies x @ kernel.
///   LSTM:      kernel [D, 4H], recurrent_kernel [H, 4H], bias [4H]; gate columns i, f, c, o.
///   GRU:       kernel [D, 3H], recurrent_kernel [H, 3H], gate columns z, r, h; bias [3H]
///              (reset_after=False) or [2, 3H] (reset_after=True: input row, recurrent row).
///   SimpleRNN: kernel [D, H], recurrent_kernel [H, H], bias [H].
template <typename T>
struct KerasLayerWeights {
  T* kernel = nullptr;
  T* recurrent_kernel = nullptr;
  T* bias = nullptr;  ///< null: use_bias=False (keras_to_tf writes zeros; tf_to_keras writes nothing)
};

/// Keras -> TF, into one layer's parameters as dynrnn's flat weights hold them (`tf_layer` points at
/// the layer's first parameter in Rnn::params(); the layer's parameters are contiguous):
///   LSTM -> kLSTM or kBasicLSTM (no peepholes, clips or projection): kernel rows [kernel;
///          recurrent_kernel], columns i, c, f, o -> i, j, f, o; bias minus cell.forget_bias on f
///          (Keras adds no constant: use forget_bias = 0 to keep its biases exactly).
///   GRU(reset_after=False) -> kGRU: gates/kernel [D + H, 2H] columns r, u(= z), gates/bias,
///          candidate/kernel [D + H, H] (h), candidate/bias.
///   GRU(reset_after=True) -> kGRUResetAfter: the same arrays (dynrnn keeps Keras' layout).
///   SimpleRNN -> kBasicRNN.
/// The cell's activation must be the layer's `activation` (tanh or relu) and the layer's
/// recurrent_activation sigmoid (TF2's default); Keras' dropout and recurrent_dropout have no TF
/// equivalent. Peepholes, clips and projections (which Keras has not) return kNotSupported.
template <typename T>
Status keras_to_tf(const CellSpec& cell, int64_t input_size, const KerasLayerWeights<const T>& in, T* tf_layer);

/// TF -> Keras, the inverse of keras_to_tf (LSTM bias plus forget_bias on f).
template <typename T>
Status tf_to_keras(const CellSpec& cell, int64_t input_size, const T* tf_layer, const KerasLayerWeights<T>& out);

}  // namespace dynrnn

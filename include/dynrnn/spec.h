// dynrnn/spec.h — what to build: the cells of a (bidirectional) MultiRNNCell stack, in TensorFlow's terms.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace dynrnn {

/// Element type of every floating-point buffer (inputs, weights, states, outputs, gradients).
/// kBFloat16 and kFloat16 are storage types (half_types.h): buffers hold 16-bit values, GEMMs
/// accumulate in float32 (tensor cores on the GPU), and all cell math runs in float32 between a load
/// and a store. TensorFlow has no such dynamic_rnn mode; it is cuDNN's and PyTorch autocast's.
enum class DataType : int { kFloat32 = 0, kFloat64 = 1, kBFloat16 = 2, kFloat16 = 3 };

/// The TensorFlow v1 cell a layer reproduces.
enum class CellKind : int {
  kBasicRNN = 0,   ///< tf.compat.v1.nn.rnn_cell.BasicRNNCell
  kBasicLSTM = 1,  ///< tf.compat.v1.nn.rnn_cell.BasicLSTMCell (state_is_tuple=True)
  kLSTM = 2,       ///< tf.compat.v1.nn.rnn_cell.LSTMCell (state_is_tuple=True)
  kGRU = 3,        ///< tf.compat.v1.nn.rnn_cell.GRUCell (reset applied before the candidate matmul)
  /// tf.keras.layers.GRUCell(reset_after=True), TF2's default GRU, run by dynamic_rnn: the reset gate
  /// applied after the recurrent matmul, h~ = act(x Wh + b_ih + r * (h Rh + b_hh)), as in cuDNN's GRU
  /// and PyTorch's nn.GRU (weights.h maps them exactly). Weights `kernel` [D, 3H],
  /// `recurrent_kernel` [H, 3H] (gate columns z, r, h) and `bias` [2, 3H] (input row, recurrent
  /// row). One recurrent GEMM per step instead of kGRU's two dependent ones.
  kGRUResetAfter = 4,
};

/// The cell's `activation` (gates always use the logistic sigmoid).
enum class Activation : int { kTanh = 0, kRelu = 1 };

/// Where forward and backward run. kCpu: every pointer is a host pointer and the stream is ignored.
/// kCuda: every buffer pointer is a device pointer (unless documented as host) and work is queued
/// on the caller's stream.
enum class Backend : int { kCpu = 0, kCuda = 1 };

/// GEMM arithmetic for float32. kDefault is exact IEEE float32 (the conformance mode); kTF32 lets
/// tensor cores round GEMM operands to TF32 (about 1e-3 relative error, much faster on Ampere+).
/// Other element types ignore it (float64 is exact; 16-bit operands always use tensor cores).
enum class MathMode : int { kDefault = 0, kTF32 = 1 };

/// How kCuda runs the recurrent part of forward (kCpu always runs kStandard; results agree to rounding).
enum class RecurrentAlgorithm : int {
  /// Per step: a cuBLAS GEMM of h with the recurrent weights and one fused cell kernel (two of each
  /// for GRU and for LSTM with num_proj). Any size; honours kTF32.
  kStandard = 0,
  /// Per chunk of parallel_iterations steps, forward and backward: one cooperative kernel that keeps
  /// the layer's recurrent weights in shared memory, split over the multiprocessors, with a
  /// grid-wide barrier per step (two for GRU and for LSTM with num_proj), like cuDNN's
  /// CUDNN_RNN_ALGO_PERSIST_STATIC. It removes the per-step launches and weight reads that bind
  /// small batches. A layer whose weights do not fit (about 28 MiB on an H100) runs kStandard.
  /// GEMMs are exact FP32 FMA for float32 (kTF32 is not used) and float32 accumulation for 16-bit
  /// types. Deterministic.
  kPersistent = 1,
};

/// One layer of the stack: the constructor arguments of the TensorFlow cell.
/// Options that the chosen kind does not have must keep their defaults (validated).
struct CellSpec {
  CellKind kind = CellKind::kLSTM;
  int64_t num_units = 0;  ///< H, > 0
  Activation activation = Activation::kTanh;
  double forget_bias = 1.0;         ///< kBasicLSTM, kLSTM: added to the f gate after the bias
  bool use_peepholes = false;       ///< kLSTM only: w_f_diag, w_i_diag, w_o_diag
  std::optional<double> cell_clip;  ///< kLSTM only: c = clip(c, -cell_clip, cell_clip); >= 0
  int64_t num_proj = 0;             ///< kLSTM only: 0 = no projection; else m = m @ W_proj [H, num_proj]
  std::optional<double> proj_clip;  ///< kLSTM with num_proj only: clip of the projected m; >= 0
  /// tf.compat.v1.nn.rnn_cell.ResidualWrapper around the cell (default residual_fn): the layer's output
  /// is its input plus the cell's output (the state is the cell's). The input width must equal the
  /// output width (num_proj or num_units). dynamic_rnn zeroes the top layer's outputs past each length.
  bool residual = false;
  /// tf.compat.v1.nn.rnn_cell.DropoutWrapper around the cell (inside the ResidualWrapper when both are
  /// set: ResidualWrapper(DropoutWrapper(cell)), GNMT's order, so the residual adds the undropped
  /// input): the cell reads its input times mask / input_keep_prob and the layer outputs the cell's
  /// output times mask / output_keep_prob (TF's `x / keep * floor(keep + u)`); the state is the
  /// cell's unless state_keep_prob is below 1. Each in (0, 1]; as in TF the value used is the float32
  /// rounding (also for float64 cells), and a value that rounds to 1 is no dropout at all, as TF's
  /// Python float 1.0. Masks come from ForwardArgs::dropout_seed
  /// (dropout_mask.h); dropout applies whenever a keep probability is below 1, inference included,
  /// as in a TF graph (pass 1 to evaluate without it).
  double input_keep_prob = 1.0;
  double output_keep_prob = 1.0;
  /// DropoutWrapper's state_keep_prob: the new state's h (an LSTM's m; never its c) times mask / keep
  /// before dynamic_rnn's copy-through, so the next step and the final state see it dropped; the
  /// output is the undropped h. Same rules as the other two.
  double state_keep_prob = 1.0;
  /// DropoutWrapper's variational_recurrent: one mask per site for every row and step of a call
  /// (TF draws noise of shape [1, width] once per run) instead of a fresh mask per element.
  bool variational_recurrent = false;

  static CellSpec basic_rnn(int64_t units, Activation act = Activation::kTanh) {
    CellSpec c;
    c.kind = CellKind::kBasicRNN;
    c.num_units = units;
    c.activation = act;
    return c;
  }
  static CellSpec basic_lstm(int64_t units, double forget_bias = 1.0) {
    CellSpec c;
    c.kind = CellKind::kBasicLSTM;
    c.num_units = units;
    c.forget_bias = forget_bias;
    return c;
  }
  static CellSpec lstm(int64_t units) {
    CellSpec c;
    c.kind = CellKind::kLSTM;
    c.num_units = units;
    return c;
  }
  static CellSpec gru(int64_t units, Activation act = Activation::kTanh) {
    CellSpec c;
    c.kind = CellKind::kGRU;
    c.num_units = units;
    c.activation = act;
    return c;
  }
  static CellSpec gru_reset_after(int64_t units, Activation act = Activation::kTanh) {
    CellSpec c = gru(units, act);
    c.kind = CellKind::kGRUResetAfter;
    return c;
  }
};

/// The whole `dynamic_rnn` (cells_bw empty) or `bidirectional_dynamic_rnn` (cells_bw non-empty) call,
/// minus the tensors. Each direction is a MultiRNNCell stack, bottom layer first; a one-element
/// stack is the plain cell. As in TensorFlow, the two directions of a bidirectional RNN are
/// independent stacks over the same input (no concatenation between layers) and may differ, unless
/// stack_bidirectional is set.
struct RnnSpec {
  std::vector<CellSpec> cells_fw;  ///< at least one cell
  std::vector<CellSpec> cells_bw;  ///< empty: unidirectional
  /// tf.contrib.rnn.stack_bidirectional_dynamic_rnn(cells_fw, cells_bw, ...) instead of
  /// bidirectional_dynamic_rnn(MultiRNNCell(cells_fw), MultiRNNCell(cells_bw), ...): layer l is one
  /// bidirectional RNN of cells_fw[l] and cells_bw[l] whose input is layer l - 1's outputs of both
  /// directions concatenated ([..., O_fw + O_bw], forward first) — the bidirectional stack of cuDNN,
  /// PyTorch's nn.LSTM(bidirectional=True, num_layers=L) and Keras' stacked Bidirectional layers.
  /// Needs cells_bw.size() == cells_fw.size(). The outputs are the top layer's, concatenated in one
  /// buffer (ForwardArgs::outputs; outputs_bw stays null; the same for their gradients).
  bool stack_bidirectional = false;
  int64_t input_size = 0;  ///< D, the depth of `inputs`, > 0
  DataType dtype = DataType::kFloat32;
  bool time_major = false;  ///< false: inputs/outputs [B, T, ...]; true: [T, B, ...]
  /// Steps per chunk (TF's knob; 0 means 32 as in TF, negative is an error). dynrnn runs each layer
  /// in chunks of this many steps: inputs of upper layers are projected, and weight and input
  /// gradients are formed, with one GEMM per chunk; the layers of a stack run as a wavefront of
  /// chunks; saved activations move to the host (swap_memory) a chunk at a time. Larger chunks:
  /// fewer, larger GEMMs; smaller chunks: less workspace and a finer wavefront.
  int parallel_iterations = 32;
  /// Training only: keep only a ring of chunks of saved activations on the device and the rest in
  /// the caller's pinned ForwardArgs::host_reserve (copied asynchronously during forward, prefetched
  /// back during backward). Numerically neutral: gradients are bitwise equal with and without it.
  bool swap_memory = false;
  /// With swap_memory: device bytes the ring of saved activations may use (0 = the smallest ring,
  /// two chunks). get_reserve_size reports the device part, get_host_reserve_size the host part.
  size_t activation_memory_budget = 0;
  /// Training only: keep just the states (h, and c for LSTMs) of every step, and regenerate gate
  /// pre-activations in backward with one GEMM per chunk instead of saving them. An LSTM then keeps
  /// 2H instead of 6H values per row and step, for about one more forward's worth of (batched,
  /// efficient) GEMM work. Equal to the saving mode up to rounding of the regenerated GEMMs.
  bool recompute = false;
  MathMode math = MathMode::kDefault;
  RecurrentAlgorithm algorithm = RecurrentAlgorithm::kStandard;
  /// Forward runs each layer's input projections (a GEMM per chunk: the cell's input times its kernel)
  /// on a second stream, a chunk ahead of the steps that read them, instead of before those steps
  /// on the layer's stream: the projection leaves the sequential path at the cost of a second chunk
  /// of projection buffers (K * B * gate width per layer, and K * B * D for the first), and per handle
  /// a stream and a cuBLAS workspace (8 MiB on Hopper) more per layer. Whether that
  /// is faster depends on the card and the shape: the benchmark's "pipelined" rows and its
  /// calibration's overlap probes measure it. Results are bitwise the same.
  bool pipeline_projections = false;

  bool bidirectional() const { return !cells_bw.empty(); }
};

}  // namespace dynrnn

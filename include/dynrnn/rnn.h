// dynrnn/rnn.h — the RNN handle: weight table, size queries, forward and backward.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dynrnn/spec.h"
#include "dynrnn/status.h"

struct CUstream_st;  // cudaStream_t without including CUDA headers

namespace dynrnn {

using Stream = CUstream_st*;  ///< the same type as cudaStream_t; nullptr is the legacy default stream

/// One TensorFlow variable inside the flat weight buffer (and, at the same offset, in the flat
/// weight-gradient buffer).
struct ParamInfo {
  std::string name;  ///< TF variable name, e.g. "rnn/multi_rnn_cell/cell_0/lstm_cell/kernel"
  std::string
      local_name;     ///< name inside the cell: "kernel", "bias", "w_f_diag", "projection/kernel", "gates/kernel", ...
  int direction = 0;  ///< 0 forward, 1 backward (bidirectional only)
  int layer = 0;      ///< position in the stack, 0 = bottom
  std::vector<int64_t> shape;  ///< TF shape, row-major
  int64_t offset = 0;          ///< in elements from the start of the weight buffer
  int64_t count = 0;           ///< number of elements
};

/// One leaf of the flat state buffer (TF: LSTMStateTuple(c, h) per LSTM layer, h otherwise).
/// Leaf i occupies elements [batch * column_offset, batch * (column_offset + width)) and is stored
/// [B, width] row-major.
struct StateLeaf {
  std::string name;  ///< "fw/0/c", "fw/0/h", "bw/2/h", ...
  int direction = 0;
  int layer = 0;
  bool is_cell = false;  ///< true for an LSTM's c, false for h (LSTM m, GRU/RNN h)
  int64_t width = 0;
  int64_t column_offset = 0;
};

/// Arguments of Rnn::forward. Shapes use T = max_time, B = batch, D = spec.input_size,
/// O = the top cell's output width (num_proj or num_units) of each direction, S = state_width().
/// Every pointer is in backend memory (device memory for kCuda) unless marked host.
struct ForwardArgs {
  /// The shape of `x` as the caller holds it: {B, T, D} (batch-major) or {T, B, D} (time_major).
  /// x_shape[2] must equal spec.input_size. T = 0 or B = 0 are allowed (nothing to compute).
  int64_t x_shape[3] = {0, 0, 0};
  const void* x = nullptr;  ///< [in] inputs; may be null only when T*B == 0

  /// [in] optional `sequence_length` [B] (int32). Negative acts as 0 and > T as T (dynamic_rnn);
  /// bidirectional RNNs reject such values when they are visible on the host (see host_sequence_length).
  const int32_t* sequence_length = nullptr;
  int64_t sequence_length_size = 0;  ///< number of entries; must equal B when sequence_length is set
  /// [in, host] optional host copy of sequence_length, same contents. With it, forward and backward
  /// stop at max(length) like TF's graph-mode loop and bidirectional lengths are range-checked.
  /// Ignored by kCpu (whose sequence_length is already a host pointer).
  const int32_t* host_sequence_length = nullptr;

  const void* initial_state = nullptr;  ///< [in] [state_elements(B)] flat state (state_layout()); null = zeros
  const void* weights = nullptr;        ///< [in] [param_count()] flat weights (params())

  /// [out] forward stack output, [B, T, O_fw] or [T, B, O_fw]; with spec.stack_bidirectional both
  /// directions' top outputs concatenated, [B, T, O_fw + O_bw] or [T, B, O_fw + O_bw]
  void* outputs = nullptr;
  void* outputs_bw = nullptr;   ///< [out] bidirectional only (not stack_bidirectional): backward stack output
  void* final_state = nullptr;  ///< [out] optional [state_elements(B)] flat final state

  void* workspace = nullptr;  ///< [scratch] get_workspace_size(..., training) bytes
  size_t workspace_bytes = 0;
  /// true: a training forward, which fills `reserve` for backward; false: inference (reserve unused, null).
  bool training = false;
  /// [out] training only: get_reserve_size() bytes that backward reads (may be null when that is 0).
  void* reserve = nullptr;
  size_t reserve_bytes = 0;
  /// [out, host] training with swap_memory: get_host_reserve_size() bytes of pinned host memory
  /// (cudaHostAlloc or cudaHostRegister; any host memory for kCpu) that receives the activations that
  /// do not stay in the reserve. kCuda refuses pageable memory (kInvalidValue): copies to it would
  /// synchronize the host. It belongs with `reserve`: pass both, unchanged, to the backward. Null
  /// when that size is 0.
  void* host_reserve = nullptr;
  size_t host_reserve_bytes = 0;

  /// DropoutWrapper layers (CellSpec::input_keep_prob, output_keep_prob): the seed of this call's
  /// masks. Give each training step its own seed, and its backward the same one.
  uint64_t dropout_seed = 0;
  /// [in] optional: the seed in backend memory (device memory for kCuda), read when the masks are
  /// drawn instead of dropout_seed, so that a captured CUDA graph draws new masks on each replay after
  /// the caller writes a new seed there. It must hold the same value for the backward. 8-byte
  /// aligned, and like every input it must not overlap an output, the workspace or the reserve.
  const uint64_t* dropout_seed_at = nullptr;
};

/// Arguments of Rnn::backward: the forward arguments of the training forward that filled `reserve`
/// (unchanged buffers, same shapes; host_sequence_length given to both or to neither, since it
/// decides how many steps run), plus upstream gradients and gradient outputs.
struct BackwardArgs {
  int64_t x_shape[3] = {0, 0, 0};
  const void* x = nullptr;
  const int32_t* sequence_length = nullptr;
  int64_t sequence_length_size = 0;
  const int32_t* host_sequence_length = nullptr;
  const void* initial_state = nullptr;
  const void* weights = nullptr;

  const void* grad_outputs = nullptr;      ///< [in] optional dL/d outputs, same shape; null = zeros
  const void* grad_outputs_bw = nullptr;   ///< [in] optional dL/d outputs_bw (null with stack_bidirectional)
  const void* grad_final_state = nullptr;  ///< [in] optional dL/d final_state; null = zeros

  void* grad_inputs = nullptr;           ///< [out] optional dL/dx, shape of x
  void* grad_initial_state = nullptr;    ///< [out] optional dL/d initial_state, [state_elements(B)]
  void* grad_weights = nullptr;          ///< [out] optional dL/d weights, [param_count()], same table
  bool accumulate_grad_weights = false;  ///< true: grad_weights += gradient; false: overwritten

  void* workspace = nullptr;  ///< [scratch] get_workspace_size(..., true) bytes
  size_t workspace_bytes = 0;
  const void* reserve = nullptr;  ///< [in] the reserve that the training forward filled
  size_t reserve_bytes = 0;
  const void* host_reserve = nullptr;  ///< [in, host] swap_memory: that forward's host_reserve
  size_t host_reserve_bytes = 0;
  uint64_t dropout_seed = 0;                  ///< the forward's (its masks are drawn again)
  const uint64_t* dropout_seed_at = nullptr;  ///< [in] the forward's, holding the same seed

  /// The backward of a training forward: its inputs (x, lengths, initial state, weights), its
  /// workspace and its reserves, with no upstream gradients and no gradient outputs yet.
  static BackwardArgs of(const ForwardArgs& f) {
    BackwardArgs b;
    for (int i = 0; i < 3; ++i) b.x_shape[i] = f.x_shape[i];
    b.x = f.x;
    b.sequence_length = f.sequence_length;
    b.sequence_length_size = f.sequence_length_size;
    b.host_sequence_length = f.host_sequence_length;
    b.initial_state = f.initial_state;
    b.weights = f.weights;
    b.workspace = f.workspace;
    b.workspace_bytes = f.workspace_bytes;
    b.reserve = f.reserve;
    b.reserve_bytes = f.reserve_bytes;
    b.host_reserve = f.host_reserve;
    b.host_reserve_bytes = f.host_reserve_bytes;
    b.dropout_seed = f.dropout_seed;
    b.dropout_seed_at = f.dropout_seed_at;
    return b;
  }
};

/// A planned `dynamic_rnn` / `bidirectional_dynamic_rnn`. Create once, reuse for many calls.
///
/// Preconditions and aliasing (checked before anything runs; a violation returns kInvalidValue or
/// kWorkspaceTooSmall with a message naming the argument and its value, and writes nothing):
///  * every output buffer (outputs, outputs_bw, final_state, grad_*) and the workspace and reserve
///    must not overlap any input buffer or each other;
///  * workspace_bytes >= get_workspace_size(T, B, training) and, for training, reserve_bytes >=
///    get_reserve_size(T, B); backward takes the training forward's reserve unchanged (it only reads it);
///  * sequence_length has B entries; the shapes of backward match its forward.
///
/// Thread safety: one handle serves one host thread at a time (calls on a handle are not
/// synchronized); distinct handles may be used from different threads and streams at once.
///
/// Typical use (kCuda; all buffers device memory, stream owned by the caller):
/// \code
///   std::unique_ptr<dynrnn::Rnn> rnn;
///   dynrnn::Rnn::create(spec, dynrnn::Backend::kCuda, &rnn);        // once
///   rnn->get_workspace_size(T, B, /*training=*/true, &ws_bytes);     // once per shape
///   rnn->get_reserve_size(T, B, &rs_bytes);
///   // cudaMalloc workspace (ws_bytes), reserve (rs_bytes), weights (param_count() elements), ...
///   dynrnn::ForwardArgs f;  /* x_shape, x, weights, outputs, workspace, training = true, reserve */
///   rnn->forward(f, stream);                                          // queued; returns at once
///   dynrnn::BackwardArgs b; /* the same inputs and reserve, grad_outputs, grad_* outputs */
///   rnn->backward(b, stream);
///   // outputs[b, t, :] == 0 for t >= sequence_length[b]; final_state rows of length-0 entries
///   // equal initial_state bit for bit.
/// \endcode
class Rnn {
 public:
  /// Validates `spec` and builds the handle. For kCuda, the handle belongs to the device current now
  /// and creates its cuBLAS handle, streams and events here (never per call). Its calls may be made
  /// while another device is current (each call switches to the handle's device and back); their
  /// buffers and stream must be the handle's device's.
  static Status create(const RnnSpec& spec, Backend backend, std::unique_ptr<Rnn>* out);
  ~Rnn();
  Rnn(const Rnn&) = delete;
  Rnn& operator=(const Rnn&) = delete;

  const RnnSpec& spec() const;
  Backend backend() const;

  /// The flat weight table in TF variable order (per direction, per layer: kernel, bias, peepholes,
  /// projection; GRU: gates/kernel, gates/bias, candidate/kernel, candidate/bias).
  const std::vector<ParamInfo>& params() const;
  /// Number of elements of the weight (and weight-gradient) buffer.
  int64_t param_count() const;
  /// Looks a parameter up by its TF name; null if absent.
  const ParamInfo* find_param(const std::string& name) const;

  /// The flat state layout (initial_state, final_state and their gradients).
  const std::vector<StateLeaf>& state_layout() const;
  /// Sum of the leaf widths: the state has batch * state_width() elements.
  int64_t state_width() const;
  /// Output width of the forward (direction 0) or backward (direction 1) stack (with
  /// stack_bidirectional, `outputs` has output_width(0) + output_width(1) columns).
  int64_t output_width(int direction) const;

  /// Bytes of scratch that forward (training or not) or backward needs for max_time T and batch B.
  Status get_workspace_size(int64_t max_time, int64_t batch, bool training, size_t* bytes) const;
  /// Bytes of the (device) reserve that a training forward fills and backward reads.
  Status get_reserve_size(int64_t max_time, int64_t batch, size_t* bytes) const;
  /// Bytes of pinned host memory (ForwardArgs::host_reserve) that a training forward with
  /// swap_memory moves activations to for this shape; 0 when everything stays in the reserve.
  Status get_host_reserve_size(int64_t max_time, int64_t batch, size_t* bytes) const;

  /// Runs the RNN. Never synchronizes the host with the device and never allocates.
  Status forward(const ForwardArgs& args, Stream stream = nullptr);
  /// Backpropagates through a training forward. Never synchronizes and never allocates. It only reads
  /// the reserve (and host_reserve), so it may run more than once over one forward.
  Status backward(const BackwardArgs& args, Stream stream = nullptr);

  struct Impl;

 private:
  friend struct RnnTestAccess;
  explicit Rnn(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dynrnn

// dynrnn/sequence_ops.h — pointwise stages over sequences and states that belong to no cell (part
// of cell_math.h): chunk gathers and scatters, sums, ResidualWrapper, and the conversions of running
// sums and row orders.
#pragma once

#include <cstdint>

#include "dynrnn/cell_common.h"

namespace dynrnn {
namespace cell {

/// Copies steps map.step .. map.step + batch / rows_per_step - 1 between two sequence views: a caller
/// sequence (any layout, reversed for the backward direction) and a step-ordered chunk buffer
/// [steps, B, cols]. Gathering a chunk of inputs lets one GEMM project them (and form dW_x);
/// scattering a chunk of input gradients puts them at the caller's positions.
template <typename T>
struct SeqCopyParams {
  StepMap map;                  ///< seq_len, max_time, and step = the chunk's first step
  int64_t batch = 0, cols = 0;  ///< rows (steps * B), width
  int64_t rows_per_step = 0;    ///< B
  SeqView<const T> src;
  SeqView<T> dst;

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    const StepMap m = map.chunk_row(r, rows_per_step);
    const int64_t b = r % rows_per_step;
    dst.at(m, b)[j] = src.at(m, b)[j];
  }
};

/// dst[r * ld + j] = a[r * ld + j] + b[r * ld + j], rounded once: the second direction's input
/// gradient added to the first's (a = dst), and a residual layer's output chunk (input + h).
template <typename T>
struct SumParams {
  using A = compute_t<T>;
  int64_t batch = 0, cols = 0;
  int64_t ld = 0;
  const T* a = nullptr;
  const T* b = nullptr;
  T* dst = nullptr;

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    const int64_t i = r * ld + j;
    dst[i] = T(A(a[i]) + A(b[i]));
  }
};

// ResidualWrapper: a layer's output is its input plus its cell's output h (SumParams for the layers
// below the top).

/// The top layer: its outputs at running rows (the cell stage wrote h; the others stay 0) gain its
/// input, or in backward its input gradient gains the output gradient at running rows (TF's select
/// passes none of a finished row's). input, grad_input: the chunk in step order, [steps * B, cols].
template <typename T>
struct ResidualSeqParams {
  using A = compute_t<T>;
  StepMap map;                  ///< seq_len, max_time, and step = the chunk's first step
  int64_t batch = 0, cols = 0;  ///< rows (steps * B), width
  int64_t rows_per_step = 0;    ///< B
  // Forward:
  const T* input = nullptr;
  SeqView<T> outputs;
  // Backward (grad_outputs.data may be null: nothing to add):
  SeqView<const T> grad_outputs;
  T* grad_input = nullptr;

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    const StepMap m = map.chunk_row(r, rows_per_step);
    const int64_t b = r % rows_per_step;
    if (!m.valid(b)) return;
    const int64_t i = r * cols + j;
    if (input) {
      T& y = outputs.at(m, b)[j];
      y = T(A(y) + A(input[i]));
    } else if (grad_outputs.data) {
      grad_input[i] = T(A(grad_input[i]) + A(grad_outputs.at(m, b)[j]));
    }
  }
};

/// The running sums — the LSTM cell state, the state gradients dh and dc, and the weight-gradient
/// accumulators — live in the compute type (float for 16-bit storage); these convert [rows, cols]
/// buffers between the caller's element type and it.
template <typename T>
struct WidenParams {
  using A = compute_t<T>;
  int64_t batch = 0, cols = 0;
  const T* src = nullptr;
  A* dst = nullptr;
  const int32_t* src_rows = nullptr;  ///< row r reads src row src_rows[r] (a gather), or null

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    dst[r * cols + j] = A(src[(src_rows ? src_rows[r] : r) * cols + j]);
  }
};

template <typename T>
struct NarrowParams {
  using A = compute_t<T>;
  int64_t batch = 0, cols = 0;
  const A* src = nullptr;
  T* dst = nullptr;
  bool accumulate = false;  ///< dst += src (rounded once), for accumulated weight gradients
  /// A state (or state gradient) that passed through a running sum in A: rows that run no step
  /// (invalid at `map`, step 0) take `through`'s bits instead, the value TF copies through, since
  /// narrowing would turn a 16-bit NaN's sign and payload into the canonical NaN. Null: none.
  const T* through = nullptr;
  StepMap map;
  const int32_t* dst_rows = nullptr;  ///< row r goes to dst (and reads through) row dst_rows[r] (a scatter), or null

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    const int64_t i = (dst_rows ? dst_rows[r] : r) * cols + j;
    if (through != nullptr && !map.valid(r)) {
      dst[i] = through[i];
      return;
    }
    const A v = src[r * cols + j];
    dst[i] = T(accumulate ? A(dst[i]) + v : v);
  }
};

/// dst row (dst_rows ? dst_rows[r] : r) = src row (src_rows ? src_rows[r] : r), bit for bit: states
/// into and out of a batch that runs sorted by length.
template <typename T>
struct PermuteRowsParams {
  int64_t batch = 0, cols = 0;
  const T* src = nullptr;
  T* dst = nullptr;
  const int32_t* src_rows = nullptr;
  const int32_t* dst_rows = nullptr;

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    dst[(dst_rows ? dst_rows[r] : r) * cols + j] = src[(src_rows ? src_rows[r] : r) * cols + j];
  }
};

}  // namespace cell
}  // namespace dynrnn

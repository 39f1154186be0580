// host/executor.h — the few verbs the orchestrator needs; the CPU and CUDA executors implement them.
#pragma once

#include <cstdint>
#include <variant>

#include "dynrnn/cell_math.h"
#include "dynrnn/rnn.h"
#include "dynrnn/status.h"

namespace dynrnn {

/// One pointwise stage of one time step (see cell_math.h).
template <typename T>
using PointwiseOp = std::variant<cell::RnnForwardParams<T>, cell::RnnBackwardParams<T>, cell::LstmForwardParams<T>,
                                 cell::LstmBackwardParams<T>, cell::ProjForwardParams<T>, cell::ProjBackwardParams<T>,
                                 cell::GruGatesForwardParams<T>, cell::GruCandidateForwardParams<T>,
                                 cell::GruCandidateBackwardParams<T>, cell::GruGatesBackwardParams<T>>;

/// A row-major matrix operand: element (r, c) at data[r * ld + c] (or [c * ld + r] when transposed).
template <typename T>
struct MatRef {
  const T* data;
  int64_t ld;
  bool trans;
};

/// Executors run verbs in the order they are called on one logical queue (the CUDA executor maps it to
/// the caller's stream). Every verb validates nothing: the orchestrator passes planned, valid views.
template <typename T>
class Executor {
 public:
  virtual ~Executor() = default;

  /// Brackets one forward or backward call on the caller's stream (CUDA: binds cuBLAS to it and
  /// fences internal streams). The CPU executor ignores the stream.
  virtual Status begin(Stream stream) {
    (void)stream;
    return Status::ok();
  }
  virtual Status end() { return Status::ok(); }

  /// C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C, row-major with row strides. k may be 0.
  virtual Status gemm(int64_t m, int64_t n, int64_t k, T alpha, MatRef<T> a, MatRef<T> b, T beta, T* c,
                      int64_t ldc) = 0;
  /// Runs op.apply(b, j) for every b < op.batch, j < op.cols.
  virtual Status pointwise(const PointwiseOp<T>& op) = 0;
  /// dst[r * ld + c] = 0 for r < rows, c < cols.
  virtual Status fill_zero(T* dst, int64_t rows, int64_t cols, int64_t ld) = 0;
  /// dst[i] = src[i] for i < count (non-overlapping).
  virtual Status copy(T* dst, const T* src, int64_t count) = 0;
  /// dst[c] = sum_r src[r * cols + c] + (accumulate ? dst[c] : 0), summed in a fixed order.
  virtual Status column_sum(int64_t rows, int64_t cols, const T* src, bool accumulate, T* dst) = 0;
};

}  // namespace dynrnn

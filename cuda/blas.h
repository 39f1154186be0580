// cuda/blas.h — the executor's row-major GEMM on cuBLAS (column-major), and the guard that binds a
// cuBLAS handle to the caller's stream for the length of one forward/backward call.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "dynrnn/spec.h"
#include "dynrnn/status.h"
#include "host/executor.h"

namespace dynrnn {
namespace cuda_detail {

/// C[m x n] = alpha * op(A) op(B) + beta * C, all row-major (MatRef semantics), on the handle's
/// current stream. Row-major C is column-major C^T, so this calls cuBLAS for C^T = op(B)^T op(A)^T:
/// the operands swap places and m/n swap, each keeping its own transpose flag. m or n == 0 does
/// nothing; k == 0 scales C by beta (beta == 0 writes zeros) with a kernel. float32 uses
/// CUBLAS_COMPUTE_32F (exact FP32) unless math == kTF32 (CUBLAS_COMPUTE_32F_FAST_TF32).
/// Row-major C = alpha op(A) op(B) + beta C with A, B of element type T and C of type C (T, or
/// compute_t<T> for the float32 accumulators of 16-bit operands).
template <typename T, typename C>
Status gemm_row_major(cublasHandle_t handle, cudaStream_t stream, MathMode math, int64_t m, int64_t n, int64_t k,
                      compute_t<T> alpha, MatRef<T> a, MatRef<T> b, compute_t<T> beta, C* c, int64_t ldc);

/// The cuBLAS math mode an executor's handle runs in.
cublasMath_t blas_math_mode(MathMode math);

/// Binds a handle for one call: saves its stream, pointer mode and math mode, then sets the caller's
/// stream, the preallocated workspace (cublasSetStream resets the workspace, so it is set again after
/// it: no allocation can happen inside a call or a graph capture), host pointer mode and `math`.
/// restore() (or the destructor) puts the saved settings back.
class BlasBinding {
 public:
  BlasBinding() = default;
  BlasBinding(const BlasBinding&) = delete;
  BlasBinding& operator=(const BlasBinding&) = delete;
  ~BlasBinding() { (void)restore(); }

  Status bind(cublasHandle_t handle, cudaStream_t stream, void* workspace, size_t workspace_bytes, cublasMath_t math);
  /// While bound: moves the handle to another stream with that stream's own workspace (two streams
  /// that may run at once must never share a cuBLAS workspace).
  Status switch_stream(cudaStream_t stream, void* workspace, size_t workspace_bytes);
  Status restore();
  bool bound() const { return handle_ != nullptr; }

 private:
  cublasHandle_t handle_ = nullptr;
  cudaStream_t saved_stream_ = nullptr;
  cublasPointerMode_t saved_pointer_mode_ = CUBLAS_POINTER_MODE_HOST;
  cublasMath_t saved_math_ = CUBLAS_DEFAULT_MATH;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
};

}  // namespace cuda_detail
}  // namespace dynrnn

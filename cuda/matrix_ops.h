// cuda/matrix_ops.h — small strided-matrix kernels: zero fill and in-place scaling (the k == 0 GEMM).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "dynrnn/half_types.h"
#include "dynrnn/status.h"

namespace dynrnn {
namespace cuda_detail {

/// dst[r * ld + c] = 0 for r < rows, c < cols, enqueued on `stream`.
template <typename T>
Status fill_zero_2d(T* dst, int64_t rows, int64_t cols, int64_t ld, cudaStream_t stream);

/// dst[r * ld + c] *= beta (beta == 0 writes 0 even over NaN), enqueued on `stream`.
template <typename T>
Status scale_2d(T* dst, int64_t rows, int64_t cols, int64_t ld, compute_t<T> beta, cudaStream_t stream);

}  // namespace cuda_detail
}  // namespace dynrnn

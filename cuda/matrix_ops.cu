#include "cuda/cuda_check.h"
#include "cuda/launch_config.h"
#include "cuda/matrix_ops.h"

namespace dynrnn {
namespace cuda_detail {
namespace {

/// beta == 0 stores zeros without reading (BLAS semantics: NaN in dst does not survive).
template <typename T>
__global__ void __launch_bounds__(kThreadsPerBlock)
    scale_kernel(T* dst, int64_t rows, int64_t cols, int64_t ld, T beta) {
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y;
  const int64_t sc = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t sr = static_cast<int64_t>(gridDim.y) * blockDim.y;
  for (int64_t r = r0; r < rows; r += sr) {
    for (int64_t c = c0; c < cols; c += sc) {
      T* p = dst + r * ld + c;
      *p = beta == T(0) ? T(0) : beta * *p;
    }
  }
}

}  // namespace

template <typename T>
Status fill_zero_2d(T* dst, int64_t rows, int64_t cols, int64_t ld, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return Status::ok();
  if (rows == 1 || ld == cols) {  // contiguous: a plain memset (all-zero bytes are +0.0)
    DYNRNN_CUDA_CHECK(cudaMemsetAsync(dst, 0, static_cast<size_t>(rows * cols) * sizeof(T), stream));
    DYNRNN_LAUNCH_CHECK(stream, "cudaMemsetAsync");
    return Status::ok();
  }
  return scale_2d<T>(dst, rows, cols, ld, T(0), stream);
}

template <typename T>
Status scale_2d(T* dst, int64_t rows, int64_t cols, int64_t ld, T beta, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0 || beta == T(1)) return Status::ok();
  const LaunchConfig cfg = elementwise_config(rows, cols);
  scale_kernel<T><<<cfg.grid, cfg.block, 0, stream>>>(dst, rows, cols, ld, beta);
  DYNRNN_LAUNCH_CHECK(stream, "scale_kernel<<<>>>");
  return Status::ok();
}

template Status fill_zero_2d<float>(float*, int64_t, int64_t, int64_t, cudaStream_t);
template Status fill_zero_2d<double>(double*, int64_t, int64_t, int64_t, cudaStream_t);
template Status scale_2d<float>(float*, int64_t, int64_t, int64_t, float, cudaStream_t);
template Status scale_2d<double>(double*, int64_t, int64_t, int64_t, double, cudaStream_t);

}  // namespace cuda_detail
}  // namespace dynrnn

#include "cuda/cuda_check.h"
#include "cuda/launch.h"
#include "cuda/launch_config.h"
#include "cuda/matrix_ops.h"
#include "host/element_types.h"

namespace dynrnn {
namespace cuda_detail {
namespace {

/// beta == 0 stores zeros without reading (BLAS semantics: NaN in dst does not survive).
template <typename T>
__global__ void __launch_bounds__(kThreadsPerBlock)
    scale_kernel(T* dst, int64_t rows, int64_t cols, int64_t ld, compute_t<T> beta) {
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y;
  const int64_t sc = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t sr = static_cast<int64_t>(gridDim.y) * blockDim.y;
  for (int64_t r = r0; r < rows; r += sr) {
    for (int64_t c = c0; c < cols; c += sc) {
      T* p = dst + r * ld + c;
      *p = beta == compute_t<T>(0) ? T(compute_t<T>(0)) : T(beta * compute_t<T>(*p));
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
  return scale_2d<T>(dst, rows, cols, ld, compute_t<T>(0), stream);
}

template <typename T>
Status scale_2d(T* dst, int64_t rows, int64_t cols, int64_t ld, compute_t<T> beta, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0 || beta == compute_t<T>(1)) return Status::ok();
  const LaunchConfig cfg = elementwise_config(rows, cols);
  return launch(scale_kernel<T>, cfg.grid, cfg.block, stream, "scale_kernel", dst, rows, cols, ld, beta);
}

#define DYNRNN_INSTANTIATE(T)                                                   \
  template Status fill_zero_2d<T>(T*, int64_t, int64_t, int64_t, cudaStream_t); \
  template Status scale_2d<T>(T*, int64_t, int64_t, int64_t, compute_t<T>, cudaStream_t);
DYNRNN_FOR_EACH_ELEMENT_TYPE(DYNRNN_INSTANTIATE)
#undef DYNRNN_INSTANTIATE

}  // namespace cuda_detail
}  // namespace dynrnn

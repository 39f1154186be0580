#include "cuda/cuda_check.h"
#include "cuda/launch.h"
#include "cuda/reductions.h"
#include "host/element_types.h"

namespace dynrnn {
namespace cuda_detail {
namespace {

constexpr int kSumCols = 32;  // columns per block (one warp wide: coalesced row reads)
constexpr int kSumRows = 16;  // row lanes per block

/// One block per 32-column tile. Lane (x, y) adds rows y, y + 16, y + 32, ... of column x in order,
/// then the 16 partial sums of each column meet in a fixed shared-memory tree. No atomics.
template <typename T, typename C>
__global__ void __launch_bounds__(kSumCols* kSumRows)
    column_sum_kernel(int64_t rows, int64_t cols, const T* __restrict__ src, int64_t ld, bool accumulate,
                      C* __restrict__ dst) {
  using A = compute_t<T>;  // 16-bit storage sums in float32 and rounds once
  __shared__ A partial[kSumRows][kSumCols + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  for (int64_t tile = blockIdx.x; tile * kSumCols < cols; tile += gridDim.x) {
    const int64_t c = tile * kSumCols + tx;
    A s = A(0);
    if (c < cols) {
      for (int64_t r = ty; r < rows; r += kSumRows) s += A(src[r * ld + c]);
    }
    partial[ty][tx] = s;
    __syncthreads();
    for (int h = kSumRows / 2; h > 0; h /= 2) {
      if (ty < h) partial[ty][tx] += partial[ty + h][tx];
      __syncthreads();
    }
    if (ty == 0 && c < cols) dst[c] = accumulate ? A(dst[c]) + partial[0][tx] : partial[0][tx];
    __syncthreads();  // partial is reused by the next tile
  }
}

}  // namespace

template <typename T, typename C>
Status column_sum(int64_t rows, int64_t cols, const T* src, int64_t ld, bool accumulate, C* dst, cudaStream_t stream) {
  if (cols <= 0) return Status::ok();
  if (rows < 0) rows = 0;
  const int64_t tiles = (cols + kSumCols - 1) / kSumCols;
  const unsigned grid = static_cast<unsigned>(tiles < 0x7fffffff ? tiles : 0x7fffffff);
  return launch(column_sum_kernel<T, C>, dim3(grid), dim3(kSumCols, kSumRows, 1), stream, "column_sum_kernel", rows,
                cols, src, ld, accumulate, dst);
}

#define DYNRNN_INSTANTIATE(T) \
  template Status column_sum<T, T>(int64_t, int64_t, const T*, int64_t, bool, T*, cudaStream_t);
DYNRNN_FOR_EACH_ELEMENT_TYPE(DYNRNN_INSTANTIATE)
#undef DYNRNN_INSTANTIATE
#define DYNRNN_INSTANTIATE(T) \
  template Status column_sum<T, float>(int64_t, int64_t, const T*, int64_t, bool, float*, cudaStream_t);
DYNRNN_FOR_EACH_16BIT_TYPE(DYNRNN_INSTANTIATE)
#undef DYNRNN_INSTANTIATE

}  // namespace cuda_detail
}  // namespace dynrnn

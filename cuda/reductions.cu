#include "cuda/cuda_check.h"
#include "cuda/launch.h"
#include "cuda/reductions.h"
#include "dynrnn/cell_math.h"
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

/// Thread b counts the rows ahead of row b in the length order (longer, or as long and before it):
/// that is its position. O(B^2) work over B threads, no atomics, the stable order length_order.h
/// defines; a batch is small next to the work of one step.
__global__ void order_by_length_kernel(const int32_t* __restrict__ lengths, int64_t batch, int64_t max_time,
                                       int32_t* __restrict__ rows, int32_t* __restrict__ sorted_len) {
  const cell::StepMap map{lengths, 0, max_time};
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < batch; b += step) {
    const int64_t mine = map.length(b);
    int64_t pos = 0;
    for (int64_t o = 0; o < batch; ++o) {
      const int64_t other = map.length(o);
      pos += other > mine || (other == mine && o < b) ? 1 : 0;
    }
    rows[pos] = static_cast<int32_t>(b);
    sorted_len[pos] = lengths[b];
  }
}

}  // namespace

Status order_by_length(const int32_t* lengths, int64_t batch, int64_t max_time, int32_t* rows, int32_t* sorted_len,
                       cudaStream_t stream) {
  if (batch <= 0) return Status::ok();
  constexpr int kThreads = 256;
  const int64_t blocks = (batch + kThreads - 1) / kThreads;
  const unsigned grid = static_cast<unsigned>(blocks < 65535 ? blocks : 65535);
  return launch(order_by_length_kernel, dim3(grid), dim3(kThreads, 1, 1), stream, "order_by_length_kernel", lengths,
                batch, max_time, rows, sorted_len);
}

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

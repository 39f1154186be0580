// cuda/pointwise_kernels.cuh — one kernel template that runs any cell_math.h stage (`*Params`):
// a 2D grid-stride loop over (b, j) with 64-bit indices, calling p.apply(b, j) once per element.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/launch.h"
#include "cuda/launch_config.h"
#include "dynrnn/cell_math.h"

namespace dynrnn {
namespace cuda_detail {

template <typename P>
__global__ void __launch_bounds__(kThreadsPerBlock) pointwise_kernel(const P p) {
  const int64_t j0 = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t b0 = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y;
  const int64_t sj = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t sb = static_cast<int64_t>(gridDim.y) * blockDim.y;
  for (int64_t b = b0; b < p.batch; b += sb) {
    for (int64_t j = j0; j < p.cols; j += sj) p.apply(b, j);
  }
}

/// Enqueues one pointwise stage on `stream` (nothing for an empty stage).
template <typename P>
Status launch_pointwise(const P& p, cudaStream_t stream) {
  if (p.batch <= 0 || p.cols <= 0) return Status::ok();
  const LaunchConfig cfg = elementwise_config(p.batch, p.cols);
  return launch(pointwise_kernel<P>, cfg.grid, cfg.block, stream, "pointwise_kernel", p);
}

}  // namespace cuda_detail
}  // namespace dynrnn

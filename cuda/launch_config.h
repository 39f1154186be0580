// cuda/launch_config.h — grid/block shapes of the 2D element-wise kernels (x over columns so that
// a warp touches consecutive elements of one row, y over rows). Kernels grid-stride over both axes,
// so the grid may be smaller than the problem.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace dynrnn {
namespace cuda_detail {

constexpr unsigned kThreadsPerBlock = 256;

struct LaunchConfig {
  dim3 grid;
  dim3 block;
};

/// A block of up to 256 threads: a multiple of 32 covering the columns (at most 256), the rest of
/// the 256 over rows. rows, cols > 0.
inline LaunchConfig elementwise_config(int64_t rows, int64_t cols) {
  const int64_t bx = cols >= static_cast<int64_t>(kThreadsPerBlock) ? kThreadsPerBlock : (cols + 31) / 32 * 32;
  int64_t by = static_cast<int64_t>(kThreadsPerBlock) / bx;
  if (by > rows) by = rows;
  const int64_t gx = (cols + bx - 1) / bx;
  const int64_t gy = (rows + by - 1) / by;
  LaunchConfig c;
  c.block = dim3(static_cast<unsigned>(bx), static_cast<unsigned>(by), 1);
  c.grid =
      dim3(static_cast<unsigned>(gx < 0x7fffffff ? gx : 0x7fffffff), static_cast<unsigned>(gy < 65535 ? gy : 65535), 1);
  return c;
}

}  // namespace cuda_detail
}  // namespace dynrnn

// cooperative_groups.h of the CPU emulation (README.md): the grid group of a cooperative launch.
#pragma once

#include "cuda_runtime.h"

namespace cooperative_groups {

/// grid.sync() waits for every thread of the grid; __syncthreads in a cooperative launch still waits
/// only for the block, so a missing grid barrier shows up (kernels.cpp runs the blocks one after
/// another between grid barriers).
struct grid_group {
  void sync() const { cuda_emulation::grid_sync(); }
  /// The thread's rank in the grid, blocks in x-y-z order, threads likewise within a block.
  unsigned long long thread_rank() const {
    const unsigned long long block = (1ull * blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    const unsigned long long threads = 1ull * blockDim.x * blockDim.y * blockDim.z;
    return block * threads + (1ull * threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  }
};

inline grid_group this_grid() {
  return grid_group{};
}

}  // namespace cooperative_groups
